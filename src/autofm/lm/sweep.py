"""Learning-rate sweeps across widths: where the best LR lands is μTransfer's test."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from autofm.core.errors import ValidationError
from autofm.core.progress import status
from autofm.lm.model import GPT, GPTConfig
from autofm.lm.training import TrainConfig, TrainResult, train

ModelFactory = Callable[[GPTConfig, int], GPT]


def log_grid(low: float, high: float, n: int) -> list[float]:
    """`n` log-spaced values from `low` to `high` (rounded to 3 significant digits)."""
    if n < 2 or not 0 < low < high:
        raise ValidationError(f"need n ≥ 2 and 0 < low < high, got {n}, {low}, {high}")
    return [float(f"{v:.3g}") for v in np.geomspace(low, high, n)]


@dataclass
class SweepResult:
    """One row per (width, lr, seed): final validation loss (NaN if the run diverged)."""

    rows: list[dict] = field(default_factory=list)
    learning_rates: list[float] = field(default_factory=list)
    runs: dict[tuple[int, float, int], TrainResult] = field(default_factory=dict)

    def mean_loss(self) -> dict[int, dict[float, float]]:
        """{width: {lr: mean validation loss over seeds}} (inf where any seed diverged)."""
        table: dict[int, dict[float, list[float]]] = {}
        for row in self.rows:
            loss = row["val_loss"]
            value = math.inf if loss is None or not math.isfinite(loss) else loss
            table.setdefault(row["width"], {}).setdefault(row["lr"], []).append(value)
        return {w: {lr: float(np.mean(v)) for lr, v in by_lr.items()} for w, by_lr in table.items()}

    def best_lr(self) -> dict[int, float]:
        """The grid learning rate with the lowest mean validation loss, per width."""
        return {w: min(by_lr, key=by_lr.get) for w, by_lr in self.mean_loss().items()}

    def best_index(self) -> dict[int, int]:
        """Position of each width's best LR in the grid."""
        return {w: self.learning_rates.index(lr) for w, lr in self.best_lr().items()}


def lr_sweep(
    train_tokens: np.ndarray,
    valid_tokens: np.ndarray,
    base_config: GPTConfig,
    widths: Sequence[int],
    learning_rates: Sequence[float],
    train_config: TrainConfig,
    seeds: Sequence[int] = (0,),
    make_model: ModelFactory | None = None,
    keep_runs: bool = False,
) -> SweepResult:
    """Train one model per (width, lr, seed) for the same token budget; record validation loss.

    `make_model(config, seed)` builds each model (default: a fresh `GPT(config, seed)`; pass a
    warm-starting factory to sweep warm-started models). With `keep_runs` the TrainResults
    (and models) are kept in `result.runs`."""
    if not widths or len(learning_rates) < 2 or not seeds:
        raise ValidationError(
            "lr_sweep needs at least one width, two learning rates and one seed; got "
            f"{len(widths)}, {len(learning_rates)}, {len(seeds)}"
        )
    make_model = make_model or (lambda config, seed: GPT(config, seed=seed))
    result = SweepResult(learning_rates=sorted(float(lr) for lr in learning_rates))
    for width in widths:
        config = base_config.replace(width=width)
        for lr in result.learning_rates:
            for seed in seeds:
                model = make_model(config, seed)
                run = train(
                    model,
                    train_tokens,
                    valid_tokens,
                    dataclasses.replace(train_config, lr=lr, seed=seed),
                )
                result.rows.append(
                    {
                        "parametrization": config.parametrization,
                        "width": width,
                        "lr": lr,
                        "seed": seed,
                        "val_loss": run.final_val_loss,
                        "diverged": run.diverged,
                        "tokens": run.tokens_seen,
                        "seconds": run.seconds,
                    }
                )
                status(
                    f"sweep {config.parametrization} width {width} lr {lr:.3g} seed {seed}: "
                    f"val loss {run.final_val_loss:.4f} ({run.seconds:.0f} s)"
                )
                if keep_runs:
                    result.runs[(width, lr, seed)] = run
    return result
