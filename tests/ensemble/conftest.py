import numpy as np
import pytest


def random_predictions(n=200, m=6, c=3, seed=0) -> tuple[np.ndarray, np.ndarray]:
    """Random valid probabilities [n, m, c] and labels that the models predict somewhat."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(c, size=n)
    logits = rng.normal(size=(n, m, c))
    skill = np.linspace(0.2, 2.0, m)
    logits[np.arange(n), :, labels] += skill
    exp = np.exp(logits)
    return exp / exp.sum(axis=2, keepdims=True), labels


@pytest.fixture
def predictions():
    return random_predictions()
