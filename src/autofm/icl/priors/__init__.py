"""Priors whose posterior predictive distribution can be computed exactly."""

from autofm.icl.priors.discrete import (
    NOISE_STD,
    CountingPrior,
    GridPrior,
    PhaseSinePrior,
    SineLinePrior,
    StepPrior,
)
from autofm.icl.priors.gp import GPPrior
from autofm.icl.priors.predictive import (
    BernoulliPredictive,
    DiscreteMixturePredictive,
    GaussianPredictive,
    MixturePredictive,
)

PRIORS = {
    "steps": StepPrior,
    "sine-line": SineLinePrior,
    "phase-sines": PhaseSinePrior,
    "counting": CountingPrior,
    "gp": GPPrior,
}

__all__ = [
    "NOISE_STD",
    "PRIORS",
    "BernoulliPredictive",
    "CountingPrior",
    "DiscreteMixturePredictive",
    "GPPrior",
    "GaussianPredictive",
    "GridPrior",
    "MixturePredictive",
    "PhaseSinePrior",
    "SineLinePrior",
    "StepPrior",
]
