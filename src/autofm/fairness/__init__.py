"""ManyFairHPO: many-objective fairness-aware hyperparameter optimisation with a human in the loop.

Robertson et al., AIES 2024 (arXiv:2410.13286). See docs/fairness.md.
"""

from autofm.core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    "autofm.fairness",
    {
        "baseline": ["exponentiated_gradient_front"],
        "conflicts": [
            "hypervolume_2d",
            "hypervolume_contrast",
            "hypervolume_regret",
            "normalised_hypervolumes",
            "pareto_mask",
        ],
        "data": ["FairData", "prepare_data"],
        "metrics": [
            "PAPER_OBJECTIVES",
            "OBJECTIVES",
            "confusion_counts",
            "fairness_objectives",
            "group_rates",
            "objectives_from_counts",
        ],
        "search": ["ManyFairHPO"],
        "select": ["Selection", "parse_weights", "risk_flags", "select_model"],
    },
)
