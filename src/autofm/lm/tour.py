"""The lm step of `autofm tour`: a coordinate check at tiny widths and a short warm-start."""

from __future__ import annotations

from pathlib import Path

from autofm.core.report import Report
from autofm.core.tour import TourStep
from autofm.data.text import encode, split_tokens, stdlib_corpus
from autofm.lm.checkpoint import load_gpt, save_gpt
from autofm.lm.coordinates import coord_check
from autofm.lm.growth import grow
from autofm.lm.model import GPT, GPTConfig
from autofm.lm.report import coord_check_section, plot_curves
from autofm.lm.training import TrainConfig, train


def step(workdir: Path, seed: int) -> TourStep:
    """Coordinate check (widths 32-256), then grow a trained width-32 μP GPT to 64 and compare
    it with training width 64 from scratch on the standard library's source."""
    tokens = encode(stdlib_corpus(1_000_000))
    train_tokens, valid_tokens = split_tokens(tokens, 0.1)
    coords = coord_check(
        widths=(32, 64, 128, 256),
        steps=4,
        lr=3e-3,
        n_seeds=2,
        batch_size=4,
        tokens=train_tokens,
        seed=seed,
        base_config=GPTConfig(width=32, head_size=16, block_size=16, base_width=32),
    )
    small_config = GPTConfig(width=32, depth=2, head_size=16, block_size=32, base_width=32)
    config = TrainConfig(
        lr=1e-2,
        batch_size=8,
        tokens=8 * 32 * 40,
        warmup_fraction=0.1,
        eval_every=8,
        eval_blocks=32,
        seed=seed,
    )
    small = train(GPT(small_config, seed=seed), train_tokens, valid_tokens, config)
    stem = save_gpt(workdir / "small", small.model, {"final_val_loss": small.final_val_loss})
    reloaded, _ = load_gpt(stem)
    large_config = small_config.replace(width=64)
    scratch = train(GPT(large_config, seed=seed + 1), train_tokens, valid_tokens, config)
    warm = train(
        grow(reloaded, large_config, shrink=0.4, seed=seed + 1), train_tokens, valid_tokens, config
    )
    reached = warm.tokens_to_reach(scratch.final_val_loss)
    fraction = None if reached is None else reached / scratch.tokens_seen

    report = Report("lm")
    report.extend(coord_check_section(coords, 3e-3))
    report.heading("Warm-starting width 32 → 64 (μP, λ = 0.4, s = 1)", level=3)
    report.text(
        f"Small model (width 32): validation loss {small.final_val_loss:.3f} after "
        f"{small.tokens_seen:,} tokens. Width 64 from scratch: {scratch.final_val_loss:.3f}; "
        f"warm-started: {warm.final_val_loss:.3f}; the warm start reached scratch's final loss "
        + ("never" if reached is None else f"after {reached:,} tokens ({fraction:.0%})")
        + ". Smoke scale on the standard library's source; see the benchmark for real numbers."
    )
    report.figure(
        plot_curves(
            {"scratch, width 64": scratch.history, "warm-started from 32": warm.history},
            scratch.final_val_loss,
        ),
        "validation loss vs tokens",
    )
    ratios = coords.ratios
    summary = (
        f"coord check max/min SP {ratios['sp']:.1f} vs μP {ratios['mup']:.2f}; grow 32→64: "
        f"scratch {scratch.final_val_loss:.3f}, warm {warm.final_val_loss:.3f}"
    )
    metrics = {
        "coord_ratio_sp": ratios["sp"],
        "coord_ratio_mup": ratios["mup"],
        "scratch_val_loss": scratch.final_val_loss,
        "warm_val_loss": warm.final_val_loss,
        "warm_fraction_of_scratch_tokens": fraction,
    }
    return TourStep("lm", summary, metrics, report)
