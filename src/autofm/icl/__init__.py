"""Prior-fitted networks (PFNs) and exact Bayesian posteriors: priors whose posterior predictive
is known, the PFN transformer, the shipped PFNs and the experiments that compare the two
("in-context learning approximates the posterior", arXiv:2410.01565).

The prior protocol, the training loop and the bar distribution that PFNs share with GAMformer and
Mamba4Cast live in `autofm.pfn`."""

from autofm.icl.pretrained import RECIPES, load_pfn, train_pfn
from autofm.icl.priors import (
    PRIORS,
    CountingPrior,
    GPPrior,
    GridPrior,
    PhaseSinePrior,
    SineLinePrior,
    StepPrior,
)
from autofm.icl.transformer import PFN, PFNConfig, PFNPrediction

__all__ = [
    "PFN",
    "PRIORS",
    "RECIPES",
    "CountingPrior",
    "GPPrior",
    "GridPrior",
    "PFNConfig",
    "PFNPrediction",
    "PhaseSinePrior",
    "SineLinePrior",
    "StepPrior",
    "load_pfn",
    "train_pfn",
]
