"""The simulated meta-dataset and the meta-learned surrogates: transfer to a held-out task, the
exact GP posterior against gpytorch's, conditioning, refit, save/load."""

import gpytorch
import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import spearmanr

from autofm.core.errors import CheckpointError, ValidationError
from autofm.finetune.metafeatures import META_FEATURES
from autofm.finetune.simulated import simulated_metadataset
from autofm.finetune.space import config_features
from autofm.finetune.surrogates import (
    SOFT_CLIP,
    CostSurrogate,
    PerformanceSurrogate,
    TaskFeatureScaler,
    curve_inputs,
    metadataset_samples,
    task_features,
)

EPOCHS = 6


@pytest.fixture(scope="module")
def metadataset():
    return simulated_metadataset(n_tasks=8, n_configs=24, max_epochs=EPOCHS, seed=0)


@pytest.fixture(scope="module")
def held_out(metadataset):
    return metadataset.tasks[-1]


@pytest.fixture(scope="module")
def surrogates(metadataset, held_out):
    torch.set_num_threads(1)
    training = metadataset.subset([t for t in metadataset.tasks if t != held_out])
    perf = PerformanceSurrogate(n_iterations=150, max_conditioning=600).fit(training)
    cost = CostSurrogate(n_iterations=200).fit(training)
    return perf, cost


def test_simulated_metadataset_is_consistent():
    md = simulated_metadataset(n_tasks=4, n_configs=10, max_epochs=5, seed=3, missing_fraction=0.4)
    assert list(md.meta.columns) == list(META_FEATURES)  # the real builder's meta-features
    assert md.curves.shape == md.costs.shape == (4, 10, 5)
    observed = np.isfinite(md.curves)
    assert ((md.curves[observed] >= 0) & (md.curves[observed] <= 1)).all()
    assert (md.costs[observed] > 0).all()
    # a missing run keeps a prefix: no observed epoch after a missing one
    assert (np.diff(observed.astype(int), axis=2) <= 0).all()
    assert not md.complete().all() and md.complete()[:, 0].all()  # the default always runs
    assert np.isnan(md.test_scores).sum() == (~md.complete()).sum()
    assert all(info["simulated"] and "zero_shot_val" in info for info in md.task_info.values())
    again = simulated_metadataset(
        n_tasks=4, n_configs=10, max_epochs=5, seed=3, missing_fraction=0.4
    )
    np.testing.assert_array_equal(md.curves, again.curves)


def test_task_features_log_counts_standardise_and_squash():
    meta = pd.DataFrame({"n_train": [9.0, 99.0, 999.0], "zero_shot_score": [0.1, 0.2, 0.6]})
    scaler = TaskFeatureScaler.fit(meta)
    logged = np.log1p(meta["n_train"].to_numpy())
    z = (logged - logged.mean()) / logged.std()
    np.testing.assert_allclose(
        task_features(meta, scaler)[:, 0], SOFT_CLIP * np.tanh(z / SOFT_CLIP)
    )
    np.testing.assert_allclose(task_features(meta), task_features(meta, scaler))
    # a new task is encoded with the meta-train statistics, not its own
    new = pd.Series({"zero_shot_score": 0.2, "n_train": 99.0, "unused": 5.0})
    np.testing.assert_allclose(scaler.transform(new)[0], task_features(meta, scaler)[1])
    far = scaler.transform(pd.Series({"n_train": 1e12, "zero_shot_score": 0.2}))
    assert far[0, 0] < SOFT_CLIP
    assert TaskFeatureScaler.from_dict(scaler.to_dict()) == scaler
    same = meta.assign(zero_shot_score=0.5)
    assert (TaskFeatureScaler.fit(same).transform(same)[:, 1] == 0).all()
    with pytest.raises(ValidationError, match="zero_shot_score"):
        scaler.transform(meta.drop(columns="zero_shot_score"))


def test_curve_inputs_read_only_the_observed_prefix():
    curves = np.array([[0.5, 0.6, 0.7, np.nan], [0.5, 0.6, 0.7, 0.8]])
    inputs = curve_inputs(np.zeros((2, 11)), np.ones(3), curves, np.array([3, 4]), 4)
    np.testing.assert_array_equal(inputs[:, 14:18], [[0.5, 0.6, 0, 0], [0.5, 0.6, 0.7, 0]])
    np.testing.assert_array_equal(inputs[:, 18:], [[2 / 4, 3 / 4], [3 / 4, 1.0]])
    alone = curve_inputs(np.zeros((2, 11)), np.ones(3), curves, np.array([4, 4]), 4, 0)
    assert (alone[:, 14:19] == 0).all()
    with pytest.raises(ValidationError, match="NaN"):
        curve_inputs(np.zeros((1, 11)), np.ones(3), [[0.5, np.nan, 0.7, 0.8]], np.array([4]), 4)
    with pytest.raises(ValidationError, match="next_epochs"):
        curve_inputs(np.zeros((1, 11)), np.ones(3), curves[:1], np.array([5]), 4)


def test_samples_cover_every_observed_epoch(metadataset):
    md = simulated_metadataset(n_tasks=2, n_configs=5, max_epochs=3, seed=1, missing_fraction=0.5)
    inputs, targets, task_ids = metadataset_samples(md, TaskFeatureScaler.fit(md.meta))
    observed = np.cumprod(np.isfinite(md.curves), axis=2).sum()
    # one (prefix → next) sample per observed epoch, plus one from scratch for epochs ≥ 2
    from_scratch = np.cumprod(np.isfinite(md.curves[:, :, 1:]), axis=2).sum()
    assert len(targets) == observed + from_scratch == len(inputs) == len(task_ids)
    assert np.isfinite(targets).all()


def test_performance_surrogate_transfers_to_a_held_out_task(metadataset, held_out, surrogates):
    perf, _ = surrogates
    t = metadataset.task_index(held_out)
    features, meta = config_features(metadataset.configs), metadataset.meta.loc[[held_out]]
    n = len(features)
    for epoch, observed in ((3, None), (EPOCHS, 0)):
        mean, std = perf.predict(features, meta, metadataset.curves[t], np.full(n, epoch), observed)
        truth = metadataset.curves[t, :, epoch - 1]
        assert spearmanr(mean, truth)[0] > 0.6
        assert np.abs(mean - truth).mean() < np.abs(truth - truth.mean()).mean()
        assert (std > 0).all()


def test_posterior_is_gpytorchs_exact_prediction(surrogates, metadataset):
    perf, _ = surrogates
    queries = perf.conditioning_inputs_[:40] + 0.01
    mean, std = perf._posterior(queries)
    known = perf.conditioning_inputs_
    model = perf.model_
    model.set_train_data(
        torch.as_tensor(known),
        torch.as_tensor(perf.conditioning_targets_ - perf._offset(known)),
        strict=False,
    )
    model.eval()
    with torch.no_grad(), gpytorch.settings.max_cholesky_size(10_000):
        reference = model.likelihood(model(torch.as_tensor(queries)))
    np.testing.assert_allclose(mean, reference.mean.numpy() + perf._offset(queries), atol=1e-8)
    np.testing.assert_allclose(std, reference.stddev.numpy(), atol=1e-8)


def test_conditioning_shrinks_std_and_pulls_the_mean(metadataset, held_out, surrogates):
    import copy

    perf = copy.deepcopy(surrogates[0])
    t = metadataset.task_index(held_out)
    features, meta = config_features(metadataset.configs)[:6], metadataset.meta.loc[[held_out]]
    curves, epochs = metadataset.curves[t, :6], np.full(6, 2)
    truth = curves[:, 1]
    mean_before, std_before = perf.predict(features, meta, curves, epochs)
    parameters = [p.detach().clone() for p in perf.model_.parameters()]
    perf.fit_extra(features, meta, curves, epochs, truth, n_iterations=0)
    mean_after, std_after = perf.predict(features, meta, curves, epochs)
    assert (std_after < std_before).all()
    assert np.abs(mean_after - truth).mean() < np.abs(mean_before - truth).mean()
    assert all(torch.equal(a, b) for a, b in zip(parameters, perf.model_.parameters()))
    perf.fit_extra(features, meta, curves, epochs, truth, n_iterations=3)
    assert not all(torch.equal(a, b) for a, b in zip(parameters, perf.model_.parameters()))
    assert len(perf.extra_targets_) == 12


def test_cost_surrogate_recovers_the_cost_order(metadataset, held_out, surrogates):
    _, cost = surrogates
    t = metadataset.task_index(held_out)
    features = config_features(metadataset.configs)
    predicted = cost.predict(features, metadataset.meta.loc[held_out])
    assert predicted.shape == (len(features),) and (predicted > 0).all()
    assert spearmanr(predicted, metadataset.costs[t].mean(axis=1))[0] > 0.9


def test_save_load_round_trip(tmp_path, metadataset, held_out, surrogates):
    import copy

    perf, cost = copy.deepcopy(surrogates[0]), surrogates[1]
    t = metadataset.task_index(held_out)
    features, meta = config_features(metadataset.configs), metadataset.meta.loc[[held_out]]
    perf.fit_extra(features[:2], meta, metadataset.curves[t, :2], [2, 3], [0.5, 0.6], 0)
    epochs = np.arange(len(features)) % EPOCHS + 1
    expected = perf.predict(features, meta, metadataset.curves[t], epochs)
    loaded = PerformanceSurrogate.load(perf.save(tmp_path / "perf"))
    got = loaded.predict(features, meta, metadataset.curves[t], epochs)
    np.testing.assert_array_equal(expected[0], got[0])
    np.testing.assert_array_equal(expected[1], got[1])
    assert loaded.get_params() == perf.get_params()
    loaded_cost = CostSurrogate.load(cost.save(tmp_path / "cost"))
    np.testing.assert_array_equal(cost.predict(features, meta), loaded_cost.predict(features, meta))
    with pytest.raises(CheckpointError, match="not a"):
        PerformanceSurrogate.load(tmp_path / "cost")


def test_fit_is_reproducible_and_checks_its_inputs():
    md = simulated_metadataset(n_tasks=3, n_configs=6, max_epochs=3, seed=2)
    features = config_features(md.configs)
    first, second = (
        PerformanceSurrogate(n_iterations=8, seed=5)
        .fit(md)
        .predict(features, md.meta.iloc[0], md.curves[0], np.full(6, 3))
        for _ in range(2)
    )
    np.testing.assert_array_equal(first[0], second[0])
    with pytest.raises(ValidationError, match="fit"):
        PerformanceSurrogate().predict(features, md.meta.iloc[0], md.curves[0], np.full(6, 3))
    surrogate = PerformanceSurrogate(n_iterations=2).fit(md)
    with pytest.raises(ValidationError, match=r"\[n, 11\]"):
        surrogate.predict(features[:, :5], md.meta.iloc[0], md.curves[0], np.full(6, 3))
    with pytest.raises(ValidationError, match="n_train"):
        surrogate.predict(features, md.meta.iloc[0].drop("n_train"), md.curves[0], np.full(6, 3))
