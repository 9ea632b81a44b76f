"""Benchmark of autofm.lm on tinyshakespeare: coordinate check, μTransfer LR sweeps (SP vs μP at
three widths) and warm-starting width w → 2w against training from scratch.

Scaled to one (heavily shared) CPU thread, ~25 min: widths 32/64/128 (base width 32), depth 2,
head size 16, block 64, batch 16, 120 steps per run (123k tokens, about 1/8 of an epoch), one seed;
warm-starting 32 → 64. Finished runs are cached in runs/bench_lm so a
killed benchmark resumes. Writes benchmarks/results/lm.{json,md,html} and lm.*.png.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from pathlib import Path

import matplotlib.pyplot as plt

from autofm.core.io import atomic_write_json
from autofm.core.report import Report
from autofm.core.runtime import seed_everything, setup_torch
from autofm.data.text import encode, load_text, split_tokens
from autofm.lm import GPT, GPTConfig, TrainConfig, coord_check, grow, log_grid, lr_sweep, train
from autofm.lm.checkpoint import load_model, save_model
from autofm.lm.report import coord_check_section, plot_coord_check, plot_curves, plot_lr_sweeps
from autofm.lm.sweep import SweepResult
from benchmarks.common import RESULTS_DIR, Timer, markdown_table, require_data, save_results

SEED = 0
WIDTHS = (32, 64, 128)
LEARNING_RATES = log_grid(1e-4, 3e-2, 6)
STEPS = 120
BATCH = 16
BASE = GPTConfig(width=32, depth=2, head_size=16, block_size=64, base_width=32)
TRAIN = TrainConfig(
    batch_size=BATCH,
    tokens=STEPS * BATCH * BASE.block_size,
    schedule="constant",
    warmup_fraction=0.1,
    eval_blocks=64,
    device="cpu",
)
GROW_FROM, GROW_TO = 32, 64
SHRINKS = (0.0, 0.2, 0.4, 0.6, 1.0)
COORD_WIDTHS = (32, 64, 128, 256)
COORD_LR = 3e-3
CACHE = Path("runs/bench_lm")


def _cache() -> dict:
    path = CACHE / "cache.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _store(key: str, value) -> None:
    cache = _cache()
    cache[key] = value
    atomic_write_json(CACHE / "cache.json", cache)


def _sweep(key: str, train_tokens, valid_tokens, config, widths, make_model=None) -> SweepResult:
    """One lr_sweep per width, each cached by `key/width`."""
    result = SweepResult(learning_rates=list(LEARNING_RATES))
    for width in widths:
        cached = _cache().get(f"{key}/{width}")
        if cached is None:
            sweep = lr_sweep(
                train_tokens,
                valid_tokens,
                config,
                [width],
                LEARNING_RATES,
                TRAIN,
                seeds=(SEED,),
                make_model=make_model,
            )
            cached = sweep.rows
            _store(f"{key}/{width}", cached)
        result.rows.extend(cached)
    return result


def _curve_run(key: str, make_model, train_tokens, valid_tokens, lr: float) -> dict:
    cached = _cache().get(key)
    if cached is None:
        config = dataclasses.replace(TRAIN, lr=lr, seed=SEED, eval_every=max(1, STEPS // 20))
        run = train(make_model(), train_tokens, valid_tokens, config)
        cached = {"history": run.history, "final": run.final_val_loss, "seconds": run.seconds}
        _store(key, cached)
    return cached


def main() -> None:
    setup_torch(device="cpu")
    seed_everything(SEED)
    timer = Timer()
    corpus = require_data("text") / "tinyshakespeare.txt"
    tokens = encode(load_text(corpus))
    train_tokens, valid_tokens = split_tokens(tokens, 0.1)
    CACHE.mkdir(parents=True, exist_ok=True)
    report = Report("autofm.lm benchmark: μP, μTransfer and warm-starting on tinyshakespeare")
    report.text(
        f"{len(tokens):,} bytes; last 10% held out for validation loss. Depth {BASE.depth}, head "
        f"size {BASE.head_size}, block {BASE.block_size}, batch {BATCH}, {STEPS} steps "
        f"({TRAIN.tokens:,} tokens) per run, AdamW β=(0.9, 0.95), constant LR after 10% warmup, "
        f"seed {SEED}."
    )
    results: dict = {"config": {"base": BASE.to_dict(), "train": dataclasses.asdict(TRAIN)}}

    # 1. coordinate check
    with timer("coord_check"):
        coords = coord_check(
            widths=COORD_WIDTHS,
            steps=5,
            lr=COORD_LR,
            n_seeds=3,
            batch_size=8,
            seed=SEED,
            tokens=train_tokens,
        )
    results["coord_check"] = {
        "widths": list(COORD_WIDTHS),
        "lr": COORD_LR,
        "ratios": coords.ratios,
        "layer_ratios": {p: coords.layer_ratios(p) for p in ("sp", "mup")},
    }
    report.extend(coord_check_section(coords, COORD_LR))
    fig = plot_coord_check(coords)
    fig.savefig(RESULTS_DIR / "lm.coord_check.png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    print(f"coord check ratios: {coords.ratios} ({timer.seconds['coord_check']:.0f} s)", flush=True)

    # 2. μTransfer: LR sweeps at three widths, SP and μP
    sweeps = {}
    for name in ("sp", "mup"):
        with timer(f"sweep_{name}"):
            sweeps[name] = _sweep(
                f"sweep/{name}",
                train_tokens,
                valid_tokens,
                BASE.replace(parametrization=name),
                WIDTHS,
            )
        print(f"{name} best LR per width: {sweeps[name].best_lr()}", flush=True)
    results["sweeps"] = {
        name: {
            "rows": sweep.rows,
            "best_lr": sweep.best_lr(),
            "best_index": sweep.best_index(),
            "best_index_spread": max(sweep.best_index().values())
            - min(sweep.best_index().values()),
        }
        for name, sweep in sweeps.items()
    }

    # 3. warm-starting GROW_FROM → GROW_TO in μP
    mup = BASE.replace(parametrization="mup")
    small_lr = sweeps["mup"].best_lr()[GROW_FROM]
    scratch_lr = sweeps["mup"].best_lr()[GROW_TO]
    small_stem = CACHE / f"small_w{GROW_FROM}"
    with timer("warm_start"):
        if not small_stem.with_suffix(".json").exists():
            small_run = train(
                GPT(mup.replace(width=GROW_FROM), seed=SEED),
                train_tokens,
                valid_tokens,
                dataclasses.replace(TRAIN, lr=small_lr, seed=SEED),
            )
            save_model(small_stem, small_run.model, {"final_val_loss": small_run.final_val_loss})
        small, small_meta = load_model(small_stem)
        large_config = mup.replace(width=GROW_TO)
        scratch = _curve_run(
            "grow/scratch",
            lambda: GPT(large_config, seed=SEED + 1),
            train_tokens,
            valid_tokens,
            scratch_lr,
        )
        target = scratch["final"]
        warm = {}
        for shrink in SHRINKS:
            warm[shrink] = _curve_run(
                f"grow/shrink{shrink}",
                lambda shrink=shrink: grow(small, large_config, shrink=shrink, seed=SEED + 1),
                train_tokens,
                valid_tokens,
                scratch_lr,
            )
    rows = []
    for shrink, run in warm.items():
        reached = next(
            (
                r["tokens"]
                for r in run["history"]
                if r.get("val_loss") is not None and r["val_loss"] <= target
            ),
            None,
        )
        rows.append(
            {
                "shrink": shrink,
                "start_val_loss": run["history"][0]["val_loss"],
                "final_val_loss": run["final"],
                "tokens_to_scratch_final": reached,
                "fraction_of_scratch_tokens": math.nan
                if reached is None
                else reached / TRAIN.tokens,
            }
        )
    best = min(
        rows,
        key=lambda r: (
            math.inf if r["tokens_to_scratch_final"] is None else r["tokens_to_scratch_final"],
            r["final_val_loss"],
        ),
    )
    best_shrink = best["shrink"]
    small_params = small.n_parameters()
    large_params = GPT(large_config, seed=0).n_parameters()
    with timer("warm_sweep"):
        warm_sweep = _sweep(
            f"sweep/warm{best_shrink}",
            train_tokens,
            valid_tokens,
            large_config,
            [GROW_TO],
            make_model=lambda config, seed: grow(small, config, shrink=best_shrink, seed=seed + 1),
        )
    scratch_index = LEARNING_RATES.index(scratch_lr)
    warm_index = warm_sweep.best_index()[GROW_TO]
    results["warm_start"] = {
        "from_width": GROW_FROM,
        "to_width": GROW_TO,
        "scratch_lr": scratch_lr,
        "small_lr": small_lr,
        "small_val_loss": small_meta["config"]["training"]["final_val_loss"],
        "small_cost": {
            "tokens": TRAIN.tokens,
            "parameters": small_params,
            "large_parameters": large_params,
            "large_token_equivalent": TRAIN.tokens * small_params / large_params,
        },
        "scratch_final_val_loss": target,
        "rows": rows,
        "best_shrink": best_shrink,
        "shrink0_equals_scratch": warm[0.0]["final"] == target,
        "warm_sweep_rows": warm_sweep.rows,
        "warm_best_lr": warm_sweep.best_lr()[GROW_TO],
        "best_lr_grid_steps_apart": abs(warm_index - scratch_index),
        "curves": {
            "scratch": scratch["history"],
            **{f"λ={k}": v["history"] for k, v in warm.items()},
        },
    }
    results["seconds"] = timer.seconds
    print(f"warm-start rows: {rows}; best λ {best_shrink}", flush=True)

    # figures and report
    fig = plot_lr_sweeps(
        {"SP": sweeps["sp"], "μP": sweeps["mup"], f"μP warm-start λ={best_shrink}": warm_sweep}
    )
    fig.savefig(RESULTS_DIR / "lm.sweeps.png", dpi=90, bbox_inches="tight")
    report.heading("μTransfer: learning-rate sweeps")
    report.figure(fig, "final validation loss vs LR; ★ best per width")
    curves = {
        "scratch μP": scratch["history"],
        **{f"warm λ={k}": v["history"] for k, v in warm.items()},
    }
    fig = plot_curves(curves, target)
    fig.savefig(RESULTS_DIR / "lm.warmstart.png", dpi=90, bbox_inches="tight")
    report.heading(f"Warm-starting width {GROW_FROM} → {GROW_TO}")
    report.table(rows)
    report.figure(fig, "validation loss vs tokens: scratch and warm-started")
    report.save(RESULTS_DIR / "lm.html")

    markdown = _markdown(results)
    save_results("lm", results, markdown, [SEED])


def _markdown(results: dict) -> str:
    coord = results["coord_check"]
    lines = [
        f"### Coordinate check (widths {coord['widths']}, 5 Adam steps, lr {coord['lr']:g})\n",
        markdown_table(
            [
                {"parametrisation": p.upper(), "max/min across widths (worst layer)": v}
                for p, v in coord["ratios"].items()
            ],
            digits=2,
        ),
        "\n### μTransfer: best LR per width (grid "
        + ", ".join(f"{lr:g}" for lr in LEARNING_RATES)
        + ")\n",
    ]
    rows = []
    for name, sweep in results["sweeps"].items():
        row = {"parametrisation": name.upper()}
        for width, lr in sorted(sweep["best_lr"].items(), key=lambda kv: int(kv[0])):
            losses = {r["lr"]: r["val_loss"] for r in sweep["rows"] if r["width"] == int(width)}
            row[f"width {width}"] = f"{lr:g} ({losses[lr]:.3f})"
        row["grid steps spread"] = sweep["best_index_spread"]
        rows.append(row)
    lines.append(markdown_table(rows))
    warm = results["warm_start"]
    lines.append(
        f"\n### Warm-starting μP width {warm['from_width']} → {warm['to_width']} "
        f"(lr {warm['scratch_lr']:g}; scratch final val loss {warm['scratch_final_val_loss']:.3f})\n"
    )
    lines.append(
        markdown_table(
            [
                {
                    "λ (shrink), s=1": r["shrink"],
                    "final val loss": r["final_val_loss"],
                    "tokens to scratch's final": "not reached"
                    if r["tokens_to_scratch_final"] is None
                    else r["tokens_to_scratch_final"],
                    "fraction of scratch tokens": r["fraction_of_scratch_tokens"],
                }
                for r in warm["rows"]
            ]
        )
    )
    cost = warm["small_cost"]
    lines.append(
        f"\nSmall model: {cost['parameters']:,} parameters, {cost['tokens']:,} tokens "
        f"(≈ {cost['large_token_equivalent']:,.0f} tokens of the {cost['large_parameters']:,}-"
        f"parameter model in FLOPs), val loss {warm['small_val_loss']:.3f}. Best LR of the "
        f"warm-started model (λ={warm['best_shrink']}): {warm['warm_best_lr']:g} vs scratch "
        f"{warm['scratch_lr']:g} ({warm['best_lr_grid_steps_apart']} grid steps apart).\n"
    )
    return "".join(lines)


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"total {time.perf_counter() - started:.0f} s", file=sys.stderr)
