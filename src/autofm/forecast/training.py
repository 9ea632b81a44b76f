"""Training Mamba4Cast on the synthetic prior with autofm.pfn's training loop, and exporting it.

Run it with `autofm forecast train` (under `torchrun` for several processes). Presets: 'cpu'
(about 0.5M parameters, contexts up to 320 steps, batch 16; shipped as `mamba4cast-cpu`) and
'paper' (the published sizes, contexts up to 512, batch 64; for a GPU).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from autofm.core.checkpoint import load_model, save_model
from autofm.core.errors import ValidationError
from autofm.core.runtime import seed_everything
from autofm.forecast.features import N_TIME_FEATURES
from autofm.forecast.model import Mamba4Cast, Mamba4CastConfig, build_mamba4cast, forecast_loss
from autofm.forecast.priors import Mamba4CastPrior
from autofm.pfn.train import PriorTrainConfig, PriorTrainResult, train

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


def train_config(preset: str, **overrides) -> PriorTrainConfig:
    """The training hyperparameters of `preset`, with `overrides` (None values ignored)."""
    if preset not in PRESETS:
        raise ValidationError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    values = {**PRESETS[preset], "n_features": N_TIME_FEATURES, "weight_decay": 0.01}
    values.update({k: v for k, v in overrides.items() if v is not None})
    values.setdefault("checkpoint_every", 100)
    values["min_lr_ratio"] = values.get("min_lr_ratio", 0.02)
    return PriorTrainConfig(**values)


def train_forecaster(
    preset: str = "cpu",
    run_dir: str | os.PathLike | None = None,
    *,
    model_config: Mamba4CastConfig | None = None,
    prior: Mamba4CastPrior | None = None,
    init_from: str | os.PathLike | None = None,
    **overrides,
) -> PriorTrainResult:
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
        model_kind=Mamba4Cast.checkpoint_kind,
        model_config=model_config.to_dict(),
    )


def initialise_from(model: Mamba4Cast, path: str | os.PathLike) -> None:
    """Copy weights from a checkpoint (shipped name, stem, or a run folder's `last`) into `model`.

    Tensors of another shape are skipped; a head of another kind (anchor) than the checkpoint's
    starts at zero (its output is added to another anchor).
    """
    source, _ = load_model(path, kind=Mamba4Cast.checkpoint_kind, build=build_mamba4cast)
    same_head = source.config.anchor == model.config.anchor
    state = model.state_dict()
    for name, value in source.state_dict().items():
        if name in state and state[name].shape == value.shape:
            if name.startswith("head.") and not same_head:
                continue
            state[name] = value
    if not same_head:
        state["head.weight"] = torch.zeros_like(state["head.weight"])
        state["head.bias"] = torch.zeros_like(state["head.bias"])
    model.load_state_dict(state)


def export(run_dir: str | os.PathLike, out: str | os.PathLike, **provenance) -> Path:
    """Write the model weights of `run_dir/last` as a shipped checkpoint (weights + training
    summary); `provenance` adds entries (e.g. a note on earlier runs the weights came from)."""
    model, meta = load_model(
        Path(run_dir) / "last", kind=Mamba4Cast.checkpoint_kind, build=build_mamba4cast
    )
    training = {
        "config": meta["training"]["config"],
        "steps": meta["training"]["step"],
        "prior": meta["provenance"].get("prior"),
        "data": "synthetic only: Mamba4CastPrior (KernelSynth-like GP and ForecastPFN-style "
        "series 70/30, plus seasonal profiles where prior.profile_fraction > 0)",
        "trained_until": meta["provenance"].get("created"),
    }
    provenance = {
        "training_command": meta["provenance"].get("command"),
        "training_git_commit": meta["provenance"].get("git_commit"),
        **provenance,
    }
    return save_model(out, model, training=training, provenance=provenance)
