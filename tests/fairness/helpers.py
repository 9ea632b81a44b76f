"""Small generated tables with a planted group effect, shared by the fairness tests."""

import numpy as np
import pandas as pd


def planted(n: int = 300, seed: int = 0, gap: float = 1.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 2, n)
    x1 = rng.normal(size=n) + gap * group
    x2 = rng.normal(size=n)
    label = (x1 + 0.5 * x2 + rng.normal(scale=0.8, size=n) > 0.5).astype(int)
    return pd.DataFrame(
        {
            "x1": x1,
            "x2": x2,
            "colour": rng.choice(["red", "blue"], n),
            "race": np.where(group == 1, "W", "B"),
            "label": label,
        }
    )


def random_predictions(seed: int, group_effect: float, n: int = 400):
    """(y_true, y_pred, group) of a random binary task whose base rate and predictions depend on
    a binary group (`group_effect` shifts the positive-prediction rate of group 1)."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 2, n)
    y_true = (rng.random(n) < 0.3 + 0.3 * group).astype(int)
    y_pred = (rng.random(n) < 0.2 + 0.5 * y_true + group_effect * group).clip(0, 1).astype(int)
    return y_true, y_pred, group
