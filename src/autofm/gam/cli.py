"""`autofm gam`: fit a GAM to a table in one forward pass (`fit`), or train a GAMformer (`train`)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from autofm.core.cli import (
    CommandGroup,
    add_init,
    add_max_seconds,
    add_out,
    add_report,
    add_seed,
    add_threads,
    declare_outputs,
)
from autofm.core.output import emit


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add the `gam` command group."""
    group = CommandGroup(
        subparsers, common, "gam", "GAMformer: interpretable GAMs fitted in one forward pass"
    )

    fit = group.command("fit", "fit a GAM to a table; score a test table; write a report", _cmd_fit)
    fit.add_argument("table", help="CSV/TSV/Parquet file or a bundled dataset name")
    fit.add_argument("--target", help="target column (default: the last one)")
    fit.add_argument("--test", help="a test table with the same columns, to score on")
    add_report(fit, "write an HTML report (shape functions, importances) here")
    fit.add_argument(
        "--task",
        choices=("auto", "classification", "regression"),
        default="auto",
        help="auto: regression when the target is numeric with more than 10 distinct values",
    )
    fit.add_argument("--checkpoint", default=None, help="GAMformer checkpoint (name or path)")
    fit.add_argument("--max-context-rows", type=int, default=None)
    add_seed(fit)

    train = group.command(
        "train", "train a GAMformer on the synthetic prior (resumable)", _cmd_train
    )
    train.add_argument(
        "--preset", default="cpu", help="training preset, a key of autofm.gam.training.PRESETS"
    )
    train.add_argument("--run-dir", default="runs/gam-train", help="checkpoints and loss curve")
    declare_outputs(train, run_dir="folder")
    train.add_argument("--steps", type=int, default=None, help="override the preset's steps")
    add_max_seconds(train)
    add_out(train, "write the trained weights to this checkpoint stem", kind="checkpoint")
    # the flag's earlier spelling, still accepted
    train.add_argument("--output", dest="out", help=argparse.SUPPRESS)
    train.add_argument("--device", default="auto", help="cpu, cuda, mps or auto (default)")
    add_seed(train)
    add_init(train, "warm-start a new run from this checkpoint (a shipped name or path)")
    train.add_argument("--lr", type=float, default=None, help="override the preset's peak lr")
    train.add_argument("--warmup-steps", type=int, default=None)
    add_threads(train)


def _is_regression(y, task: str) -> bool:
    import numpy as np

    if task != "auto":
        return task == "regression"
    return bool(np.issubdtype(np.asarray(y).dtype, np.floating) and y.nunique() > 10)


def _cmd_fit(args: argparse.Namespace) -> None:
    from autofm.core.runtime import setup_torch
    from autofm.data.tables import load_table
    from autofm.gam.estimators import GAMformerClassifier, GAMformerRegressor
    from autofm.gam.metrics import score_classifier, score_regressor

    setup_torch(device="cpu")
    X, y = load_table(args.table, args.target)
    regression = _is_regression(y, args.task)
    options = {"random_state": args.seed}
    if args.checkpoint:
        options["checkpoint"] = args.checkpoint
    if args.max_context_rows is not None:
        options["max_context_rows"] = args.max_context_rows
    estimator = GAMformerRegressor(**options) if regression else GAMformerClassifier(**options)
    started = time.perf_counter()
    estimator.fit(X, y)
    result = {
        "task": "regression" if regression else "classification",
        "n_rows": int(len(X)),
        "n_features": int(X.shape[1]),
        "fit_seconds": time.perf_counter() - started,
    }
    if args.test:
        X_test, y_test = load_table(args.test, args.target or y.name)
        started = time.perf_counter()
        if regression:
            metrics = score_regressor(y_test, estimator.predict(X_test))
        else:
            metrics = score_classifier(y_test, estimator.predict_proba(X_test), estimator.classes_)
        result.update(metrics)
        result["predict_seconds"] = time.perf_counter() - started
    importances = estimator.feature_importances()
    result["importances"] = {str(k): float(v) for k, v in importances.head(10).items()}
    if args.report:
        result["report"] = str(_write_report(args.report, args.table, estimator, result))
    human = [
        f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}"
        for k, v in result.items()
        if k != "importances"
    ]
    human.append("top features: " + ", ".join(list(result["importances"])[:5]))
    emit(result, args.json, "\n".join(human))


REPORT_PANELS = 24  # shape functions drawn in the report, most important first


def _write_report(path: str, table: str, estimator, result: dict) -> Path:
    """The HTML report of `_cmd_fit`: metrics, importances, one grid of shape functions."""
    from autofm.core.report import Report

    importances = estimator.feature_importances()
    report = Report(f"GAMformer on {table}")
    report.text(
        f"{result['task']}: {result['n_rows']} training rows × {result['n_features']} features, "
        f"fitted in {result['fit_seconds']:.2f} s by one forward pass of {estimator.checkpoint}."
    )
    metrics = {k: v for k, v in result.items() if k not in ("importances", "report")}
    report.table([{"metric": k, "value": v} for k, v in metrics.items()])
    report.heading("Importances (mean |contribution| over training rows)")
    report.table([{"feature": k, "importance": v} for k, v in importances.items()])
    report.heading("Shape functions")
    if len(importances) > REPORT_PANELS:
        report.text(
            f"The {REPORT_PANELS} most important of {len(importances)} features; the table "
            "above lists them all."
        )
    report.figure(
        estimator.plot_shape_functions(max_features=REPORT_PANELS),
        "each feature's contribution: steps for continuous features, one bar per value for "
        "categorical and few-valued ones; grey: training rows",
    )
    return report.save(path)


def _cmd_train(args: argparse.Namespace) -> None:
    import numpy as np

    from autofm.gam.training import train_gamformer

    result = train_gamformer(
        args.preset,
        args.run_dir,
        steps=args.steps,
        max_seconds=args.max_seconds,
        seed=args.seed,
        device=args.device,
        output=args.out,
        init=args.init,
        lr=args.lr,
        warmup_steps=args.warmup_steps,
        threads=args.threads,
    )
    tail = result.losses[-100:]
    summary = {
        "steps_done": result.steps_done,
        "seconds": result.seconds,
        "mean_loss_last_100": float(np.mean(tail)) if tail else None,
        "run_dir": str(result.run_dir),
        "checkpoint": args.out,
    }
    emit(summary, args.json)
