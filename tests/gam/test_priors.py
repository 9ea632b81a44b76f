import numpy as np
import pytest
import torch

from autofm.gam.metrics import per_feature_recovery, recovery_score
from autofm.gam.priors import (
    GAMPrior,
    encode_columns,
    intercept_for_rate,
    sample_additive_task,
    sample_gp_task,
    sample_scm_task,
)


def test_prior_batch_shapes_classes_and_determinism():
    prior = GAMPrior(scm_weight=0.6, gp_weight=0.1, additive_weight=0.3)
    batch = prior.sample(6, 40, 15, 5, torch.Generator().manual_seed(3))
    features = batch.x_context.shape[2]
    assert 1 <= features <= 5
    assert batch.x_context.shape == (6, 40, features) and batch.x_query.shape == (6, 15, features)
    labels = torch.cat([batch.y_context, batch.y_query], dim=1)
    n_classes = batch.metadata["n_classes"]
    assert torch.all(labels >= 0) and torch.all(labels < n_classes[:, None])
    assert torch.all(labels == labels.round())
    again = prior.sample(6, 40, 15, 5, torch.Generator().manual_seed(3))
    assert torch.equal(torch.nan_to_num(again.x_context), torch.nan_to_num(batch.x_context))


def test_regression_batches_have_continuous_targets():
    prior = GAMPrior(regression_fraction=1.0)
    batch = prior.sample(4, 50, 10, 3, torch.Generator().manual_seed(0))
    assert batch.metadata["regression"]
    assert len(torch.unique(batch.y_context)) > 50


def test_scm_and_gp_tasks_are_finite_and_nondegenerate():
    rng = np.random.default_rng(0)
    for sampler in (sample_scm_task, sample_gp_task):
        for _ in range(20):
            x, target = sampler(100, 6, rng)
            assert x.shape == (100, 6) and target.shape == (100,)
            assert np.isfinite(x).all() and np.isfinite(target).all()
            assert target.std() > 0


def test_additive_truth_is_consistent_with_its_shape_functions():
    task = sample_additive_task(300, 4, np.random.default_rng(1), regression=True, signal=2.0)
    np.testing.assert_allclose(task.contributions.mean(axis=0), 0.0, atol=1e-9)
    # signal = sqrt(Σ_j Var f_j(x_j)): the logit's spread if the features were independent
    np.testing.assert_allclose(np.sqrt((task.contributions.std(axis=0) ** 2).sum()), 2.0)
    for j in range(4):
        np.testing.assert_allclose(task.true_shape(j, task.x[:, j]), task.contributions[:, j])
    # the regression target is the additive signal plus noise
    assert np.corrcoef(task.y, task.contributions.sum(axis=1))[0, 1] > 0.8


def test_additive_binary_labels_follow_the_logit():
    task = sample_additive_task(2000, 3, np.random.default_rng(2), signal=3.0)
    logit = task.contributions.sum(axis=1)
    assert set(np.unique(task.y)) == {0.0, 1.0}
    assert (
        task.y[logit > np.quantile(logit, 0.8)].mean()
        > task.y[logit < np.quantile(logit, 0.2)].mean() + 0.5
    )


def test_recovery_score_known_answers():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(50, 3))
    assert np.isclose(recovery_score(3.0 * truth + 5.0, truth), 1.0)
    assert np.isclose(recovery_score(-truth, truth), -1.0)
    assert abs(recovery_score(rng.normal(size=(5000, 3)), rng.normal(size=(5000, 3)))) < 0.05
    flat = truth.copy()
    flat[:, 1] = 0.0
    scores = per_feature_recovery(truth, flat)
    assert np.isnan(scores[1]) and np.isclose(scores[0], 1.0)


def test_encode_columns_writes_binary_and_one_hot_columns_at_their_rates():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(400, 12))
    kept, kinds = encode_columns(x, 12, rng)
    np.testing.assert_array_equal(kept, x) and np.testing.assert_array_equal(kinds, 0)
    counts = np.zeros(6)
    for _ in range(200):
        encoded, kinds = encode_columns(rng.normal(size=(300, 10)), 10, rng, 0.3, 0.2, 0.25)
        assert encoded.shape == (300, 10)
        counts += np.bincount(kinds, minlength=6)
        binary = (kinds % 3) > 0
        assert set(np.unique(encoded[:, binary])) <= {0.0, 1.0}
        # the columns of one one-hot variable (two levels at least) are mutually exclusive
        onehot, kinds = encode_columns(rng.normal(size=(300, 3)), 2, rng, onehot_rate=1.0)
        assert np.all(kinds == 2) and onehot.sum(axis=1).max() == 1
    fractions = counts / counts.sum()
    assert 0.08 < fractions[1] + fractions[4] < 0.25  # binary: one column per source column
    assert 0.35 < fractions[2] + fractions[5] < 0.8  # one-hot: 2–8 columns per source column
    assert 0.1 < fractions[3:].sum() < 0.4  # irrelevant (shuffled) columns


def test_shuffled_columns_carry_no_signal():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2000, 8))
    encoded, kinds = encode_columns(x, 8, rng, irrelevant_rate=0.5)
    for j, kind in enumerate(kinds):
        correlation = np.corrcoef(encoded[:, j], x[:, j])[0, 1]
        assert (abs(correlation) < 0.1) if kind == 3 else np.isclose(correlation, 1.0)


def test_wide_batches_have_more_features_and_bounded_tokens():
    prior = GAMPrior(wide_fraction=0.3, max_wide_features=60, wide_token_budget=2560)
    generator = torch.Generator().manual_seed(0)
    widths, wide_rows = [], []
    for _ in range(150):
        batch = prior.sample(2, 128, 8, 10, generator)
        n_context, features = batch.x_context.shape[1:]
        widths.append(features)
        assert batch.x_query.shape[1:] == (8, features) and features <= 60
        if features > 10:
            wide_rows.append(n_context)
            assert n_context * features <= max(2560, 40 * features)
        else:
            assert n_context == 128
    widths = np.asarray(widths)
    assert 0.2 < np.mean(widths > 10) < 0.4 and widths.max() > 45
    assert min(wide_rows) >= 40


def test_encoded_tasks_carry_binary_columns_and_additive_truth_stays_exact():
    prior = GAMPrior(scm_weight=0.5, additive_weight=0.5, encoded_probability=1.0)
    batch = prior.sample(40, 100, 20, 8, torch.Generator().manual_seed(1))
    x = torch.cat([batch.x_context, batch.x_query], dim=1)
    binary = [
        set(torch.unique(x[b, :, j][~torch.isnan(x[b, :, j])]).tolist()) <= {0.0, 1.0}
        for b in range(x.shape[0])
        for j in range(x.shape[2])
    ]
    assert 0.2 < np.mean(binary) < 0.9
    task = sample_additive_task(500, 8, np.random.default_rng(3), binary_rate=0.4, onehot_rate=0.4)
    assert np.mean([set(np.unique(task.x[:, j])) <= {0.0, 1.0} for j in range(8)]) >= 0.5
    for j in range(8):
        np.testing.assert_allclose(task.true_shape(j, task.x[:, j]), task.contributions[:, j])


def test_rare_class_tasks_have_their_minority_share_and_keep_a_few_rows():
    logit = np.random.default_rng(0).normal(scale=2.0, size=5000)
    b = intercept_for_rate(logit, 0.03)
    assert np.mean(1 / (1 + np.exp(-(logit + b)))) == pytest.approx(0.03, abs=1e-6)
    prior = GAMPrior(scm_weight=0.5, gp_weight=0.0, additive_weight=0.5, rare_class_probability=1)
    generator = torch.Generator().manual_seed(0)
    minority = []
    for _ in range(12):
        batch = prior.sample(8, 200, 200, 4, generator)
        if batch.metadata["regression"]:
            continue
        assert (batch.metadata["n_classes"] == 2).all()
        y = torch.cat([batch.y_context, batch.y_query], dim=1)
        share = y.mean(dim=1)
        minority.extend(torch.minimum(share, 1 - share).tolist())
    minority = np.asarray(minority)
    # drawn log-uniformly in [3 / 200 rows, 0.15]: rarely common (a tied SCM target can cut
    # elsewhere), often below 5%
    assert np.mean(minority > 0.2) < 0.1 and np.mean(minority < 0.05) > 0.3
    assert minority.min() > 0.0


def test_shape_kind_weights_set_the_mix_and_the_default_draw_is_unchanged():
    from autofm.gam.priors import SHAPE_KINDS, random_shape_function

    rng = np.random.default_rng(0)
    only_steps = [random_shape_function(rng, (0, 1, 0, 0)).kind for _ in range(50)]
    assert set(only_steps) == {"step"}
    rng = np.random.default_rng(1)
    kinds = [random_shape_function(rng, (3, 2, 2, 1)).kind for _ in range(4000)]
    shares = {kind: kinds.count(kind) / len(kinds) for kind in SHAPE_KINDS}
    assert shares == pytest.approx(
        {"smooth": 3 / 8, "step": 2 / 8, "monotone": 2 / 8, "zero": 1 / 8}, abs=0.03
    )
    # the default mix (2 : 1 : 2 : 1) draws exactly as before the option existed
    rng, twin = np.random.default_rng(2), np.random.default_rng(2)
    expected = twin.choice(["smooth", "smooth", "step", "monotone", "monotone", "zero"])
    assert random_shape_function(rng).kind == expected
    prior = GAMPrior(
        additive_weight=1.0, scm_weight=0.0, gp_weight=0.0, shape_kind_weights=(0, 0, 0, 1)
    )
    batch = prior.sample(4, 30, 10, 5, torch.Generator().manual_seed(0))
    assert float(batch.metadata["contributions"].abs().max()) == 0.0  # every shape is zero
