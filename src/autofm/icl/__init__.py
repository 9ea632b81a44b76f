"""In-context learning core: the prior protocol and the training loop shared by PFNs, GAMformer
and Mamba4Cast."""

from autofm.icl.prior import Prior, TaskBatch
from autofm.icl.train import TrainConfig, TrainResult, save_model, train

__all__ = ["Prior", "TaskBatch", "TrainConfig", "TrainResult", "save_model", "train"]
