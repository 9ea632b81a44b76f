"""Super-network training: brief training of the parent so that its sub-networks work.

Each step draws one batch of text and runs several sub-networks on it, summing their losses
before one optimizer step (whittle's strategies):

| strategy | sub-networks per step |
|---|---|
| standard | the largest (the parent) only |
| random | `random_samples` random ones |
| sandwich | the largest, the smallest and `random_samples` random ones (the default) |

With `distill` (in-place knowledge distillation, on by default) every sub-network but the largest
learns the largest one's next-byte distribution of the same step (KL to its detached logits)
instead of the data; the largest always learns the data. Distillation needs the largest in the
step, so it applies to sandwich training; `random` steps learn from the data. Random sub-networks are drawn uniformly
or, with `sampling="calibrated"`, so that parameter-count bins are visited evenly. The loop is
`autofm.lm.training.train` (schedule, resumable run folder, time budget, validation); the token
budget counts the text read, once per step, whatever the number of sub-networks run on it.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from autofm.compress.space import SearchSpace, SubNetwork
from autofm.compress.supernet import SuperNetwork
from autofm.core.config import ConfigMixin
from autofm.core.errors import ValidationError
from autofm.lm.training import TrainConfig, TrainResult, train

if TYPE_CHECKING:  # transformers is imported for hf: models only
    from autofm.compress.hf_supernet import LlamaSuperNetwork

STRATEGIES = ("standard", "random", "sandwich")
SAMPLINGS = ("uniform", "calibrated")


@dataclass(frozen=True)
class SupernetTrainConfig(ConfigMixin):
    """How a super-network is trained; the loop settings (tokens, lr, ...) are a `TrainConfig`."""

    strategy: str = "sandwich"
    distill: bool = True
    random_samples: int = 2
    sampling: str = "calibrated"
    space: str = "layerwise"

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValidationError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if self.strategy != "sandwich":  # distillation needs the largest in the step
            object.__setattr__(self, "distill", False)
        if self.sampling not in SAMPLINGS:
            raise ValidationError(f"sampling must be one of {SAMPLINGS}, got {self.sampling!r}")
        if self.random_samples < (1 if self.strategy == "random" else 0):
            raise ValidationError(
                f"random_samples must be ≥ {1 if self.strategy == 'random' else 0}, "
                f"got {self.random_samples}"
            )


def sub_networks_for_step(
    space: SearchSpace, config: SupernetTrainConfig, rng: np.random.Generator, sampler=None
) -> list[SubNetwork | None]:
    """The sub-networks one step trains (None = the largest, run as the plain parent)."""
    if config.strategy == "standard":
        return [None]
    draw = sampler.sample if sampler is not None else space.sample
    randoms = [draw(rng) for _ in range(config.random_samples)]
    if config.strategy == "random":
        return randoms
    return [None, space.smallest(), *randoms]


def supernet_loss(
    supernet: SuperNetwork,
    space: SearchSpace,
    config: SupernetTrainConfig,
    sampler=None,
):
    """The `loss_fn` that `autofm.lm.training.train` calls each step for this strategy."""

    def loss_fn(runner, inputs, targets, rng):
        total, teacher = 0.0, None
        for sub in sub_networks_for_step(space, config, rng, sampler):
            logits, loss = supernet(inputs, sub, targets)
            if sub is None:
                teacher = logits.detach()
            elif config.distill and teacher is not None:
                loss = kl_to(teacher, logits)
            total = total + loss
        return total

    return loss_fn


def train_supernet(
    supernet: SuperNetwork | LlamaSuperNetwork,
    train_tokens: np.ndarray,
    valid_tokens: np.ndarray | None,
    config: SupernetTrainConfig,
    loop: TrainConfig,
    run_dir: str | os.PathLike | None = None,
    identity: dict | None = None,
) -> TrainResult:
    """Train `supernet`'s parent weights (an autofm GPT's or a Hugging Face Llama's) in place
    with `config`'s strategy for `loop`'s token budget (resumable in `run_dir`); the validation
    loss tracked is the full model's. Sampled
    sub-networks are drawn from the loop's own generator (seeded by `loop.seed`, saved with the
    run), so a resumed run equals an uninterrupted one. `identity`: as `train`'s (a run folder
    of another parent or data is not resumed); the strategy settings are part of it."""
    space = supernet.space(config.space)
    sampler = space.calibrated_sampler() if config.sampling == "calibrated" else None
    loss_fn = supernet_loss(supernet, space, config, sampler)
    trainee = supernet.trainee()
    identity = {**(identity or {}), "supernet": config.to_dict()}
    return train(
        trainee,
        train_tokens,
        valid_tokens,
        loop,
        run_dir=run_dir,
        loss_fn=loss_fn,
        identity=identity,
    )


def training_summary(config: SupernetTrainConfig, loop: TrainConfig, result: TrainResult) -> dict:
    """What a super-network checkpoint records about its training."""
    per_step = {"standard": 1, "random": config.random_samples}.get(
        config.strategy, 2 + config.random_samples
    )
    summary: dict[str, Any] = {
        "supernet": config.to_dict(),
        "loop": dataclasses.asdict(loop),
        "tokens": result.tokens_seen,
        "steps": result.steps_done,
        "sub_network_passes_per_step": per_step,
        "final_val_loss": result.final_val_loss,
    }
    return summary


def kl_to(teacher_logits: torch.Tensor, student_logits: torch.Tensor) -> torch.Tensor:
    """Mean KL(teacher ‖ student) per position of next-byte distributions."""
    return F.kl_div(
        F.log_softmax(student_logits, -1).flatten(0, 1),
        F.log_softmax(teacher_logits, -1).flatten(0, 1),
        log_target=True,
        reduction="batchmean",
    )
