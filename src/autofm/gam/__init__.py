"""GAMformer: a generalized additive model whose shape functions come from one forward pass.

`GAMformerClassifier` / `GAMformerRegressor` are scikit-learn estimators backed by a transformer
trained on synthetic data (`autofm.gam.priors`, `autofm.gam.training`); see docs/gam.md.
"""

from autofm.gam.estimators import GAMformerClassifier, GAMformerRegressor, load_gamformer
from autofm.gam.model import GAMformer, GAMformerConfig
from autofm.gam.priors import GAMPrior, sample_additive_task
from autofm.gam.training import gam_loss, train_gamformer

__all__ = [
    "GAMPrior",
    "GAMformer",
    "GAMformerClassifier",
    "GAMformerConfig",
    "GAMformerRegressor",
    "gam_loss",
    "load_gamformer",
    "sample_additive_task",
    "train_gamformer",
]
