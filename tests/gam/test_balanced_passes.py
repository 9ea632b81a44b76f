"""Balanced forward passes for rare classes (issue #19): which rows each pass holds, the class-prior
shift back to the training rate, and the estimator's use of both."""

import numpy as np
import pytest
import torch

from autofm.core.errors import ValidationError
from autofm.gam.estimators import GAMformerClassifier
from autofm.gam.passes import (
    average_shape_tables,
    balanced_subsets,
    class_prior_shift,
    subsamples,
)


def _labels(n_rare: int, n_other: int, rare_label: int = 1) -> np.ndarray:
    y = np.full(n_rare + n_other, 1 - rare_label)
    y[np.random.default_rng(0).permutation(len(y))[:n_rare]] = rare_label
    return y


@pytest.mark.parametrize("rare_label", [0, 1])
def test_every_pass_holds_every_rare_row_and_the_others_are_split_once(rare_label):
    y = _labels(10, 490, rare_label)
    subsets = balanced_subsets(y, 500, 8, 0.25, np.random.default_rng(1))
    rare = set(np.flatnonzero(y == rare_label))
    assert len(subsets) == 8  # 490 // 30 = 16 blocks wanted, capped at 8 passes
    others = []
    for subset in subsets:
        assert rare <= set(subset)
        assert np.all(np.diff(subset) > 0)
        others.extend(set(subset) - rare)
    assert sorted(others) == sorted(np.flatnonzero(y != rare_label))  # each used exactly once


def test_passes_reach_the_share_when_enough_passes_are_allowed():
    y = _labels(50, 450)
    subsets = balanced_subsets(y, 500, 8, 0.25, np.random.default_rng(2))
    assert len(subsets) == 3  # 450 // 150
    shares = [y[s].mean() for s in subsets]
    assert min(shares) >= 0.25 - 1e-9 and max(shares) <= 0.26


def test_large_training_sets_keep_the_pass_size_and_sample_the_rare_rows():
    y = _labels(500, 9500)
    subsets = balanced_subsets(y, 500, 8, 0.25, np.random.default_rng(3))
    assert len(subsets) == 8
    for subset in subsets:
        assert len(subset) == 500 and len(np.unique(subset)) == 500
        assert y[subset].sum() == 125


def test_no_balancing_for_common_classes_multiclass_or_a_single_class():
    rng = np.random.default_rng(0)
    assert balanced_subsets(_labels(150, 350), 500, 8, 0.25, rng) is None
    assert balanced_subsets(np.array([0] * 90 + [1] * 5 + [2] * 5), 500, 8, 0.25, rng) is None
    assert balanced_subsets(np.zeros(50, int), 500, 8, 0.25, rng) is None
    # the plain rule is unchanged: one pass with every row when they fit
    [one] = subsamples(_labels(150, 350), 500, 8, True, 0, min_class_share=0.25)
    assert np.array_equal(one, np.arange(500))
    [off] = subsamples(_labels(10, 490), 500, 8, True, 0, min_class_share=0.0)
    assert np.array_equal(off, np.arange(500))


def test_prior_shift_is_bayes_rule_for_the_class_shares():
    y = np.array([0] * 90 + [1] * 10)
    subset = np.concatenate([np.arange(30), np.arange(90, 100)])  # 30 negatives, 10 positives
    shift = class_prior_shift(y, subset, 2)
    np.testing.assert_allclose(shift, [np.log(0.9 / 0.75), np.log(0.1 / 0.25)])
    # the binary log-odds move by log(odds in all rows) − log(odds in the pass)
    assert shift[1] - shift[0] == pytest.approx(np.log(0.1 / 0.9) - np.log(10 / 30))
    np.testing.assert_allclose(class_prior_shift(y, np.arange(100), 3), 0.0)


class _ConstantModel(torch.nn.Module):
    """Shape tables equal to a fixed array whatever the context."""

    def __init__(self, tables: np.ndarray):
        super().__init__()
        self.tables = torch.as_tensor(tables)

    def shape_functions(self, context, labels, regression=False):
        return self.tables.unsqueeze(0)


def test_averaged_tables_move_only_the_intercept_by_the_prior_shift():
    rng = np.random.default_rng(4)
    tables = rng.normal(size=(3, 5, 2))
    y = np.array([0] * 90 + [1] * 10)
    subsets = balanced_subsets(y, 100, 8, 0.25, rng)
    bins = rng.integers(0, 4, size=(100, 3))
    averaged = average_shape_tables(_ConstantModel(tables), bins, y, subsets, False, "cpu")
    difference = averaged - tables
    # every bin of every feature moved alike, by the mean shift spread over the features
    expected = np.mean([class_prior_shift(y, s, 2) for s in subsets], axis=0) / 3
    np.testing.assert_allclose(difference, np.broadcast_to(expected, difference.shape))
    regression = average_shape_tables(_ConstantModel(tables), bins, y, subsets, True, "cpu")
    np.testing.assert_allclose(regression, tables)


def test_estimator_with_rare_positives_predicts_at_the_training_rate(tiny_checkpoint):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(400, 3))
    y = (x[:, 0] + rng.normal(scale=0.5, size=400) > 2.0).astype(int)  # about 3% positives
    assert 0.01 < y.mean() < 0.06
    for shrinkage in ("none", "crossfit"):
        # 8 passes: rare rows at ~20% of each pass, far from the training rate (with the
        # default 4 the passes hold ~11%, too close to tell a shift from an untrained model's
        # arbitrary level)
        balanced = GAMformerClassifier(
            tiny_checkpoint, shrinkage=shrinkage, min_class_share=0.25, n_subsamples=8
        )
        balanced.fit(x, y)
        plain = GAMformerClassifier(tiny_checkpoint, shrinkage=shrinkage, min_class_share=0)
        plain.fit(x, y)
        assert not np.allclose(balanced.predict_proba(x), plain.predict_proba(x))
        # Bayes' shift keeps the balanced passes near the training rate (not the passes' ~25%)
        assert balanced.predict_proba(x)[:, 1].mean() < 0.15


@pytest.mark.parametrize("share", [-0.1, 0.5, "0.25", True])
def test_min_class_share_out_of_range_is_refused(tiny_checkpoint, share):
    x, y = np.random.default_rng(0).normal(size=(40, 2)), np.arange(40) % 2
    with pytest.raises(ValidationError, match="min_class_share"):
        GAMformerClassifier(tiny_checkpoint, min_class_share=share).fit(x, y)
