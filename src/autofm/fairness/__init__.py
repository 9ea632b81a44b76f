"""ManyFairHPO: many-objective fairness-aware hyperparameter optimisation with a human in the loop.

Robertson et al., AIES 2024 (arXiv:2410.13286). See docs/fairness.md.
"""

from autofm.fairness.baseline import exponentiated_gradient_front
from autofm.fairness.conflicts import (
    hypervolume_2d,
    hypervolume_contrast,
    hypervolume_regret,
    normalised_hypervolumes,
    pareto_mask,
)
from autofm.fairness.data import FairData, prepare_data
from autofm.fairness.metrics import (
    OBJECTIVES,
    confusion_counts,
    fairness_objectives,
    group_rates,
    objectives_from_counts,
)
from autofm.fairness.search import ManyFairHPO
from autofm.fairness.select import Selection, parse_weights, risk_flags, select_model

__all__ = [
    "OBJECTIVES",
    "FairData",
    "ManyFairHPO",
    "Selection",
    "confusion_counts",
    "exponentiated_gradient_front",
    "fairness_objectives",
    "group_rates",
    "hypervolume_2d",
    "hypervolume_contrast",
    "hypervolume_regret",
    "normalised_hypervolumes",
    "objectives_from_counts",
    "pareto_mask",
    "parse_weights",
    "prepare_data",
    "risk_flags",
    "select_model",
]
