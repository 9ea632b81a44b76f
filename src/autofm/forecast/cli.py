"""`autofm forecast`: zero-shot forecasts (predict), training on the prior (train), evaluation."""

from __future__ import annotations

import argparse

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
from autofm.core.errors import ValidationError
from autofm.core.output import emit
from autofm.core.progress import status

DEFAULT_CHECKPOINT = "mamba4cast-cpu"


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add the `forecast` command group."""
    group = CommandGroup(
        subparsers, common, "forecast", "Mamba4Cast: zero-shot forecasting of time series"
    )

    predict = group.command(
        "predict", "forecast every series of a long CSV (unique_id, ds, y)", _cmd_predict
    )
    predict.add_argument("series", help="CSV/Parquet in long format: unique_id, ds, y")
    predict.add_argument("--h", type=int, required=True, help="forecast horizon (steps)")
    predict.add_argument("--freq", help="pandas frequency alias (default: inferred)")
    predict.add_argument(
        "--season-length", type=int, help="steps per season (default: from the frequency)"
    )
    _add_forecaster_options(predict)
    predict.add_argument(
        "--calibrate-intervals",
        action="store_true",
        help="first widen or narrow the 80%% intervals so they cover 80%% of each series' own "
        "last h points, forecast from the rest (default: the checkpoint's calibration)",
    )
    add_out(predict, "write the forecasts to this CSV", kind="file")
    add_report(predict, "write an HTML report with plots here")

    train = group.command("train", "train Mamba4Cast on the synthetic prior", _cmd_train)
    train.add_argument(
        "--preset", default="cpu", help="training preset, a key of autofm.forecast.training.PRESETS"
    )
    train.add_argument("--run-dir", default="runs/forecast", help="run folder (resumes if present)")
    declare_outputs(train, run_dir="folder")
    train.add_argument("--steps", type=int, help="training steps (default: the preset's)")
    add_max_seconds(train)
    add_seed(train)
    add_threads(train)
    add_out(train, "export the trained weights to this checkpoint stem", kind="checkpoint")
    add_init(
        train, "start from the weights of this checkpoint (a shipped name, a stem, or a run's last)"
    )
    train.add_argument("--lr", type=float, help="peak learning rate (default: the preset's)")
    train.add_argument("--warmup-steps", type=int, help="warmup steps (default: the preset's)")
    train.add_argument(
        "--profile-fraction",
        type=float,
        help="share of seasonal-profile series among seasonal frequencies (0: the paper's prior; "
        "default: the prior's)",
    )
    train.add_argument(
        "--drift-prob",
        type=float,
        help="share of short contexts given a drift that continues into the horizon "
        "(default: the prior's)",
    )

    evaluate = group.command(
        "evaluate", "last-window MASE/sMAPE on a time-series folder", _cmd_evaluate
    )
    evaluate.add_argument("folder", help="folder with train.csv, test.csv, meta.json")
    _add_forecaster_options(evaluate)
    evaluate.add_argument("--max-series", type=int, help="evaluate a random subset of series")
    add_seed(evaluate)


def _add_forecaster_options(parser: argparse.ArgumentParser) -> None:
    """The checkpoint to use and how its forecasts are made (predict, evaluate)."""
    parser.add_argument(
        "--checkpoint",
        "--model",
        dest="checkpoint",
        default=DEFAULT_CHECKPOINT,
        help=f"checkpoint: a shipped name or a path stem (default {DEFAULT_CHECKPOINT})",
    )
    parser.add_argument(
        "--context-length", type=int, help="history points used (default: the trained maximum)"
    )
    parser.add_argument(
        "--combine",
        default="theta",
        choices=("theta", "none"),
        help="average with the Theta method's forecast for daily and slower series (default), "
        "or 'none': the model alone, as in the paper",
    )
    parser.add_argument(
        "--gate",
        default="backtest",
        choices=("backtest", "none"),
        help="per-series backtest against seasonal naive for series not combined (default)",
    )


def _forecaster(args: argparse.Namespace):
    from autofm.core.runtime import setup_torch
    from autofm.forecast.forecaster import Mamba4CastForecaster

    setup_torch()
    return Mamba4CastForecaster.from_pretrained(
        args.checkpoint,
        context_length=args.context_length,
        combine=None if args.combine == "none" else args.combine,
        gate=args.gate,
    )


def _cmd_predict(args: argparse.Namespace) -> None:
    from autofm.core.io import atomic_path
    from autofm.data.timeseries import read_long

    history = read_long(args.series)
    forecaster = _forecaster(args)
    if args.calibrate_intervals:
        scale = forecaster.calibrate_intervals(
            history, args.h, freq=args.freq, season_length=args.season_length
        )
        status(f"interval scale {scale:.3f}, fitted on each series' last {args.h} points")
    forecasts = forecaster.predict(
        history, args.h, freq=args.freq, season_length=args.season_length
    )
    if args.out:
        with atomic_path(args.out) as tmp:
            forecasts.to_csv(tmp, index=False)
    if args.report:
        from autofm.forecast.report import forecast_report

        forecast_report(history, forecasts, forecaster.alias).save(args.report)
        status(f"report written to {args.report}")
    result = {
        "n_series": int(forecasts["unique_id"].nunique()),
        "h": args.h,
        "interval_scale": forecaster.interval_scale,
        "season_interval_scales": forecaster.season_interval_scales,
        "out": args.out,
        "report": args.report,
        "forecasts": forecasts.astype({"ds": str}).to_dict(orient="records"),
    }
    human = forecasts.to_string(index=False, max_rows=40)
    emit(result, args.json, human)


def _cmd_train(args: argparse.Namespace) -> None:
    from autofm.forecast.priors import Mamba4CastPrior
    from autofm.forecast.training import export, train_forecaster

    prior_options = {}
    for flag in ("profile_fraction", "drift_prob"):
        value = getattr(args, flag)
        if value is not None:
            if not 0.0 <= value <= 1.0:
                raise ValidationError(f"--{flag.replace('_', '-')} must be in [0, 1], got {value}")
            prior_options[flag] = value
    result = train_forecaster(
        args.preset,
        args.run_dir,
        prior=Mamba4CastPrior(**prior_options),
        init_from=args.init,
        steps=args.steps,
        max_seconds=args.max_seconds,
        seed=args.seed,
        lr=args.lr,
        warmup_steps=args.warmup_steps,
        threads=args.threads,
    )
    out = str(export(args.run_dir, args.out)) if args.out else None
    summary = {
        "steps": result.steps_done,
        "final_loss": result.losses[-1] if result.losses else None,
        "seconds": result.seconds,
        "run_dir": str(args.run_dir),
        "checkpoint": out,
    }
    emit(summary, args.json)


def _cmd_evaluate(args: argparse.Namespace) -> None:
    from autofm.forecast.evaluate import evaluate_folder

    forecaster = _forecaster(args)
    result = evaluate_folder(
        args.folder,
        lambda context, h, freq: forecaster.predict(context, h, freq=freq),
        forecaster.alias,
        max_series=args.max_series,
        seed=args.seed,
    )
    emit(
        {k: result[k] for k in ("mase", "smape", "n_series", "seconds")},
        args.json,
        f"MASE {result['mase']:.3f}  sMAPE {result['smape']:.2f}  "
        f"series {result['n_series']}  {result['seconds']:.1f} s",
    )
