"""Mamba4Cast benchmark: the paper's last-window protocol on M3, tourism and M4 hourly.

For each dataset in ../shared/data/timeseries: forecast the test horizon from at most the last
512 training points; MASE (seasonal-naive scale on that context) and sMAPE, averaged over series;
datasets aggregated by the geometric mean. Anchors run live with statsforecast (SeasonalNaive,
AutoETS, AutoTheta; one core). To fit ~20 minutes on a shared 2-core machine, every model is
scored on the same random subset of at most --max-series series per dataset (seed 0).

Also times inference over one set of series for H ∈ {8, 16, 32, 60}, Mamba4Cast vs AutoETS,
in the same run. Anchors can run first on their own (`--phase anchors`, cached in the git-ignored
runs/benchmarks/forecast.anchors.json with the date and machine that measured them) while the
model trains; `--phase all` reuses the cache when its settings match, and says so.

    python -m benchmarks.forecast [--phase anchors|all] [--max-series 300] [--model NAME]
    python -m benchmarks.forecast --phase validate --model A --model B   # checkpoint choice
    python -m benchmarks.forecast --phase calibrate --model STEM   # interval_scale into its JSON

The validate phase is what a checkpoint is chosen on, never the test split: a fixed subset of
VALIDATION_SERIES m3_monthly series (seed VALIDATION_SEED) whose *training* part is cut before its
last h points, which are the validation targets (MASE against SeasonalNaive on the same windows),
plus the scaled-target MSE on fixed draws of the synthetic training prior.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time

import numpy as np
import pandas as pd

from autofm.core.checkpoint import checkpoint_stem, update_checkpoint_meta
from autofm.core.io import atomic_write_json
from autofm.core.runtime import setup_torch
from autofm.data.timeseries import load_timeseries_folder, normalise_freq
from autofm.forecast.calibration import fit_interval_scale
from autofm.forecast.combination import DEFAULT_GATE_MARGINS
from autofm.forecast.evaluate import geometric_mean, last_window, score_forecasts
from autofm.forecast.forecaster import Mamba4CastForecaster
from autofm.forecast.theta import theta_forecast
from benchmarks.common import (
    RESULTS_DIR,
    markdown_table,
    read_cache,
    require_data,
    save_results,
    write_cache,
)

DATASETS = (
    "m3_monthly",
    "m3_quarterly",
    "m3_yearly",
    "tourism_monthly",
    "tourism_quarterly",
    "tourism_yearly",
    "m4_hourly",
)
ANCHORS = ("SeasonalNaive", "AutoETS", "AutoTheta")
TIMING_HORIZONS = (8, 16, 32, 60)
# whole datasets timed against AutoETS; tourism_monthly and m4_hourly are left out because
# AutoETS needs tens of minutes on their long seasonal series (where the speed-up is largest)
WHOLE_DATASETS = ("m3_monthly", "m3_quarterly", "m3_yearly", "tourism_quarterly", "tourism_yearly")
SEED = 0
VALIDATION_DATASET, VALIDATION_SERIES, VALIDATION_SEED = "m3_monthly", 50, 1
# quoted from the paper (arXiv:2410.09385), geometric-mean MASE over its 17 datasets; not re-run
PUBLISHED = {"Mamba4Cast": 1.126, "SeasonalNaive": 1.307, "AutoARIMA": 1.262}


def load_subset(name: str, max_series: int) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(context ≤ 512 points, test, meta) of a random subset of at most max_series series."""
    train, test, meta = load_timeseries_folder(require_data(f"timeseries/{name}"))
    ids = np.sort(train["unique_id"].unique())
    if len(ids) > max_series:
        ids = np.sort(np.random.default_rng(SEED).choice(ids, size=max_series, replace=False))
        train = train[train["unique_id"].isin(ids)]
        test = test[test["unique_id"].isin(ids)]
    return last_window(train), test.reset_index(drop=True), meta


def statsforecast_freq(meta: dict, context: pd.DataFrame):
    if pd.api.types.is_numeric_dtype(context["ds"]):
        return 1
    return normalise_freq(meta["freq"])


def run_anchor(model_name: str, context: pd.DataFrame, h: int, meta: dict):
    """Forecasts of one statsforecast model on one core, and its wall time."""
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS, AutoTheta, SeasonalNaive

    models = {"SeasonalNaive": SeasonalNaive, "AutoETS": AutoETS, "AutoTheta": AutoTheta}
    m = int(meta["season_length"])
    sf = StatsForecast(
        models=[models[model_name](season_length=m)],
        freq=statsforecast_freq(meta, context),
        n_jobs=1,
    )
    started = time.perf_counter()
    forecasts = sf.forecast(df=context, h=h)
    seconds = time.perf_counter() - started
    return forecasts.reset_index() if "unique_id" not in forecasts.columns else forecasts, seconds


def warm_up_numba() -> None:
    """Compile statsforecast's numba code once, so that no model's time includes compilation."""
    ds = pd.date_range("2000-01-01", periods=48, freq="MS")
    frame = pd.DataFrame({"unique_id": "w", "ds": ds, "y": np.sin(np.arange(48)) + 5})
    for name in ANCHORS:
        run_anchor(name, frame, 4, {"season_length": 12, "freq": "MS"})


def anchors_phase(max_series: int, results: dict, save) -> dict:
    """Scores and seconds of the statsforecast anchors on every dataset; `results` holds those
    already measured (they are kept) and `save(results)` runs after each new measurement."""
    warm_up_numba()
    for name in DATASETS:
        done = results.get(name, {})
        if all(model_name in done for model_name in ANCHORS):
            continue
        context, test, meta = load_subset(name, max_series)
        h, m = int(meta["horizon"]), int(meta["season_length"])
        results[name] = {**done, "n_series": int(context["unique_id"].nunique()), "h": h}
        for model_name in ANCHORS:
            if model_name in done:
                continue
            forecasts, seconds = run_anchor(model_name, context, h, meta)
            scores = score_forecasts(context, test, forecasts, model_name, m)
            results[name][model_name] = {**scores, "seconds": seconds}
            save(results)
            print(f"{name} {model_name}: MASE {scores['mase']:.3f} ({seconds:.1f} s)", flush=True)
    return results


def mamba_phase(forecaster: Mamba4CastForecaster, max_series: int) -> dict:
    """Per dataset: the shipped configuration's scores, seconds and 80% coverage, plus the
    MASE/sMAPE of the model alone (no Theta combination; gated, as before the combination) and
    of autofm's Theta alone, so the combination's parts are on record."""
    alone = model_alone(forecaster)
    results = {}
    for name in DATASETS:
        context, test, meta = load_subset(name, max_series)
        h, m = int(meta["horizon"]), int(meta["season_length"])
        freq = meta.get("freq")
        freq = None if freq == "unknown" else freq
        started = time.perf_counter()
        forecasts = forecaster.predict(context, h, freq=freq)
        seconds = time.perf_counter() - started
        scores = score_forecasts(context, test, forecasts, forecaster.alias, m)
        lower, upper = forecasts["Mamba4Cast-lo-80"], forecasts["Mamba4Cast-hi-80"]
        merged = test.merge(forecasts, on=["unique_id", "ds"])
        coverage = float(
            ((merged["y"] >= merged[lower.name]) & (merged["y"] <= merged[upper.name])).mean()
        )
        parts = {
            "model alone": score_forecasts(
                context, test, alone.predict(context, h, freq=freq), forecaster.alias, m
            ),
            "Theta (ours)": score_forecasts(
                context,
                test,
                theta_frame(context, h, m, forecasts, forecaster.context_length),
                "Theta",
                m,
            ),
        }
        results[name] = {
            **scores,
            "seconds": seconds,
            "coverage_80": coverage,
            **{f"{part} {k}": v[k] for part, v in parts.items() for k in ("mase", "smape")},
        }
        print(f"{name} Mamba4Cast: MASE {scores['mase']:.3f} ({seconds:.1f} s)", flush=True)
    return results


def model_alone(forecaster: Mamba4CastForecaster) -> Mamba4CastForecaster:
    """The same forecaster without the Theta combination, with that setting's gate margin."""
    alone = copy.copy(forecaster)
    alone.combine = None
    alone.gate_margin = DEFAULT_GATE_MARGINS[None]
    return alone


def theta_frame(
    context: pd.DataFrame, h: int, m: int, like: pd.DataFrame, context_length: int
) -> pd.DataFrame:
    """The combination's Theta part (optimised, on the model's last context_length points) for
    every context series, on the dates of the frame `like`."""
    ids = like["unique_id"].unique()
    groups = context.groupby("unique_id", sort=False)["y"]
    values = [groups.get_group(uid).to_numpy(float)[-context_length:] for uid in ids]
    forecasts = theta_forecast(values, h, np.full(len(ids), m), optimise_theta=True)
    return like[["unique_id", "ds"]].assign(Theta=forecasts.ravel())


def _seconds(forecaster: Mamba4CastForecaster, context: pd.DataFrame, h: int, freq) -> float:
    started = time.perf_counter()
    forecaster.predict(context, h, freq=freq)
    return time.perf_counter() - started


def timing_phase(forecaster: Mamba4CastForecaster, n_series: int) -> list[dict]:
    """Seconds to forecast n_series m3_monthly series at each H: Mamba4Cast (as shipped, and
    the model alone: gated, not combined) vs AutoETS, one core, same process."""
    context, _, meta = load_subset("m3_monthly", n_series)
    alone = model_alone(forecaster)
    for warm_up in (forecaster, alone):  # first calls pay one-off costs
        _seconds(warm_up, context, TIMING_HORIZONS[0], meta["freq"])
    warm_up_numba()
    rows = []
    for h in TIMING_HORIZONS:
        mamba_seconds = _seconds(forecaster, context, h, meta["freq"])
        alone_seconds = _seconds(alone, context, h, meta["freq"])
        _, ets_seconds = run_anchor("AutoETS", context, h, meta)
        rows.append(
            {
                "H": h,
                "series": int(context["unique_id"].nunique()),
                "Mamba4Cast s": mamba_seconds,
                "model alone s": alone_seconds,
                "AutoETS s": ets_seconds,
                "speed-up": ets_seconds / mamba_seconds,
                "speed-up model alone": ets_seconds / alone_seconds,
            }
        )
        print(
            f"timing H={h}: Mamba4Cast {mamba_seconds:.2f} s (model alone {alone_seconds:.2f}"
            f" s), AutoETS {ets_seconds:.2f} s",
            flush=True,
        )
    return rows


def whole_dataset_timing(forecaster: Mamba4CastForecaster, name: str = "m3_monthly") -> dict:
    """Seconds to forecast every series of one dataset (its own h), Mamba4Cast vs AutoETS, one
    core, same process: the issue's speed target ("over a whole dataset"). Wall seconds, and
    this process's CPU seconds, which other jobs on a shared machine disturb less."""
    context, _, meta = load_subset(name, 10**9)
    h = int(meta["horizon"])
    started = time.process_time()
    mamba_seconds = _seconds(forecaster, context, h, meta["freq"])
    mamba_cpu = time.process_time() - started
    started = time.process_time()
    _, ets_seconds = run_anchor("AutoETS", context, h, meta)
    ets_cpu = time.process_time() - started
    row = {
        "dataset": name,
        "series": int(context["unique_id"].nunique()),
        "h": h,
        "Mamba4Cast s": mamba_seconds,
        "AutoETS s": ets_seconds,
        "speed-up": ets_seconds / mamba_seconds,
        "Mamba4Cast CPU s": mamba_cpu,
        "AutoETS CPU s": ets_cpu,
        "speed-up CPU": ets_cpu / mamba_cpu,
    }
    print(f"whole {name}: {row}", flush=True)
    return row


def validation_windows() -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(context, validation targets, meta): the last h training points of a fixed subset."""
    return training_windows(VALIDATION_DATASET, VALIDATION_SERIES, min_horizons=1)


def prior_mse(forecaster: Mamba4CastForecaster, n_batches: int = 8) -> float:
    """Mean scaled-target MSE of the point forecast on fixed draws of the training prior."""
    import torch

    from autofm.forecast.priors import Mamba4CastPrior

    prior, total = Mamba4CastPrior(), 0.0
    generator = torch.Generator().manual_seed(VALIDATION_SEED)
    model = forecaster.model.eval()
    for _ in range(n_batches):
        batch = prior.sample(32, 160, 30, generator=generator)
        with torch.no_grad():
            out = model(
                batch.x_context, batch.y_context, batch.x_query, batch.metadata["season_length"]
            )
        target = ((batch.y_query - out["loc"]) / out["scale"]).clamp(-10.0, 10.0)
        total += float(((out["point"] - target) ** 2).mean()) / n_batches
    return total


def validation_phase(models: list[str]) -> dict:
    """MASE on the validation windows (and prior MSE) of each checkpoint and SeasonalNaive."""
    context, targets, meta = validation_windows()
    h, m = int(meta["horizon"]), int(meta["season_length"])
    forecasts, _ = run_anchor("SeasonalNaive", context, h, meta)
    results = {"SeasonalNaive": score_forecasts(context, targets, forecasts, "SeasonalNaive", m)}
    for name in models:
        forecaster = Mamba4CastForecaster.from_pretrained(name)
        forecasts = forecaster.predict(context, h, freq=meta["freq"])
        scores = score_forecasts(context, targets, forecasts, forecaster.alias, m)
        results[name] = {**scores, "prior_mse": prior_mse(forecaster)}
    for name, scores in results.items():
        print(f"validation {name}: " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items()))
    return {
        "dataset": VALIDATION_DATASET,
        "series": VALIDATION_SERIES,
        "seed": VALIDATION_SEED,
        "h": h,
        "results": results,
    }


def training_series(
    name: str, n_series: int = 100, min_horizons: int = 2
) -> tuple[pd.DataFrame, dict]:
    """(training part, meta) of ≤ n_series series of `name` with at least min_horizons·h + 2m
    points (seed VALIDATION_SEED). The test split is not read."""
    train, _, meta = load_timeseries_folder(require_data(f"timeseries/{name}"))
    h, m = int(meta["horizon"]), int(meta["season_length"])
    lengths = train.groupby("unique_id").size()
    ids = np.sort(lengths.index[lengths >= min_horizons * h + 2 * m].to_numpy())
    if len(ids) > n_series:
        ids = np.sort(np.random.default_rng(VALIDATION_SEED).choice(ids, n_series, replace=False))
    return train[train["unique_id"].isin(ids)].reset_index(drop=True), meta


def training_windows(
    name: str, n_series: int = 100, min_horizons: int = 2
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(context, targets, meta): the last h points of `training_series` are the targets."""
    train, meta = training_series(name, n_series, min_horizons)
    from_end = train.groupby("unique_id").cumcount(ascending=False)
    h = int(meta["horizon"])
    context = last_window(train[from_end >= h].reset_index(drop=True))
    return context, train[from_end < h].reset_index(drop=True), meta


def gate_validation_phase(model: str) -> dict:
    """MASE of the model without and with the backtest gate, of the gated model combined with
    Theta, and of SeasonalNaive, on training-part windows of every dataset: what the gate's and
    the combination's defaults were decided on."""
    rows = []
    forecasters = {
        "gate=none": Mamba4CastForecaster.from_pretrained(model, gate="none", combine=None),
        "gate=backtest": Mamba4CastForecaster.from_pretrained(model, combine=None),
        "combine=theta": Mamba4CastForecaster.from_pretrained(model, combine="theta"),
    }
    for name in DATASETS:
        context, targets, meta = training_windows(name)
        h, m = int(meta["horizon"]), int(meta["season_length"])
        freq = normalise_freq(meta.get("freq"))
        forecasts, _ = run_anchor("SeasonalNaive", context, h, meta)
        row = {
            "dataset": name,
            "series": int(context["unique_id"].nunique()),
            "SeasonalNaive": score_forecasts(context, targets, forecasts, "SeasonalNaive", m)[
                "mase"
            ],
        }
        for column, forecaster in forecasters.items():
            forecasts = forecaster.predict(context, h, freq=freq)
            row[column] = score_forecasts(context, targets, forecasts, "Mamba4Cast", m)["mase"]
        print(row, flush=True)
        rows.append(row)
    columns = ["SeasonalNaive", *forecasters]
    rows.append(
        {"dataset": "geometric mean", **{c: geometric_mean([r[c] for r in rows]) for c in columns}}
    )
    return {"model": model, "seed": VALIDATION_SEED, "rows": rows}


def calibration_phase(model: str, level: float = 0.8) -> dict:
    """Fit and store the checkpoint's interval_scale on training-part windows, overall and per
    season length (datasets of one season length pooled).

    Every dataset is weighed equally; the test split is not read. The factors go into the
    checkpoint's JSON (`calibration`).
    """
    print(f"calibration on training-part windows, seed {VALIDATION_SEED}", flush=True)
    forecaster = Mamba4CastForecaster.from_pretrained(
        model, interval_scale=1.0, season_interval_scales={}
    )
    panels, rows = [], []
    for name in DATASETS:
        series, meta = training_series(name)  # the holdout is each series' last h points
        h, freq = int(meta["horizon"]), normalise_freq(meta.get("freq"))
        scores = forecaster.holdout_interval_scores(series, h, freq=freq, level=level)
        panels.append(scores)
        coverage = float(np.mean(scores <= 1))
        rows.append(
            {
                "dataset": name,
                "season_length": int(meta["season_length"]),
                "points": len(scores),
                "coverage_raw": coverage,
            }
        )
    scale = fit_interval_scale(panels, level)
    seasons = sorted({row["season_length"] for row in rows})
    by_season = {
        m: fit_interval_scale([p for r, p in zip(rows, panels) if r["season_length"] == m], level)
        for m in seasons
    }
    for row, scores in zip(rows, panels, strict=True):
        row["coverage_calibrated"] = float(np.mean(scores <= scale))
        row["coverage_by_season"] = float(np.mean(scores <= by_season[row["season_length"]]))
    details = {
        "level": level,
        "fitted_on": "last h training points of ≤100 series of each of "
        + ", ".join(DATASETS)
        + f" (seed {VALIDATION_SEED}; datasets weighed equally; test split not read)",
        "command": "python -m benchmarks.forecast --phase calibrate",
        "coverage_raw": float(np.mean([r["coverage_raw"] for r in rows])),
    }
    stem = checkpoint_stem(model)
    season_scales = {str(m): v for m, v in by_season.items()}
    update_checkpoint_meta(
        stem,
        calibration={"interval_scale": scale, "season_interval_scales": season_scales, **details},
    )
    print(f"interval_scale {scale:.3f}, by season {season_scales} written to {stem}.json")
    return {
        "model": model,
        "interval_scale": scale,
        "season_interval_scales": season_scales,
        **details,
        "rows": rows,
    }


def summarise(
    anchors: dict, mamba: dict, timing: list[dict], whole: list[dict], meta: dict
) -> tuple[dict, str]:
    parts = ("model alone", "Theta (ours)")
    models = ("Mamba4Cast", *parts, *ANCHORS)
    rows, smape_rows = [], []
    for name in DATASETS:
        mase = (
            {"Mamba4Cast": mamba[name]["mase"]}
            | {p: mamba[name][f"{p} mase"] for p in parts}
            | {a: anchors[name][a]["mase"] for a in ANCHORS}
        )
        smape = (
            {"Mamba4Cast": mamba[name]["smape"]}
            | {p: mamba[name][f"{p} smape"] for p in parts}
            | {a: anchors[name][a]["smape"] for a in ANCHORS}
        )
        rows.append(
            {"dataset": name, "series": anchors[name]["n_series"], "h": anchors[name]["h"]} | mase
        )
        smape_rows.append({"dataset": name} | smape)
    geo = {m: geometric_mean(r[m] for r in rows) for m in models}
    rows.append({"dataset": "geometric mean", "series": "", "h": ""} | geo)
    smape_rows.append(
        {"dataset": "mean"} | {m: float(np.mean([r[m] for r in smape_rows])) for m in models}
    )
    ratio = geo["Mamba4Cast"] / geo["SeasonalNaive"]
    beats_ets = [r["dataset"] for r in rows[:-1] if r["Mamba4Cast"] <= r["AutoETS"]]
    time_rows = [
        {
            "dataset": name,
            "Mamba4Cast s": mamba[name]["seconds"],
            "AutoETS s": anchors[name]["AutoETS"]["seconds"],
            "AutoTheta s": anchors[name]["AutoTheta"]["seconds"],
            "80% coverage": mamba[name]["coverage_80"],
        }
        for name in DATASETS
    ]
    flat = max(r["Mamba4Cast s"] for r in timing) / min(r["Mamba4Cast s"] for r in timing)
    targets = {
        "geo_mase_ratio_to_seasonal_naive": ratio,
        "target_ratio_le_0.90": ratio <= 0.90,
        "datasets_at_least_as_good_as_AutoETS": beats_ets,
        "target_ets_on_3_of_7": len(beats_ets) >= 3,
        "timing_max_over_min_across_H": flat,
        "speedup_vs_AutoETS_min_over_H": min(r["speed-up"] for r in timing),
        "speedup_vs_AutoETS_whole_dataset": {r["dataset"]: r["speed-up"] for r in whole},
        "target_speedup_ge_10_on": [r["dataset"] for r in whole if r["speed-up"] >= 10],
    }
    markdown = (
        f"MASE (last window, context ≤ 512; {meta['subset_note']})\n\n"
        + markdown_table(rows, ["dataset", "series", "h", *models])
        + "\nsMAPE (%)\n\n"
        + markdown_table(smape_rows, ["dataset", *models], digits=2)
        + "\nForecasting time per dataset subset (s; anchors from the cached anchor phase, one core)"
        " and Mamba4Cast's 80% interval coverage\n\n"
        + markdown_table(time_rows, digits=2)
        + "\nInference time vs horizon, m3_monthly subset, same run (one core)\n\n"
        + markdown_table(timing, digits=2)
        + "\nWhole datasets, same run (one core)\n\n"
        + markdown_table(whole, digits=2)
        + "\nPublished geometric-mean MASE over the paper's 17 datasets (not re-run): "
        + ", ".join(f"{k} {v}" for k, v in PUBLISHED.items())
        + "\n\nTargets: "
        + f"geo-mean MASE ratio to SeasonalNaive {ratio:.3f} (target ≤ 0.90: "
        + f"{'met' if targets['target_ratio_le_0.90'] else 'missed'}); "
        + f"at least as good as AutoETS on {len(beats_ets)}/7 (target 3: "
        + f"{'met' if targets['target_ets_on_3_of_7'] else 'missed'}); "
        + "speed-up vs AutoETS over whole datasets "
        + ", ".join(f"{r['dataset']} {r['speed-up']:.1f}×" for r in whole)
        + f" (target 10×: met on {len(targets['target_speedup_ge_10_on'])}/{len(whole)}; "
        + f"min over H on the subset {targets['speedup_vs_AutoETS_min_over_H']:.1f}×); "
        + f"Mamba4Cast time max/min over H {flat:.2f}\n"
    )
    results = {
        "mase": {r["dataset"]: {m: r[m] for m in models} for r in rows},
        "smape": {r["dataset"]: {m: r[m] for m in models} for r in smape_rows},
        "anchors": anchors,
        "mamba4cast": mamba,
        "timing_vs_h": timing,
        "timing_whole_dataset": whole,
        "targets": targets,
        "published_not_rerun": PUBLISHED,
        **meta,
    }
    return results, markdown


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--phase",
        choices=("anchors", "all", "validate", "validate-gate", "calibrate"),
        default="all",
    )
    parser.add_argument("--max-series", type=int, default=300)
    parser.add_argument("--timing-series", type=int, default=150)
    parser.add_argument("--model", action="append", help="checkpoint (repeat for validate)")
    args = parser.parse_args(argv)
    setup_torch(int(os.environ.get("AUTOFM_THREADS", "1")))
    models = args.model or ["mamba4cast-cpu"]
    if args.phase == "validate":
        results = validation_phase(models)
        atomic_write_json(RESULTS_DIR / "forecast.validation.json", results)
        return
    if args.phase == "validate-gate":
        results = gate_validation_phase(models[0])
        atomic_write_json(RESULTS_DIR / "forecast.gate_validation.json", results)
        print(markdown_table(results["rows"], digits=3))
        return
    if args.phase == "calibrate":
        results = calibration_phase(models[0])
        atomic_write_json(RESULTS_DIR / "forecast.calibration.json", results)
        print(markdown_table(results["rows"], digits=3))
        return
    args.model = models[0]
    print(f"seed {SEED}; at most {args.max_series} series per dataset", file=sys.stderr)
    settings = {"max_series": args.max_series, "seed": SEED, "datasets": list(DATASETS)}
    anchors: dict = read_cache("forecast.anchors", settings) or {}

    def save(results: dict) -> None:
        write_cache("forecast.anchors", settings, results)

    anchors = anchors_phase(args.max_series, anchors, save)
    if args.phase == "anchors":
        return
    forecaster = Mamba4CastForecaster.from_pretrained(args.model)
    mamba = mamba_phase(forecaster, args.max_series)
    timing = timing_phase(forecaster, args.timing_series)
    whole = [whole_dataset_timing(forecaster, name) for name in WHOLE_DATASETS]
    meta = {
        "model": args.model,
        "model_provenance": forecaster.checkpoint_meta_["provenance"],
        "max_series": args.max_series,
        "subset_note": f"every model on the same random subset of ≤ {args.max_series} series "
        f"per dataset, seed {SEED}",
    }
    results, markdown = summarise(anchors, mamba, timing, whole, meta)
    save_results("forecast", results, markdown, [SEED])


if __name__ == "__main__":
    main()
