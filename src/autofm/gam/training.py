"""Training GAMformer on the prior with the shared `autofm.icl` loop: loss, presets, shipping."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from autofm.core.checkpoint import load_model, save_model
from autofm.core.errors import ValidationError
from autofm.core.progress import status
from autofm.gam.binning import bin_batch
from autofm.gam.model import GAMformer, GAMformerConfig, build_gamformer
from autofm.gam.priors import GAMPrior
from autofm.pfn.prior import TaskBatch
from autofm.pfn.train import PriorTrainConfig, PriorTrainResult, train, unwrap


def gam_loss(model: torch.nn.Module, batch: TaskBatch) -> torch.Tensor:
    """Cross-entropy (classification) or MSE on standardised y (regression) on the query rows."""
    n_bins = unwrap(model).config.n_bins
    context_bins, query_bins = bin_batch(batch.x_context, batch.x_query, n_bins)
    if batch.metadata.get("regression", False):
        mean = batch.y_context.mean(dim=1, keepdim=True)
        std = batch.y_context.std(dim=1, keepdim=True).clamp(min=1e-6)
        y_context = (batch.y_context - mean) / std
        y_query = (batch.y_query - mean) / std
        prediction = model(context_bins, y_context, query_bins, regression=True)[..., 0]
        return F.mse_loss(prediction, y_query)
    logits = model(context_bins, batch.y_context.long(), query_bins)
    n_classes = batch.metadata["n_classes"].to(logits.device)
    absent = torch.arange(logits.shape[-1], device=logits.device)[None, :] >= n_classes[:, None]
    logits = logits.masked_fill(absent[:, None, :], float("-inf"))
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.y_query.long().reshape(-1))


@dataclass
class Preset:
    """A named training recipe: architecture, prior mix and loop settings."""

    model: GAMformerConfig
    prior: GAMPrior
    train: PriorTrainConfig
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


PRESETS: dict[str, Preset] = {
    # small enough to train on one CPU thread (its size and training time: docs/gam.md)
    "cpu": Preset(
        GAMformerConfig(n_bins=32, d_model=64, n_layers=3, n_heads=4, d_hidden=128),
        GAMPrior(
            scm_weight=0.67,
            gp_weight=0.03,
            additive_weight=0.30,
            regression_fraction=0.15,
            # real tables: binary and one-hot columns, irrelevant columns, up to 60 features
            wide_fraction=0.3,
            max_wide_features=60,
            encoded_probability=0.5,
            irrelevant_probability=0.5,
            # rare classes (down to 3 rows of the context) and wide tasks with more rows
            rare_class_probability=0.3,
            wide_token_budget=6144,
            min_wide_rows=64,
            # more of the shape kinds the third checkpoint recovered worst (docs/gam.md):
            # smooth (cosine sums) : step : monotone : zero = 3 : 2 : 2 : 1 (default 2 : 1 : 2 : 1)
            shape_kind_weights=(3.0, 2.0, 2.0, 1.0),
        ),
        PriorTrainConfig(
            steps=3400,
            batch_size=16,
            n_context=(20, 256),
            n_query=64,
            n_features=10,
            lr=1e-3,
            warmup_steps=200,
            min_lr_ratio=0.05,
            weight_decay=0.0,
            checkpoint_every=100,
        ),
        notes="CPU scale: width 64, 3 bi-attention layers, 32 bins, ≤256 context rows",
    ),
    # the paper's scale (tens of millions of parameters, 64 bins, 500 rows): needs a GPU
    "paper": Preset(
        GAMformerConfig(
            n_bins=64, d_model=512, n_layers=12, n_heads=8, d_hidden=1024, head_hidden=512
        ),
        GAMPrior(scm_weight=0.96, gp_weight=0.04, additive_weight=0.0, regression_fraction=0.0),
        PriorTrainConfig(
            steps=500_000,
            batch_size=64,
            n_context=(50, 500),
            n_query=250,
            n_features=10,
            lr=1e-4,
            warmup_steps=5000,
            min_lr_ratio=0.01,
            checkpoint_every=1000,
        ),
        notes="the published scale; the paper trained for weeks on a GPU",
    ),
}


def get_preset(name: str) -> Preset:
    """A copy of the preset `name` (cpu or paper)."""
    if name not in PRESETS:
        raise ValidationError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    preset = PRESETS[name]
    return Preset(
        dataclasses.replace(preset.model),
        dataclasses.replace(preset.prior),
        dataclasses.replace(preset.train),
        preset.notes,
    )


def train_gamformer(
    preset: str | Preset = "cpu",
    run_dir: str | os.PathLike = "runs/gam-train",
    *,
    steps: int | None = None,
    max_seconds: float | None = None,
    seed: int = 0,
    device: str = "auto",
    output: str | os.PathLike | None = None,
    init: str | os.PathLike | None = None,
    lr: float | None = None,
    warmup_steps: int | None = None,
    threads: int | None = None,
) -> PriorTrainResult:
    """Train a GAMformer with `preset`; resume from `run_dir`; optionally ship the weights.

    `init` (a shipped name or checkpoint path of the same architecture) warm-starts a new run
    from those weights (ignored when `run_dir` already holds a run to resume); `lr` and
    `warmup_steps` override the preset's; with `max_seconds` the run stops after that much
    wall-clock time and its warmup + cosine schedule follows whichever budget is further along;
    `threads` sets torch's threads (default: $AUTOFM_THREADS, else torch's own).
    """
    chosen = get_preset(preset) if isinstance(preset, str) else preset
    config = dataclasses.replace(
        chosen.train,
        seed=seed,
        device=device,
        max_seconds=max_seconds,
        threads=threads,
    )
    if steps is not None:
        config = dataclasses.replace(
            config, steps=steps, warmup_steps=min(config.warmup_steps, max(1, steps // 10))
        )
    if lr is not None:
        config = dataclasses.replace(config, lr=lr)
    if warmup_steps is not None:
        config = dataclasses.replace(config, warmup_steps=warmup_steps)
    model = GAMformer(chosen.model)
    if init is not None:
        _warm_start(model, init)
    name = preset if isinstance(preset, str) else "custom"
    status(f"training GAMformer preset {name!r} in {run_dir}")
    result = train(
        model,
        chosen.prior,
        config,
        run_dir=run_dir,
        loss_fn=gam_loss,
        model_kind=GAMformer.checkpoint_kind,
        model_config=chosen.model.to_dict(),
    )
    if output is not None:
        training = {
            "preset": preset if isinstance(preset, str) else "custom",
            "prior": repr(chosen.prior),
            "config": config.to_dict(),
            "steps": result.steps_done,
            "train_seconds": round(result.seconds, 1),
            "final_loss_mean_last_100": float(
                torch.tensor(result.losses[-100:]).mean() if result.losses else float("nan")
            ),
            "warm_start": None if init is None else str(init),
        }
        save_model(output, result.model, training=training, provenance={"run_dir": str(run_dir)})
    return result


def _warm_start(model: GAMformer, init: str | os.PathLike) -> None:
    """Load the weights of checkpoint `init` into `model` (same architecture required)."""
    source, _ = load_model(init, kind=GAMformer.checkpoint_kind, build=build_gamformer)
    if source.config != model.config:
        raise ValidationError(
            f"cannot warm-start from {init}: its model config {source.config.to_dict()} differs "
            f"from the preset's {model.config.to_dict()}"
        )
    model.load_state_dict(source.state_dict())
