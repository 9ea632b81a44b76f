"""The LoRA finetuning configuration space: one configuration, sampling, checking, encoding.

A configuration says how to finetune (LoRA rank, alpha, dropout, which modules, learning rate,
batch size, schedule, warmup, weight decay); the fidelity (epochs) is not part of it. The
learning-rate schedule always spans the maximum fidelity, so a configuration's first epochs are
the same run whether it is stopped after 2 epochs or trained to the end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from autofm.core.config import ConfigMixin
from autofm.core.errors import ValidationError

RANKS = (2, 4, 8, 16, 32, 64)
ALPHA_RATIOS = (0.5, 1.0, 2.0, 4.0)  # lora_alpha = ratio × rank
BATCH_SIZES = (4, 8, 16, 32)
SCHEDULERS = ("constant", "linear", "cosine")
TARGETS = ("attention", "attention+mlp")
LEARNING_RATE_RANGE = (1e-5, 1e-2)
DROPOUT_RANGE = (0.0, 0.2)
WARMUP_RANGE = (0.0, 0.2)
WEIGHT_DECAY_RANGE = (0.0, 0.1)


@dataclass(frozen=True)
class FinetuneConfig(ConfigMixin):
    """One LoRA finetuning configuration; `check()` says whether it lies in the space."""

    learning_rate: float = 2e-4
    lora_rank: int = 8
    lora_alpha: float = 16.0
    lora_dropout: float = 0.05
    target_modules: str = "attention"
    batch_size: int = 8
    scheduler: str = "linear"
    warmup_fraction: float = 0.0
    weight_decay: float = 0.0

    def check(self) -> FinetuneConfig:
        """Raise ValidationError naming the first value outside the space; return self."""
        low, high = LEARNING_RATE_RANGE
        problems = []
        if not low <= self.learning_rate <= high:
            problems.append(f"learning_rate {self.learning_rate} is outside [{low}, {high}]")
        if self.lora_rank not in RANKS:
            problems.append(f"lora_rank {self.lora_rank} is not one of {RANKS}")
        if not 0.25 * self.lora_rank <= self.lora_alpha <= 8 * self.lora_rank:
            problems.append(
                f"lora_alpha {self.lora_alpha} is outside [rank/4, 8·rank] for rank {self.lora_rank}"
            )
        for name, (low, high) in (
            ("lora_dropout", DROPOUT_RANGE),
            ("warmup_fraction", WARMUP_RANGE),
            ("weight_decay", WEIGHT_DECAY_RANGE),
        ):
            value = getattr(self, name)
            if not low <= value <= high:
                problems.append(f"{name} {value} is outside [{low}, {high}]")
        if self.target_modules not in TARGETS:
            problems.append(f"target_modules {self.target_modules!r} is not one of {TARGETS}")
        if self.batch_size not in BATCH_SIZES:
            problems.append(f"batch_size {self.batch_size} is not one of {BATCH_SIZES}")
        if self.scheduler not in SCHEDULERS:
            problems.append(f"scheduler {self.scheduler!r} is not one of {SCHEDULERS}")
        if problems:
            raise ValidationError(
                "finetuning configuration outside the space: " + "; ".join(problems)
            )
        return self

    @classmethod
    def from_values(
        cls, values: dict[str, Any], source: str = "the configuration"
    ) -> FinetuneConfig:
        """Build from a mapping (a CSV row, JSON) with native types restored, and check it."""
        known = {field.name: field.type for field in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValidationError(f"{source} has unknown configuration keys {unknown}")
        typed = {}
        for name, value in values.items():
            kind = cls.__dataclass_fields__[name].default.__class__
            try:
                number = float(value) if kind is int else None
                if number is not None and not number.is_integer():
                    raise ValueError(f"{value!r} is not a whole number")
                typed[name] = int(number) if kind is int else kind(value)
            except (TypeError, ValueError) as err:
                raise ValidationError(
                    f"{source}: {name}={value!r} is not a {kind.__name__}"
                ) from err
        return cls(**typed).check()


DEFAULT_CONFIG = FinetuneConfig()
"""The usual LoRA recipe (PEFT/transformers examples): rank 8, alpha 16, attention only, lr 2e-4."""


def sample_configs(n: int, seed: int = 0, include_default: bool = True) -> list[FinetuneConfig]:
    """`n` configurations drawn uniformly from the space (log-uniform learning rate); the first
    is DEFAULT_CONFIG when `include_default`."""
    if n < 1:
        raise ValidationError(f"the number of configurations must be ≥ 1, got {n}")
    rng = np.random.default_rng(seed)
    configs = [DEFAULT_CONFIG] if include_default else []
    while len(configs) < n:
        rank = int(rng.choice(RANKS))
        low, high = LEARNING_RATE_RANGE
        configs.append(
            FinetuneConfig(
                learning_rate=float(10 ** rng.uniform(math.log10(low), math.log10(high))),
                lora_rank=rank,
                lora_alpha=float(rank * rng.choice(ALPHA_RATIOS)),
                lora_dropout=float(rng.uniform(*DROPOUT_RANGE)),
                target_modules=str(rng.choice(TARGETS)),
                batch_size=int(rng.choice(BATCH_SIZES)),
                scheduler=str(rng.choice(SCHEDULERS)),
                warmup_fraction=float(rng.uniform(*WARMUP_RANGE)),
                weight_decay=float(rng.uniform(*WEIGHT_DECAY_RANGE)),
            )
        )
    return configs


FEATURE_NAMES = (
    "log10_learning_rate",
    "log2_lora_rank",
    "log2_alpha_ratio",
    "lora_dropout",
    "mlp_targeted",
    "log2_batch_size",
    "scheduler_constant",
    "scheduler_linear",
    "scheduler_cosine",
    "warmup_fraction",
    "weight_decay",
)


def config_features(configs: pd.DataFrame | list[FinetuneConfig]) -> np.ndarray:
    """Numeric encoding of configurations for the surrogates: [n, len(FEATURE_NAMES)], each
    column scaled to about [0, 1] over the space."""
    frame = pd.DataFrame([c.to_dict() for c in configs]) if isinstance(configs, list) else configs
    low, high = (math.log10(v) for v in LEARNING_RATE_RANGE)
    rank = frame["lora_rank"].to_numpy(dtype=float)
    columns = [
        (np.log10(frame["learning_rate"].to_numpy(dtype=float)) - low) / (high - low),
        (np.log2(rank) - 1) / 5,
        (np.log2(frame["lora_alpha"].to_numpy(dtype=float) / rank) + 2) / 5,
        frame["lora_dropout"].to_numpy(dtype=float) / DROPOUT_RANGE[1],
        (frame["target_modules"] == "attention+mlp").to_numpy(dtype=float),
        (np.log2(frame["batch_size"].to_numpy(dtype=float)) - 2) / 3,
        *((frame["scheduler"] == name).to_numpy(dtype=float) for name in SCHEDULERS),
        frame["warmup_fraction"].to_numpy(dtype=float) / WARMUP_RANGE[1],
        frame["weight_decay"].to_numpy(dtype=float) / WEIGHT_DECAY_RANGE[1],
    ]
    return np.stack(columns, axis=1)
