"""Benchmark of autofm.lm on tinyshakespeare: coordinate check, μTransfer LR sweeps (SP vs μP at
three widths) and warm-starting width w → 2w against training from scratch.

Scaled to one (heavily shared) CPU thread: widths 32/64/128 (base width 32), depth 2, head size
16, block 64, batch 16, 120 steps per run (123k tokens, about 1/8 of an epoch), one seed;
warm-starting 32 → 64, the small model trained for the same tokens per parameter as the large
one (so about a third of its tokens). Everything runs under two LR schedules: constant after a 10% warmup
(tokens-to-target is cleanest there) and warmup-stable-decay (linear decay over the last 25%,
which makes the final loss of a short run far less noisy). Finished runs are cached in
runs/bench_lm (one cache file per schedule) so a killed benchmark resumes.
Writes benchmarks/results/lm.{json,md} and the figures lm.*.png (once: the HTML report that embeds
them goes to runs/bench_lm/lm.html).
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
from autofm.lm.checkpoint import load_gpt, save_gpt
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
PROTOCOLS = {
    "wsd": dataclasses.replace(TRAIN, schedule="wsd", decay_fraction=0.25),
    "constant": TRAIN,
}
SWEEP_SEEDS = {"wsd": (SEED, SEED + 1), "constant": (SEED,)}
# small model's budget: the large one's tokens per parameter ("tpp") or its tokens ("equal")
WARM_BUDGETS = {"wsd": ("tpp",), "constant": ("tpp", "equal")}
GROW_FROM, GROW_TO = 32, 64
SHRINKS = (0.0, 0.2, 0.4, 0.6, 1.0)
COORD_WIDTHS = (32, 64, 128, 256)
COORD_LR = 3e-3
CACHE = Path("runs/bench_lm")
NAMES = {"sp": "SP", "mup": "μP"}


class Cache:
    """Finished runs as JSON, one file per schedule, so a killed benchmark resumes."""

    def __init__(self, protocol: str, seed: int = SEED):
        name = "cache" if protocol == "constant" else f"cache_{protocol}"
        name += "" if seed == SEED else f"_seed{seed}"
        self.path = CACHE / f"{name}.json"
        self.prefix = "" if protocol == "constant" else f"{protocol}/"

    def get(self, key: str):
        data = json.loads(self.path.read_text()) if self.path.exists() else {}
        return data.get(self.prefix + key)

    def put(self, key: str, value) -> None:
        data = json.loads(self.path.read_text()) if self.path.exists() else {}
        data[self.prefix + key] = value
        atomic_write_json(self.path, data)


def _sweep(
    cache, key, config, train_config, data, widths, make_model=None, seed=SEED
) -> SweepResult:
    """One lr_sweep per width, each cached by `key/width`."""
    result = SweepResult(learning_rates=list(LEARNING_RATES))
    for width in widths:
        rows = cache.get(f"{key}/{width}")
        if rows is None:
            sweep = lr_sweep(
                *data, config, [width], LEARNING_RATES, train_config, (seed,), make_model
            )
            rows = sweep.rows
            cache.put(f"{key}/{width}", rows)
        result.rows.extend(rows)
    return result


def _curve_run(cache, key, make_model, train_config, data, lr: float) -> dict:
    cached = cache.get(key)
    if cached is None:
        config = dataclasses.replace(train_config, lr=lr, seed=SEED, eval_every=max(1, STEPS // 20))
        run = train(make_model(), *data, config)
        cached = {"history": run.history, "final": run.final_val_loss, "seconds": run.seconds}
        cache.put(key, cached)
    return cached


def run_sweeps(protocol: str, train_config: TrainConfig, data, timer: Timer) -> dict:
    """Experiment 2 under one schedule: SP and μP LR sweeps at every width, every seed."""
    sweeps = {}
    for name in ("sp", "mup"):
        with timer(f"{protocol}/sweep_{name}"):
            config = BASE.replace(parametrization=name)
            sweeps[name] = SweepResult(learning_rates=list(LEARNING_RATES))
            for seed in SWEEP_SEEDS[protocol]:
                cache = Cache(protocol, seed)
                one = _sweep(cache, f"sweep/{name}", config, train_config, data, WIDTHS, seed=seed)
                sweeps[name].rows.extend(one.rows)
        print(f"[{protocol}] {name} best LR per width: {sweeps[name].best_lr()}", flush=True)
    return sweeps


def warm_start(
    protocol: str, train_config: TrainConfig, data, sweeps: dict, timer: Timer, small_budget: str
) -> tuple[dict, dict]:
    """Experiment 3: grow a trained μP model GROW_FROM → GROW_TO, λ ∈ SHRINKS, against scratch.

    `small_budget`: "tpp" gives the small model the large one's tokens per parameter, "equal"
    the large one's tokens."""
    cache = Cache(protocol)
    mup = BASE.replace(parametrization="mup")
    small_lr = sweeps["mup"].best_lr()[GROW_FROM]
    scratch_lr = sweeps["mup"].best_lr()[GROW_TO]
    suffix = "" if protocol == "constant" else f"_{protocol}"
    # no dots in the stem: the checkpoint helpers treat a dot as the start of a suffix
    small_lr_index = LEARNING_RATES.index(small_lr)
    small_stem = CACHE / f"small_w{GROW_FROM}_{small_budget}_lr{small_lr_index}{suffix}"
    small_config, large_config = mup.replace(width=GROW_FROM), mup.replace(width=GROW_TO)
    small_params = GPT(small_config, seed=0).n_parameters()
    large_params = GPT(large_config, seed=0).n_parameters()
    tokens_per_step = train_config.batch_size * BASE.block_size
    small_steps = STEPS if small_budget == "equal" else round(STEPS * small_params / large_params)
    small_tokens = small_steps * tokens_per_step
    small_cost = small_tokens * small_params / large_params  # in large-model tokens (FLOPs)
    with timer(f"{protocol}/warm_start_{small_budget}"):
        if not small_stem.with_suffix(".json").exists():
            small_run = train(
                GPT(small_config, seed=SEED),
                *data,
                dataclasses.replace(train_config, lr=small_lr, seed=SEED, tokens=small_tokens),
            )
            save_gpt(small_stem, small_run.model, {"final_val_loss": small_run.final_val_loss})
        small, small_meta = load_gpt(small_stem)
        scratch = _curve_run(
            cache,
            f"grow/lr{scratch_lr:g}/scratch",
            lambda: GPT(large_config, seed=SEED + 1),
            train_config,
            data,
            scratch_lr,
        )
        target = scratch["final"]
        warm = {
            shrink: _curve_run(
                cache,
                f"grow/{small_budget}/lr{scratch_lr:g}/small{small_lr:g}/shrink{shrink}",
                lambda shrink=shrink: grow(small, large_config, shrink=shrink, seed=SEED + 1),
                train_config,
                data,
                scratch_lr,
            )
            for shrink in SHRINKS
        }
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
                else reached / train_config.tokens,
                "fraction_including_small_model": math.nan
                if reached is None
                else (reached + small_cost) / train_config.tokens,
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
    with timer(f"{protocol}/warm_sweep_{small_budget}"):
        warm_sweep = _sweep(
            cache,
            f"sweep/{small_budget}/small{small_lr:g}/warm{best_shrink}",
            large_config,
            train_config,
            data,
            [GROW_TO],
            make_model=lambda config, seed: grow(small, config, shrink=best_shrink, seed=seed + 1),
        )
    scratch_index = LEARNING_RATES.index(scratch_lr)
    warm_index = warm_sweep.best_index()[GROW_TO]
    print(f"[{protocol}/{small_budget}] warm-start rows: {rows}; best λ {best_shrink}", flush=True)
    figures = {
        f"sweeps_{small_budget}": plot_lr_sweeps(
            {
                f"SP ({protocol})": sweeps["sp"],
                f"μP ({protocol})": sweeps["mup"],
                f"μP warm-started, λ={best_shrink}": warm_sweep,
            }
        ),
        f"warmstart_{small_budget}": plot_curves(
            {"scratch μP": scratch["history"]}
            | {f"warm λ={k}": v["history"] for k, v in warm.items()},
            target,
        ),
    }
    results = {
        "small_budget": small_budget,
        "from_width": GROW_FROM,
        "to_width": GROW_TO,
        "scratch_lr": scratch_lr,
        "small_lr": small_lr,
        "small_val_loss": small_meta["training"]["final_val_loss"],
        "small_cost": {
            "tokens": small_tokens,
            "parameters": small_params,
            "large_parameters": large_params,
            "large_token_equivalent": small_cost,
        },
        "scratch_final_val_loss": target,
        "rows": rows,
        "best_shrink": best_shrink,
        "shrink0_equals_scratch": warm[0.0]["final"] == target,
        "warm_sweep_rows": warm_sweep.rows,
        "warm_best_lr": warm_sweep.best_lr()[GROW_TO],
        "best_lr_grid_steps_apart": abs(warm_index - scratch_index),
        "curves": {"scratch": scratch["history"]}
        | {f"shrink={k}": v["history"] for k, v in warm.items()},
    }
    return results, figures


def run_protocol(protocol: str, train_config: TrainConfig, data, timer: Timer) -> dict:
    """Experiments 2 and 3 under one LR schedule; returns results and figures."""
    sweeps = run_sweeps(protocol, train_config, data, timer)
    results = {
        "train": dataclasses.asdict(train_config),
        "sweeps": {
            name: {
                "rows": sweep.rows,
                "best_lr": sweep.best_lr(),
                "best_index": sweep.best_index(),
                "mean_loss": sweep.mean_loss(),
                "best_index_spread": max(sweep.best_index().values())
                - min(sweep.best_index().values()),
            }
            for name, sweep in sweeps.items()
        },
        "warm_start": {},
    }
    figures = {}
    for small_budget in WARM_BUDGETS[protocol]:
        warm, warm_figures = warm_start(protocol, train_config, data, sweeps, timer, small_budget)
        results["warm_start"][small_budget] = warm
        figures.update(warm_figures)
    return results, figures


def main() -> None:
    setup_torch(device="cpu")
    seed_everything(SEED)
    timer = Timer()
    corpus = require_data("text") / "tinyshakespeare.txt"
    tokens = encode(load_text(corpus))
    data = split_tokens(tokens, 0.1)
    CACHE.mkdir(parents=True, exist_ok=True)
    report = Report("autofm.lm benchmark: μP, μTransfer and warm-starting on tinyshakespeare")
    report.text(
        f"{len(tokens):,} bytes; last 10% held out for validation loss. Depth {BASE.depth}, head "
        f"size {BASE.head_size}, block {BASE.block_size}, batch {BATCH}, {STEPS} steps "
        f"({TRAIN.tokens:,} tokens) per run, AdamW β=(0.9, 0.95), 10% warmup, then constant LR "
        f"or warmup-stable-decay (last 25% linear to 0); sweep seeds {SWEEP_SEEDS}, other runs "
        f"seed {SEED}."
    )
    results: dict = {"config": {"base": BASE.to_dict(), "learning_rates": LEARNING_RATES}}

    with timer("coord_check"):
        coords = coord_check(
            widths=COORD_WIDTHS,
            steps=5,
            lr=COORD_LR,
            n_seeds=3,
            batch_size=8,
            seed=SEED,
            tokens=data[0],
        )
    results["coord_check"] = {
        "widths": list(COORD_WIDTHS),
        "lr": COORD_LR,
        "ratios": coords.ratios,
        "layer_ratios": {p: coords.layer_ratios(p) for p in ("sp", "mup")},
    }
    report.extend(coord_check_section(coords, COORD_LR))
    _save_figure(plot_coord_check(coords), "coord_check")
    print(f"coord check ratios: {coords.ratios}", flush=True)

    results["protocols"] = {}
    for protocol, train_config in PROTOCOLS.items():
        protocol_results, figures = run_protocol(protocol, train_config, data, timer)
        results["protocols"][protocol] = protocol_results
        report.heading(f"Schedule: {protocol}")
        for budget, warm in protocol_results["warm_start"].items():
            report.heading(f"{protocol}: warm-starting, small model budget '{budget}'", level=3)
            report.figure(figures[f"sweeps_{budget}"], "final validation loss vs LR; ★ best")
            report.table(warm["rows"])
            report.figure(figures[f"warmstart_{budget}"], "validation loss vs tokens")
        for name, fig in figures.items():
            _save_figure(fig, f"{name}_{protocol}")
    results["seconds"] = timer.seconds
    report.save(CACHE / "lm.html")  # embeds the PNGs committed beside the results: not committed
    seeds = sorted({seed for seeds in SWEEP_SEEDS.values() for seed in seeds})
    save_results("lm", results, _markdown(results), seeds)


def _save_figure(fig: plt.Figure, name: str) -> None:
    fig.savefig(RESULTS_DIR / f"lm.{name}.png", dpi=90, bbox_inches="tight")
    plt.close(fig)


def _markdown(results: dict) -> str:
    coord = results["coord_check"]
    lines = [
        f"### Coordinate check (widths {coord['widths']}, 5 Adam steps, lr {coord['lr']:g})\n\n",
        markdown_table(
            [
                {"parametrisation": NAMES[p], "max/min across widths (worst layer)": v}
                for p, v in coord["ratios"].items()
            ],
            digits=2,
        ),
    ]
    grid = ", ".join(f"{lr:g}" for lr in LEARNING_RATES)
    for protocol, result in results["protocols"].items():
        n_seeds = len(SWEEP_SEEDS[protocol])
        lines.append(
            f"\n### μTransfer, {protocol} schedule: best LR per width (val loss, mean of "
            f"{n_seeds} seed{'s' if n_seeds > 1 else ''}), grid {grid}\n\n"
        )
        rows = []
        for name, sweep in result["sweeps"].items():
            row = {"parametrisation": NAMES[name]}
            for width, lr in sorted(sweep["best_lr"].items(), key=lambda kv: int(kv[0])):
                row[f"width {width}"] = f"{lr:g} ({sweep['mean_loss'][width][lr]:.3f})"
            row["spread (grid steps)"] = sweep["best_index_spread"]
            rows.append(row)
        lines.append(markdown_table(rows))
        for budget, warm in result["warm_start"].items():
            lines.append(_warm_markdown(protocol, budget, warm))
    return "".join(lines)


def extra_seed_sweeps(seed: int) -> None:
    """Only the SP/μP sweeps of the schedules that use `seed` (to run beside the main run)."""
    setup_torch(device="cpu")
    data = split_tokens(encode(load_text(require_data("text") / "tinyshakespeare.txt")), 0.1)
    CACHE.mkdir(parents=True, exist_ok=True)
    for protocol, train_config in PROTOCOLS.items():
        if seed in SWEEP_SEEDS[protocol][1:]:
            for name in ("sp", "mup"):
                config = BASE.replace(parametrization=name)
                cache = Cache(protocol, seed)
                _sweep(cache, f"sweep/{name}", config, train_config, data, WIDTHS, seed=seed)


BUDGET_TEXT = {
    "tpp": "small model trained for the large one's tokens per parameter",
    "equal": "small model trained for as many tokens as the large one",
}


def _warm_markdown(protocol: str, budget: str, warm: dict) -> str:
    cost = warm["small_cost"]
    table = markdown_table(
        [
            {
                "λ (shrink), s=1": r["shrink"],
                "val loss at start": r["start_val_loss"],
                "final val loss": r["final_val_loss"],
                "tokens to scratch's final": "not reached"
                if r["tokens_to_scratch_final"] is None
                else r["tokens_to_scratch_final"],
                "fraction of scratch tokens": r["fraction_of_scratch_tokens"],
                "incl. small model (FLOPs)": r["fraction_including_small_model"],
            }
            for r in warm["rows"]
        ]
    )
    return (
        f"\n### Warm-starting μP width {warm['from_width']} → {warm['to_width']}, {protocol} "
        f"schedule, {BUDGET_TEXT[budget]} (lr {warm['scratch_lr']:g}; scratch final val loss "
        f"{warm['scratch_final_val_loss']:.3f})\n\n"
        + table
        + f"\nSmall model: {cost['parameters']:,} parameters, {cost['tokens']:,} tokens at lr "
        f"{warm['small_lr']:g} (≈ {cost['large_token_equivalent']:,.0f} tokens of the "
        f"{cost['large_parameters']:,}-parameter model in FLOPs), val loss "
        f"{warm['small_val_loss']:.3f}. λ=0 reproduces scratch exactly: "
        f"{warm['shrink0_equals_scratch']}. Best LR of the warm-started model "
        f"(λ={warm['best_shrink']}): {warm['warm_best_lr']:g} vs scratch {warm['scratch_lr']:g} "
        f"({warm['best_lr_grid_steps_apart']} grid steps apart).\n"
    )


if __name__ == "__main__":
    started = time.perf_counter()
    if len(sys.argv) == 3 and sys.argv[1] == "--extra-seed":
        extra_seed_sweeps(int(sys.argv[2]))
    else:
        main()
    print(f"total {time.perf_counter() - started:.0f} s", file=sys.stderr)
