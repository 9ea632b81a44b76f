"""A small byte-level GPT with standard and μP parametrisation, coordinate checks, learning-rate
sweeps (μTransfer) and warm-starting a wider model from a trained narrower one (arXiv:2411.07340).
"""

from autofm.lm.checkpoint import load_gpt, save_gpt
from autofm.lm.coord_check import CoordCheckResult, coord_check
from autofm.lm.grow import grow, pad_state
from autofm.lm.model import GPT, GPTConfig
from autofm.lm.sweep import SweepResult, log_grid, lr_sweep
from autofm.lm.train import TrainConfig, TrainResult, evaluate, train

__all__ = [
    "GPT",
    "CoordCheckResult",
    "GPTConfig",
    "SweepResult",
    "TrainConfig",
    "TrainResult",
    "coord_check",
    "evaluate",
    "grow",
    "load_gpt",
    "log_grid",
    "lr_sweep",
    "pad_state",
    "save_gpt",
    "train",
]
