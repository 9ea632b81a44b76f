import dataclasses

import numpy as np
import pytest
import torch

from autofm.core.checkpoint import load_checkpoint
from autofm.core.errors import ValidationError
from autofm.gam.model import GAMformer
from autofm.gam.training import gam_loss, get_preset, train_gamformer
from tests.gam.conftest import TINY, tiny_preset


def test_loss_is_cross_entropy_of_the_query_rows():
    classification_only = dataclasses.replace(tiny_preset().prior, regression_fraction=0.0)
    batch = classification_only.sample(4, 30, 10, 3, torch.Generator().manual_seed(5))
    assert not batch.metadata["regression"]
    torch.manual_seed(0)
    model = GAMformer(TINY)
    with torch.no_grad():
        loss = gam_loss(model, batch)
    # an untrained model predicts near-uniform logits over each task's classes
    expected = torch.log(batch.metadata["n_classes"].double()).mean()
    assert abs(float(loss) - float(expected)) < 0.1


def test_training_reduces_the_loss_and_resumes(tmp_path):
    result = train_gamformer(tiny_preset(steps=80), tmp_path / "run", device="cpu", seed=1)
    losses = np.asarray(result.losses)
    assert result.steps_done == 80
    assert losses[-25:].mean() < losses[:25].mean()
    # a longer run in the same folder continues from step 80 instead of starting over
    resumed = train_gamformer(tiny_preset(steps=85), tmp_path / "run", device="cpu", seed=1)
    assert resumed.steps_done == 85 and len(resumed.losses) == 5


def test_shipped_weights_record_their_provenance(tmp_path):
    train_gamformer(tiny_preset(steps=3), tmp_path / "run", output=tmp_path / "w", device="cpu")
    tensors, meta = load_checkpoint(tmp_path / "w")
    assert meta["kind"] == "gamformer" and meta["model"]["n_bins"] == TINY.n_bins
    assert meta["training"]["steps"] == 3 and "prior" in meta["training"]
    assert not any(name.startswith("optimizer") for name in tensors)


def test_get_preset_returns_a_copy_and_rejects_unknown_names():
    original, changed = get_preset("cpu"), get_preset("cpu")
    changed.train.steps = 1
    changed.prior.regression_fraction = 0.9
    changed.model.n_bins = 4
    assert changed != original and get_preset("cpu") == original
    with pytest.raises(ValidationError, match="unknown preset"):
        get_preset("huge")


def test_warm_start_loads_the_weights_and_rejects_another_architecture(tmp_path, tiny_checkpoint):
    tensors, _ = load_checkpoint(tiny_checkpoint)
    result = train_gamformer(
        tiny_preset(steps=1), tmp_path / "run", init=tiny_checkpoint, lr=1e-12, device="cpu"
    )
    for name, value in result.model.state_dict().items():
        torch.testing.assert_close(value, tensors[name], atol=1e-6, rtol=0)
    with pytest.raises(ValidationError, match="warm-start"):
        train_gamformer("cpu", tmp_path / "other", steps=1, init=tiny_checkpoint, device="cpu")
