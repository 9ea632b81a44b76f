"""Ensembling strategies, one module per family."""

from autofm.ensemble.strategies.bayesian import AkaikeWeights, PseudoBMA
from autofm.ensemble.strategies.greedy import GreedyEnsemble, greedy_selection
from autofm.ensemble.strategies.learned import SoftmaxWeights, Stacking
from autofm.ensemble.strategies.static import Quick, RandomK, SingleBest, TopK

__all__ = [
    "AkaikeWeights",
    "GreedyEnsemble",
    "PseudoBMA",
    "Quick",
    "RandomK",
    "SingleBest",
    "SoftmaxWeights",
    "Stacking",
    "TopK",
    "greedy_selection",
]
