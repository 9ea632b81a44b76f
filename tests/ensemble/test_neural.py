import numpy as np
import pytest
import torch

from autofm.core.errors import CheckpointError, ValidationError
from autofm.ensemble import GreedyEnsemble, NeuralEnsembler, make_synthetic_ftc
from autofm.ensemble.metrics import nll
from autofm.ensemble.neural import ClassSetNetwork, _dropout_mask, _tensors
from tests.ensemble.conftest import random_predictions

FAST = dict(max_epochs=40, patience=10)


def test_dropout_mask_rate_and_never_empty():
    generator = torch.Generator().manual_seed(0)
    assert _dropout_mask(5, 0.0, generator) is None
    masks = torch.stack([_dropout_mask(3, 0.99, generator) for _ in range(500)])
    assert masks.any(dim=1).all()
    kept = torch.stack([_dropout_mask(40, 0.75, generator) for _ in range(500)]).float().mean()
    assert float(kept) == pytest.approx(0.25, abs=0.02)


def test_model_averaging_output_is_the_weighted_mixture():
    P, y = random_predictions(n=50, m=4, c=3)
    ensembler = NeuralEnsembler(random_state=0, **FAST).fit(P, y)
    weights = ensembler.weights(P)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(
        ensembler.predict_proba(P), np.einsum("nm,nmc->nc", weights, P), atol=1e-5
    )


def test_dropped_models_get_zero_weight_and_do_not_matter():
    torch.manual_seed(0)
    network = ClassSetNetwork(4, hidden=8, n_layers=2)
    P, _ = random_predictions(n=10, m=4, c=3)
    proba, log_proba = _tensors(P)
    keep = torch.tensor([True, False, True, False])
    log_p, log_w = network(proba, log_proba, keep)
    assert torch.all(log_w[:, ~keep] == float("-inf"))
    changed = proba.clone()
    changed[:, 1] = changed[:, 1].flip(-1)  # a dropped model's predictions must not matter
    log_p2, _ = network(changed, torch.log(changed), keep)
    torch.testing.assert_close(log_p, log_p2)


@pytest.mark.parametrize("mode", ["model_averaging", "stacking"])
def test_class_permutation_equivariance(mode):
    torch.manual_seed(0)
    network = ClassSetNetwork(3, hidden=8, n_layers=3, mode=mode)
    P, _ = random_predictions(n=6, m=3, c=4)
    permutation = [2, 0, 3, 1]
    log_p, log_w = network(*_tensors(P))
    log_p_perm, log_w_perm = network(*_tensors(P[:, :, permutation]))
    torch.testing.assert_close(log_p[:, permutation], log_p_perm, atol=1e-5, rtol=1e-5)
    if mode == "model_averaging":
        torch.testing.assert_close(log_w, log_w_perm, atol=1e-5, rtol=1e-5)


def test_per_sample_weighting_beats_static_where_competence_is_regional():
    pool = make_synthetic_ftc(n_val=400, n_test=400, n_models=8, n_classes=3, random_state=0)
    pool = pool.usable()
    greedy = GreedyEnsemble().fit(pool.val_predictions, pool.val_labels)
    neural = NeuralEnsembler(dropout_rate=0.0, max_epochs=100, random_state=0).fit(
        pool.val_predictions, pool.val_labels
    )
    greedy_nll = nll(greedy.predict_proba(pool.test_predictions), pool.test_labels)
    neural_nll = nll(neural.predict_proba(pool.test_predictions), pool.test_labels)
    assert neural_nll < 0.8 * greedy_nll
    weights = neural.weights(pool.test_predictions)
    assert weights.std(axis=0).mean() > 0.01  # weights really vary by sample


def test_reproducible_and_early_stopping_keeps_best():
    P, y = random_predictions(n=120, m=5, c=3, seed=3)
    a = NeuralEnsembler(random_state=1, **FAST).fit(P, y)
    b = NeuralEnsembler(random_state=1, **FAST).fit(P, y)
    np.testing.assert_array_equal(a.predict_proba(P), b.predict_proba(P))
    assert len(a.history_["holdout_nll"]) == len(a.history_["train_nll"]) <= 40


def test_stacking_mode_and_saliency():
    P, y = random_predictions(n=80, m=4, c=3, seed=2)
    ensembler = NeuralEnsembler(mode="stacking", random_state=0, **FAST).fit(P, y)
    proba = ensembler.predict_proba(P)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    weights = ensembler.weights(P)
    assert weights.shape == (80, 4)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-6)


def test_cross_validated_dropout_rate():
    P, y = random_predictions(n=90, m=4, c=3, seed=5)
    ensembler = NeuralEnsembler(
        dropout_rate="cv", dropout_grid=(0.0, 0.5), cv_folds=2, random_state=0, max_epochs=10
    ).fit(P, y)
    assert set(ensembler.cv_scores_) == {0.0, 0.5}
    assert ensembler.dropout_rate_ == min(ensembler.cv_scores_, key=ensembler.cv_scores_.get)


def test_save_load_round_trip_and_tampering(tmp_path):
    P, y = random_predictions(n=60, m=3, c=2, seed=6)
    ensembler = NeuralEnsembler(random_state=0, **FAST).fit(P, y)
    stem = ensembler.save(tmp_path / "neural")
    loaded = NeuralEnsembler.load(stem)
    np.testing.assert_allclose(loaded.predict_proba(P), ensembler.predict_proba(P))
    weights_file = stem.with_suffix(".safetensors")
    data = bytearray(weights_file.read_bytes())
    data[-1] ^= 0xFF
    weights_file.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256"):
        NeuralEnsembler.load(stem)


def test_bad_parameters():
    P, y = random_predictions(n=30, m=3, c=2)
    with pytest.raises(ValidationError, match="dropout"):
        NeuralEnsembler(dropout_rate=1.0).fit(P, y)
    with pytest.raises(ValidationError, match="mode"):
        NeuralEnsembler(mode="boosting").fit(P, y)
    single = NeuralEnsembler(random_state=0, **FAST).fit(P[:, :1], y)
    np.testing.assert_allclose(single.weights(P[:, :1]), 1.0)
