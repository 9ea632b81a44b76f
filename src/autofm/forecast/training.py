"""Training Mamba4Cast on the synthetic prior with autofm.icl's training loop, and exporting it.

Presets: 'cpu' (about 0.5M parameters, contexts up to 320 steps, batch 16; trained in the
background of a working session and shipped as `mamba4cast-cpu`) and 'paper' (the published
sizes, contexts up to 512, batch 64; for a GPU).
"""

from __future__ import annotations

import argparse
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from autofm.core.checkpoint import checkpoint_stem, load_checkpoint, load_state_into
from autofm.core.errors import ValidationError
from autofm.core.runtime import seed_everything
from autofm.forecast.features import N_TIME_FEATURES
from autofm.forecast.model import Mamba4Cast, Mamba4CastConfig, forecast_loss
from autofm.forecast.priors import Mamba4CastPrior
from autofm.icl.train import TrainConfig, TrainResult, save_model, train

PRESETS: dict[str, dict] = {
    "cpu": {
        "steps": 3000,
        "batch_size": 16,
        "n_context": (32, 320),
        "n_query": 60,
        "lr": 1e-3,
        "warmup_steps": 100,
    },
    "paper": {
        "steps": 100_000,
        "batch_size": 64,
        "n_context": (30, 512),
        "n_query": 60,
        "lr": 1e-4,
        "warmup_steps": 1000,
    },
}


@dataclass
class TimedTrainConfig(TrainConfig):
    """TrainConfig whose cosine schedule ends at `max_seconds` if that comes before `steps`.

    Progress is max(step / steps, elapsed / max_seconds), so a run cut short by its time budget
    still anneals its learning rate (the clock starts at the first step of this process).
    """

    def lr_at(self, step: int) -> float:
        if self.max_seconds is None:
            return super().lr_at(step)
        if not hasattr(self, "_started"):
            self._started = time.perf_counter()
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        by_steps = (step - self.warmup_steps) / max(1, self.steps - self.warmup_steps)
        by_time = (time.perf_counter() - self._started) / self.max_seconds
        progress_ = min(1.0, max(by_steps, by_time))
        cosine = 0.5 * (1.0 + math.cos(math.pi * progress_))
        return self.lr * (self.min_lr_ratio + (1.0 - self.min_lr_ratio) * cosine)


def train_config(preset: str, **overrides) -> TimedTrainConfig:
    """The training hyperparameters of `preset`, with `overrides` (None values ignored)."""
    if preset not in PRESETS:
        raise ValidationError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    values = {**PRESETS[preset], "n_features": N_TIME_FEATURES, "weight_decay": 0.01}
    values.update({k: v for k, v in overrides.items() if v is not None})
    values.setdefault("checkpoint_every", 100)
    values["min_lr_ratio"] = values.get("min_lr_ratio", 0.02)
    return TimedTrainConfig(**values)


def train_forecaster(
    preset: str = "cpu",
    run_dir: str | os.PathLike | None = None,
    *,
    model_config: Mamba4CastConfig | None = None,
    prior: Mamba4CastPrior | None = None,
    init_from: str | os.PathLike | None = None,
    **overrides,
) -> TrainResult:
    """Train a Mamba4Cast model of `preset` on the prior; resumes from `run_dir/last`.

    `init_from` (a run folder's `last` or a model checkpoint stem) starts from those weights,
    except the head when its meaning differs (its output is added to another anchor).
    """
    config = train_config(preset, **overrides)
    seed_everything(config.seed)
    model_config = model_config or Mamba4CastConfig.preset(preset)
    model = Mamba4Cast(model_config)
    if init_from is not None:
        initialise_from(model, init_from)
    return train(
        model,
        prior or Mamba4CastPrior(),
        config,
        run_dir=run_dir,
        loss_fn=forecast_loss,
        model_config=model_config.to_dict(),
    )


def initialise_from(model: Mamba4Cast, path: str | os.PathLike) -> None:
    """Copy weights from a checkpoint (stem or shipped name) into `model`.

    A head of another kind (anchor) than the checkpoint's starts at zero.
    """
    tensors, meta = load_checkpoint(checkpoint_stem(path))
    if any(k.startswith("model.") for k in tensors):
        tensors = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
        source = meta["config"]["model"]
    else:
        source = meta["config"]
    state = model.state_dict()
    same_head = Mamba4CastConfig.from_dict(source).anchor == model.config.anchor
    for name, value in tensors.items():
        if name in state and state[name].shape == value.shape:
            if name.startswith("head.") and not same_head:
                continue
            state[name] = value
    if not same_head:
        state["head.weight"] = torch.zeros_like(state["head.weight"])
        state["head.bias"] = torch.zeros_like(state["head.bias"])
    model.load_state_dict(state)


def export(run_dir: str | os.PathLike, out: str | os.PathLike, **provenance) -> Path:
    """Write the model weights of `run_dir/last` as a shipped checkpoint (weights + provenance).

    `provenance` adds entries (e.g. a note on earlier runs the weights were initialised from).
    """
    tensors, meta = load_checkpoint(Path(run_dir) / "last")
    model_config = Mamba4CastConfig.from_dict(meta["config"]["model"])
    model = Mamba4Cast(model_config)
    load_state_into(model, {k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    train_meta = meta["config"]["train"]
    return save_model(
        out,
        model,
        model_config.to_dict(),
        training_command=meta["provenance"].get("command"),
        training_git_commit=meta["provenance"].get("git_commit"),
        data="synthetic only: Mamba4CastPrior (KernelSynth-like GP and ForecastPFN-style series "
        "70/30, plus seasonal profiles where prior.profile_fraction > 0)",
        prior=meta["provenance"].get("prior"),
        steps=meta["config"]["step"],
        train=train_meta,
        trained_until=meta["provenance"].get("created"),
        **provenance,
    )


def main(argv: list[str] | None = None) -> None:
    """`python -m autofm.forecast.training` (the CLI's `autofm forecast train` does the same)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="cpu", choices=sorted(PRESETS))
    parser.add_argument("--run-dir", default="runs/forecast")
    parser.add_argument("--steps", type=int)
    parser.add_argument("--max-seconds", type=float)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="export the trained model to this checkpoint stem")
    parser.add_argument(
        "--init-from",
        help="start from the weights of this checkpoint (a stem, a run's `last`, or a shipped name)",
    )
    parser.add_argument("--warmup-steps", type=int)
    parser.add_argument("--lr", type=float, help="peak learning rate (default: the preset's)")
    parser.add_argument(
        "--profile-fraction",
        type=float,
        default=Mamba4CastPrior.profile_fraction,
        help="share of seasonal-profile series among seasonal frequencies (0: the paper's prior)",
    )
    parser.add_argument(
        "--drift-prob",
        type=float,
        default=Mamba4CastPrior.drift_prob,
        help="share of short contexts given a drift that continues into the horizon",
    )
    args = parser.parse_args(argv)
    for flag in ("profile_fraction", "drift_prob"):
        if not 0.0 <= getattr(args, flag) <= 1.0:
            parser.error(f"--{flag.replace('_', '-')} must be in [0, 1], got {getattr(args, flag)}")
    train_forecaster(
        args.preset,
        args.run_dir,
        prior=Mamba4CastPrior(profile_fraction=args.profile_fraction, drift_prob=args.drift_prob),
        steps=args.steps,
        max_seconds=args.max_seconds,
        seed=args.seed,
        init_from=args.init_from,
        warmup_steps=args.warmup_steps,
        lr=args.lr,
    )
    if args.out:
        export(args.run_dir, args.out)


if __name__ == "__main__":
    main()
