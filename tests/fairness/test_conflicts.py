import itertools

import numpy as np
import pandas as pd
import pytest

from autofm.fairness.conflicts import (
    hypervolume_2d,
    hypervolume_contrast,
    hypervolume_regret,
    normalised_hypervolumes,
    pareto_mask,
)


def grid_hypervolume(points, reference, steps=400):
    """Dominated area counted on a fine grid of cell centres."""
    xs = (np.arange(steps) + 0.5) / steps * reference[0]
    ys = (np.arange(steps) + 0.5) / steps * reference[1]
    gx, gy = np.meshgrid(xs, ys)
    covered = np.zeros_like(gx, dtype=bool)
    for x, y in points:
        covered |= (gx >= x) & (gy >= y)
    return covered.mean() * reference[0] * reference[1]


def test_hypervolume_known_answer_and_grid():
    points = np.array([[1, 3], [2, 2], [3, 1]], dtype=float)
    assert hypervolume_2d(points, [4, 4]) == pytest.approx(6.0)
    rng = np.random.default_rng(0)
    for _ in range(5):
        cloud = rng.random((12, 2))
        assert hypervolume_2d(cloud, [1, 1]) == pytest.approx(
            grid_hypervolume(cloud, [1, 1]), abs=5e-3
        )


def test_hypervolume_ignores_dominated_and_outside_points():
    points = np.array([[0.2, 0.6], [0.5, 0.3]])
    base = hypervolume_2d(points, [1, 1])
    more = np.vstack([points, [[0.6, 0.7], [1.5, 0.0]]])
    assert hypervolume_2d(more, [1, 1]) == pytest.approx(base)


def test_pareto_mask_matches_brute_force():
    rng = np.random.default_rng(1)
    points = rng.integers(0, 5, size=(30, 3)).astype(float)
    expected = [not any(np.all(q <= p) and np.any(q < p) for q in points) for p in points]
    assert pareto_mask(points).tolist() == expected


def test_normalisation_is_over_the_union_box():
    a = np.array([[0.0, 1.0], [1.0, 0.0]])
    b = a * 10  # same shape, ten times larger: after joint normalisation, b covers less
    hv_a, hv_b = normalised_hypervolumes([a, b])
    assert hv_a > hv_b
    (alone,) = normalised_hypervolumes([b])
    assert alone == pytest.approx(normalised_hypervolumes([a])[0])


def _run(f1, values):
    frame = pd.DataFrame({"val_f1": f1})
    for name, column in values.items():
        frame[f"val_{name}"] = column
    return frame


def test_contrast_is_zero_on_the_diagonal_and_positive_for_a_conflict():
    f1 = np.linspace(0.1, 0.5, 6)
    # the dsp run finds low dsp but its models have high deop; the deop run the opposite
    runs = {
        "dsp": _run(f1, {"dsp": 0.5 - f1, "deop": 0.9 - f1}),
        "deop": _run(f1, {"dsp": 0.9 - f1, "deop": 0.5 - f1}),
    }
    contrast = hypervolume_contrast(runs)
    assert np.allclose(np.diag(contrast.to_numpy()), 0.0)
    assert contrast.loc["dsp", "deop"] > 0 and contrast.loc["deop", "dsp"] > 0
    # no conflict when both runs land on the same models
    same = {"dsp": runs["dsp"], "deop": runs["dsp"].copy()}
    assert np.allclose(hypervolume_contrast(same).to_numpy(), 0.0)
    regret = hypervolume_regret(runs["dsp"], runs)
    assert regret.loc["dsp", "regret"] == pytest.approx(0.0)
    assert regret.loc["deop", "regret"] > 0
    for i, j in itertools.product(runs, runs):
        assert np.isfinite(contrast.loc[i, j])
