"""A small byte-level GPT with standard and μP parametrisation, coordinate checks, learning-rate
sweeps (μTransfer) and warm-starting a wider model from a trained narrower one (arXiv:2411.07340).
"""

from autofm.core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    "autofm.lm",
    {
        "checkpoint": ["load_gpt", "save_gpt"],
        "coordinates": ["CoordCheckResult", "coord_check"],
        "growth": ["grow", "pad_state"],
        "model": ["GPT", "GPTConfig"],
        "sweep": ["SweepResult", "log_grid", "lr_sweep"],
        "training": ["TrainConfig", "TrainResult", "evaluate", "train"],
    },
)
