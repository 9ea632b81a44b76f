"""In-context learning core: the prior protocol and the training loop shared by PFNs, GAMformer
and Mamba4Cast; prior-fitted networks, the bar distribution, priors with exact posteriors and the
experiments that compare the two."""

from autofm.icl.bar_distribution import BarDistribution, borders_from_samples, classification_loss
from autofm.icl.pretrained import RECIPES, load_pfn, train_pfn
from autofm.icl.prior import Prior, TaskBatch
from autofm.icl.priors import (
    PRIORS,
    CountingPrior,
    GPPrior,
    GridPrior,
    PhaseSinePrior,
    SineLinePrior,
    StepPrior,
)
from autofm.icl.train import TrainConfig, TrainResult, save_model, train
from autofm.icl.transformer import PFN, PFNConfig, PFNPrediction

__all__ = [
    "PFN",
    "PRIORS",
    "RECIPES",
    "BarDistribution",
    "CountingPrior",
    "GPPrior",
    "GridPrior",
    "PFNConfig",
    "PFNPrediction",
    "PhaseSinePrior",
    "Prior",
    "SineLinePrior",
    "StepPrior",
    "TaskBatch",
    "TrainConfig",
    "TrainResult",
    "borders_from_samples",
    "classification_loss",
    "load_pfn",
    "save_model",
    "train",
    "train_pfn",
]
