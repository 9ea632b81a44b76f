"""Every ensembler by name: what `make_ensembler`, `compare` and `autofm ensemble --method` accept.

Light to import (the CLI builds its choices from it): a strategy's module is imported when an
ensembler is made, through the lazy `autofm.ensemble` package.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import autofm.ensemble as ensemble
from autofm.core.errors import ValidationError

if TYPE_CHECKING:
    from autofm.ensemble.base import BaseEnsembler

METHODS: dict[str, Callable[[int | None], BaseEnsembler]] = {
    "single-best": lambda seed: ensemble.SingleBest(),
    "top-5": lambda seed: ensemble.TopK(k=5),
    "top-50": lambda seed: ensemble.TopK(k=50),
    "random-5": lambda seed: ensemble.RandomK(k=5, random_state=seed),
    "quick": lambda seed: ensemble.Quick(),
    "greedy": lambda seed: ensemble.GreedyEnsemble(n_rounds=50),
    "greedy-bagged": lambda seed: ensemble.GreedyEnsemble(
        n_rounds=50, init_size=3, n_bags=20, random_state=seed
    ),
    "akaike": lambda seed: ensemble.AkaikeWeights(),
    "pseudo-bma": lambda seed: ensemble.PseudoBMA(random_state=seed),
    "softmax-ma": lambda seed: ensemble.SoftmaxWeights(),
    "stacking": lambda seed: ensemble.Stacking(),
    "neural-ma": lambda seed: ensemble.NeuralEnsembler("model_averaging", 0.75, random_state=seed),
    "neural-ma-p0": lambda seed: ensemble.NeuralEnsembler(
        "model_averaging", 0.0, random_state=seed
    ),
    "neural-stack": lambda seed: ensemble.NeuralEnsembler("stacking", 0.75, random_state=seed),
    "neural-stack-p0": lambda seed: ensemble.NeuralEnsembler("stacking", 0.0, random_state=seed),
    "neural-ma-cv": lambda seed: ensemble.NeuralEnsembler(
        "model_averaging", "cv", random_state=seed
    ),
}
# cross-validating the dropout rate costs 13 trainings: available by name, not run by default
DEFAULT_METHODS = tuple(name for name in METHODS if name != "neural-ma-cv")


def make_ensembler(method: str, random_state: int | None = None) -> BaseEnsembler:
    """The ensembler registered under `method` (see METHODS)."""
    if method not in METHODS:
        raise ValidationError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    return METHODS[method](random_state)
