"""The shared in-context training layer: what every model trained on a synthetic prior uses.

`Prior` / `TaskBatch` (the prior protocol), `train` / `PriorTrainConfig` (one training loop:
AdamW, warmup + cosine over steps or wall-clock time, clipping, checkpoint/resume, loss curve,
`torchrun` DDP) and `BarDistribution` (the Riemann output distribution of PFNs). The systems
`autofm.icl` (PFNs), `autofm.gam` (GAMformer) and `autofm.forecast` (Mamba4Cast) build on it;
no method of a system lives here.
"""

from autofm.pfn.bar_distribution import BarDistribution, borders_from_samples, classification_loss
from autofm.pfn.prior import Prior, TaskBatch
from autofm.pfn.train import PriorTrainConfig, PriorTrainResult, train, unwrap

__all__ = [
    "BarDistribution",
    "Prior",
    "PriorTrainConfig",
    "PriorTrainResult",
    "TaskBatch",
    "borders_from_samples",
    "classification_loss",
    "train",
    "unwrap",
]
