"""GAMformer: a generalized additive model whose shape functions come from one forward pass.

`GAMformerClassifier` / `GAMformerRegressor` are scikit-learn estimators backed by a transformer
trained on synthetic data (`autofm.gam.priors`, `autofm.gam.training`); see docs/gam.md.
"""

from autofm.core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    "autofm.gam",
    {
        "estimators": ["GAMformerClassifier", "GAMformerRegressor", "load_gamformer"],
        "model": ["GAMformer", "GAMformerConfig"],
        "priors": ["GAMPrior", "sample_additive_task"],
        "training": ["gam_loss", "train_gamformer"],
    },
)
