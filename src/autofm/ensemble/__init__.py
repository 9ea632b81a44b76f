"""Post-hoc ensembling of base models' predictions, from static selection to neural ensemblers.

Predictions are [N samples, M models, C classes] probabilities; every ensembler is a scikit-learn
estimator with fit(P_val, y_val), predict_proba(P), predict(P), score(P, y) and weights(P).
"""

from autofm.ensemble.base import BaseEnsembler, check_predictions, softmax
from autofm.ensemble.compare import METHODS, Comparison, compare, comparison_report, make_ensembler
from autofm.ensemble.ftc import make_synthetic_ftc, read_ftc, write_ftc
from autofm.ensemble.neural import NeuralEnsembler
from autofm.ensemble.pool import Pool, load_pool, save_pool
from autofm.ensemble.pool_builder import build_pool
from autofm.ensemble.strategies import (
    AkaikeWeights,
    GreedyEnsemble,
    PseudoBMA,
    Quick,
    RandomK,
    SingleBest,
    SoftmaxWeights,
    Stacking,
    TopK,
)

__all__ = [
    "METHODS",
    "AkaikeWeights",
    "BaseEnsembler",
    "Comparison",
    "GreedyEnsemble",
    "NeuralEnsembler",
    "Pool",
    "PseudoBMA",
    "Quick",
    "RandomK",
    "SingleBest",
    "SoftmaxWeights",
    "Stacking",
    "TopK",
    "build_pool",
    "check_predictions",
    "compare",
    "comparison_report",
    "load_pool",
    "make_ensembler",
    "make_synthetic_ftc",
    "read_ftc",
    "save_pool",
    "softmax",
    "write_ftc",
]
