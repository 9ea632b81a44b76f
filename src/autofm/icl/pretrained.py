"""The shipped PFNs: one recipe (prior + architecture + training budget) per prior, how to train
one with the shared loop, and how to load the shipped checkpoints `icl-<prior>`.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from autofm.core.checkpoint import load_model, save_model
from autofm.core.errors import ValidationError
from autofm.core.progress import status
from autofm.icl.priors import PRIORS
from autofm.icl.transformer import PFN, PFNConfig
from autofm.pfn.bar_distribution import borders_from_samples
from autofm.pfn.prior import Prior, TaskBatch
from autofm.pfn.train import PriorTrainConfig, train, unwrap


@dataclass(frozen=True)
class Recipe:
    """How the shipped PFN for one prior is built and trained."""

    prior: str
    model: PFNConfig
    min_context: int = 0
    batch_size: int = 32
    n_query: int = 32
    lr: float = 1e-3


_SMALL = dict(d_model=64, n_layers=4, n_heads=4, d_hidden=128)
RECIPES: dict[str, Recipe] = {
    "steps": Recipe("steps", PFNConfig(n_outputs=1000, max_context=100, **_SMALL)),
    "sine-line": Recipe("sine-line", PFNConfig(n_outputs=1000, max_context=100, **_SMALL)),
    "gp": Recipe("gp", PFNConfig(n_outputs=1000, max_context=50, **_SMALL)),
    "counting": Recipe(
        "counting",
        PFNConfig(task="classification", n_outputs=2, max_context=100, **_SMALL),
    ),
}


def make_prior(name: str) -> Prior:
    """The prior registered under `name` (see `autofm.icl.priors.PRIORS`)."""
    if name not in PRIORS:
        raise ValidationError(f"unknown prior {name!r}; choose one of {', '.join(PRIORS)}")
    return PRIORS[name]()


def pfn_loss(model: torch.nn.Module, batch: TaskBatch) -> torch.Tensor:
    """Training loss for `train`: calls the (possibly DDP-wrapped) model on the batch tensors."""
    logits = model(batch.x_context, batch.y_context, batch.x_query)
    return unwrap(model).loss(logits, batch)


def prior_borders(prior: Prior, n_buckets: int, max_context: int, seed: int = 0) -> torch.Tensor:
    """Bucket borders at quantiles of y values drawn from the prior."""
    batch = prior.sample(2000, 0, max(1, max_context), 1, torch.Generator().manual_seed(seed))
    return borders_from_samples(batch.y_query, n_buckets)


def build_pfn(recipe: Recipe, seed: int = 0) -> PFN:
    """A freshly initialised PFN for `recipe` (with borders from its prior, for regression)."""
    torch.manual_seed(seed)
    borders = None
    if recipe.model.task == "regression":
        prior = make_prior(recipe.prior)
        borders = prior_borders(prior, recipe.model.n_outputs, recipe.model.max_context, seed)
        if len(borders) != recipe.model.n_outputs + 1:
            raise ValidationError(f"prior {recipe.prior} yields repeated bucket borders")
    return PFN(recipe.model, borders)


def train_pfn(
    prior_name: str,
    run_dir: str | os.PathLike,
    *,
    seconds: float | None = 600.0,
    steps: int | None = None,
    seed: int = 0,
    threads: int | None = None,
    buckets: int | None = None,
    out: str | os.PathLike | None = None,
) -> tuple[PFN, dict[str, Any]]:
    """Train the recipe PFN for `prior_name` in `run_dir` and save it as the checkpoint `out`
    (default `run_dir/model`); return the model and its training summary.

    With `steps=None` the warmup + cosine schedule runs over `seconds` of wall-clock time (as
    many steps as the machine manages); with `steps`, over that many steps (`seconds`, if given,
    is then a hard stop). `buckets` overrides the recipe's number of bar-distribution buckets
    (regression priors only).
    """
    if prior_name not in RECIPES:
        raise ValidationError(
            f"no PFN recipe for {prior_name!r}; choose one of {', '.join(RECIPES)}"
        )
    recipe = RECIPES[prior_name]
    if buckets is not None:
        if recipe.model.task != "regression" or buckets < 2:
            raise ValidationError(
                f"--buckets needs a regression prior and at least 2 buckets (got {buckets} "
                f"for {prior_name!r})"
            )
        recipe = dataclasses.replace(
            recipe, model=dataclasses.replace(recipe.model, n_outputs=buckets)
        )
    if steps is None and seconds is None:
        raise ValidationError("give a number of steps or a time budget in seconds")
    time_schedule = steps is None
    max_steps = 10_000_000 if time_schedule else steps
    config = PriorTrainConfig(
        steps=max_steps,
        batch_size=recipe.batch_size,
        n_context=(recipe.min_context, recipe.model.max_context),
        n_query=recipe.n_query,
        lr=recipe.lr,
        warmup_steps=max(1, max_steps // 20),
        seed=seed,
        checkpoint_every=200 if time_schedule else max(50, max_steps // 10),
        max_seconds=seconds,
        threads=threads,
    )
    prior = make_prior(prior_name)
    model = build_pfn(recipe, seed)
    if threads is not None:
        torch.set_num_threads(threads)
    status(f"training the {prior_name} PFN: {steps or 'time-scheduled'} steps, {seconds} s budget")
    run_path = Path(run_dir)
    cpu_started = time.process_time()
    result = train(
        model,
        prior,
        config,
        run_dir=run_path,
        loss_fn=pfn_loss,
        model_kind=PFN.checkpoint_kind,
        model_config=recipe.model.to_dict(),
    )
    final_losses = result.losses[-100:]
    training = {
        "prior": prior_name,
        "steps": result.steps_done,
        "schedule": "time" if time_schedule else "steps",
        "time_budget_seconds": seconds,
        "train_seconds": round(result.seconds, 1),
        "train_cpu_seconds": round(time.process_time() - cpu_started, 1),
        "batch_size": recipe.batch_size,
        "n_query": recipe.n_query,
        "final_loss_mean_last_100": sum(final_losses) / max(1, len(final_losses)),
        "seed": seed,
    }
    save_model(
        out if out is not None else run_path / "model",
        result.model,
        training=training,
        provenance={"prior": repr(prior)},
    )
    return result.model, training


def build_pfn_from_config(config: dict[str, Any], source: str) -> PFN:
    """An untrained PFN of the architecture in a checkpoint's `model` config."""
    return PFN(PFNConfig.from_dict(config, source=source))


def load_pfn(name_or_path: str | os.PathLike) -> tuple[PFN, dict[str, Any]]:
    """Load a PFN: a prior name (`steps`, `gp`, ...) gives the shipped `icl-<prior>` checkpoint,
    anything else is read as a checkpoint (shipped name, stem, .json or .safetensors). The
    prior it was trained on is `meta["training"]["prior"]`."""
    name = str(name_or_path)
    source = f"icl-{name}" if name in RECIPES else name_or_path
    return load_model(source, kind=PFN.checkpoint_kind, build=build_pfn_from_config)
