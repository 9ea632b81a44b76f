"""`autofm ensemble`: build a pool of base-model predictions, fit one ensembler, compare them all."""

from __future__ import annotations

import argparse

from autofm.core.cli import CommandGroup, add_out, add_report, add_seed, declare_outputs
from autofm.core.errors import ValidationError
from autofm.core.output import emit
from autofm.core.progress import status


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add the `ensemble` command group."""
    from autofm.ensemble.methods import DEFAULT_METHODS, METHODS

    group = CommandGroup(
        subparsers, common, "ensemble", "post-hoc ensembling of base models' predictions"
    )

    build = group.command(
        "build-pool", "train a diverse model pool on a table; store predictions", _cmd_build_pool
    )
    build.add_argument("table", help="CSV/TSV/Parquet file or a bundled dataset name")
    build.add_argument("--target", help="target column (default: the last one)")
    add_out(build, "pool folder to write", kind="folder", required=True)
    build.add_argument("--val-size", type=float, default=0.25)
    build.add_argument("--test-size", type=float, default=0.25)
    build.add_argument("--grid", choices=("full", "small"), default="full", help="pool size")
    add_seed(build)

    synth = group.command(
        "synth", "write a synthetic FTC-like pool (families, collapsed configs)", _cmd_synth
    )
    add_out(synth, "pool folder to write", kind="folder", required=True)
    synth.add_argument("--models", type=int, default=30)
    synth.add_argument("--classes", type=int, default=4)
    synth.add_argument("--val", type=int, default=1000)
    synth.add_argument("--test", type=int, default=1000)
    add_seed(synth)

    fit = group.command(
        "fit", "fit one ensembler on a pool's validation split; score on test", _cmd_fit
    )
    fit.add_argument("pool", help="pool folder (build-pool/synth output, or the FTC layout)")
    fit.add_argument("--method", default="greedy", choices=list(METHODS))
    add_seed(fit)
    add_report(fit)
    fit.add_argument(
        "--out",
        "--save",
        dest="out",
        help="checkpoint stem for a neural ensembler's weights (--save is the older name)",
    )
    declare_outputs(fit, out="checkpoint")

    comp = group.command(
        "compare", "every method on one pool, normalised by SingleBest", _cmd_compare
    )
    comp.add_argument("pool", help="pool folder (build-pool/synth output, or the FTC layout)")
    comp.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(DEFAULT_METHODS))
    add_seed(comp)
    add_report(comp)


def _cmd_build_pool(args: argparse.Namespace) -> None:
    import pandas as pd

    from autofm.data.tables import load_table
    from autofm.ensemble.pool import save_pool
    from autofm.ensemble.pool_builder import build_pool

    X, y = load_table(args.table, args.target)
    non_numeric = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    if non_numeric:
        raise ValidationError(
            f"feature column(s) {non_numeric[:5]} are not numeric; one-hot encode them first"
        )
    pool = build_pool(
        X.to_numpy(dtype=float),
        y.to_numpy(),
        val_size=args.val_size,
        test_size=args.test_size,
        random_state=args.seed,
        grid_size=args.grid,
    )
    pool.description["table"] = str(args.table)
    save_pool(pool, args.out)
    counts = {s: sum(m["status"] == s for m in pool.models) for s in ("ok", "constant", "failed")}
    result = {
        "out": str(args.out),
        "n_models": pool.n_models,
        "n_classes": pool.n_classes,
        "n_val": len(pool.val_labels),
        "n_test": len(pool.test_labels),
        "status_counts": counts,
    }
    human = (
        f"pool of {pool.n_models} models ({counts['ok']} ok, {counts['constant']} constant, "
        f"{counts['failed']} failed), {pool.n_classes} classes, {len(pool.val_labels)} validation / "
        f"{len(pool.test_labels)} test rows → {args.out}"
    )
    emit(result, args.json, human)


def _cmd_synth(args: argparse.Namespace) -> None:
    from autofm.ensemble.ftc import make_synthetic_ftc
    from autofm.ensemble.pool import save_pool

    pool = make_synthetic_ftc(
        n_val=args.val,
        n_test=args.test,
        n_models=args.models,
        n_classes=args.classes,
        random_state=args.seed,
    )
    save_pool(pool, args.out)
    emit(
        {"out": str(args.out), "n_models": pool.n_models, "n_classes": pool.n_classes},
        args.json,
        f"synthetic FTC-like pool: {pool.n_models} models, {pool.n_classes} classes → {args.out}",
    )


def _cmd_fit(args: argparse.Namespace) -> None:
    import numpy as np

    from autofm.core.runtime import setup_torch
    from autofm.ensemble.comparison import compare, comparison_report
    from autofm.ensemble.neural import NeuralEnsembler
    from autofm.ensemble.pool import load_pool

    setup_torch()
    pool = load_pool(args.pool)
    comparison = compare(pool, [args.method], random_state=args.seed)
    metrics = comparison.results[args.method]
    ensembler = comparison.ensemblers[args.method]
    weights = ensembler.weights(comparison.pool.test_predictions).mean(axis=0)
    top = np.argsort(-weights, kind="stable")[:5]
    result = {
        "method": args.method,
        **metrics,
        "top_models": {comparison.pool.model_names[i]: float(weights[i]) for i in top},
    }
    if args.out:
        if not isinstance(ensembler, NeuralEnsembler):
            raise ValidationError("--out is for neural methods (neural-ma, neural-stack, ...)")
        result["checkpoint"] = str(ensembler.save(args.out))
    if args.report:
        result["report"] = str(
            comparison_report(comparison, f"ensemble fit: {args.method}").save(args.report)
        )
        status(f"report written to {result['report']}")
    human = (
        f"{args.method}: test NLL {metrics['nll']:.4f} ({metrics['normalized_nll']:.3f}× SingleBest), "
        f"error {metrics['error']:.4f} ({metrics['normalized_error']:.3f}×), fit "
        f"{metrics['fit_seconds']:.2f} s\ntop weights: "
        + ", ".join(f"{name} {w:.3f}" for name, w in result["top_models"].items())
    )
    emit(result, args.json, human)


def _cmd_compare(args: argparse.Namespace) -> None:
    from autofm.core.runtime import setup_torch
    from autofm.ensemble.comparison import compare, comparison_report
    from autofm.ensemble.pool import load_pool

    setup_torch()
    comparison = compare(load_pool(args.pool), args.methods, random_state=args.seed)
    keys = ("nll", "error", "normalized_nll", "normalized_error", "fit_seconds")
    result = {
        method: {key: metrics[key] for key in keys}
        for method, metrics in comparison.results.items()
    }
    if args.report:
        path = comparison_report(comparison).save(args.report)
        status(f"report written to {path}")
    lines = [f"{'method':<16} {'NLL':>8} {'error':>8} {'NLL/SB':>8} {'err/SB':>8} {'fit s':>7}"]
    for method, m in result.items():
        lines.append(
            f"{method:<16} {m['nll']:8.4f} {m['error']:8.4f} {m['normalized_nll']:8.3f} "
            f"{m['normalized_error']:8.3f} {m['fit_seconds']:7.2f}"
        )
    emit(result, args.json, "\n".join(lines))
