"""Post-hoc ensembling of base models' predictions, from static selection to neural ensemblers.

Predictions are [N samples, M models, C classes] probabilities; every ensembler is a scikit-learn
estimator with fit(P_val, y_val), predict_proba(P), predict(P), score(P, y) and weights(P).
"""

from autofm.core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    "autofm.ensemble",
    {
        "base": ["BaseEnsembler", "check_predictions", "softmax"],
        "comparison": ["Comparison", "compare", "comparison_report"],
        "methods": ["METHODS", "make_ensembler"],
        "ftc": ["make_synthetic_ftc", "read_ftc", "write_ftc"],
        "neural": ["NeuralEnsembler"],
        "pool": ["Pool", "load_pool", "save_pool"],
        "pool_builder": ["build_pool"],
        "strategies": [
            "AkaikeWeights",
            "GreedyEnsemble",
            "PseudoBMA",
            "Quick",
            "RandomK",
            "SingleBest",
            "SoftmaxWeights",
            "Stacking",
            "TopK",
        ],
    },
)
