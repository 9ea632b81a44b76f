import json

import pytest
import torch

from autofm.core.checkpoint import (
    list_pretrained,
    load_checkpoint,
    load_pretrained,
    load_state_into,
    save_checkpoint,
)
from autofm.core.errors import CheckpointError


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))


def test_round_trip_restores_identical_weights_and_config(tmp_path):
    model = _model()
    stem = save_checkpoint(
        tmp_path / "m", model, kind="test", model={"width": 4}, provenance={"note": "test"}
    )
    tensors, meta = load_checkpoint(stem)
    assert meta["model"] == {"width": 4} and meta["kind"] == "test"
    assert meta["provenance"] == {"note": "test"}
    assert meta["n_parameters"] == sum(p.numel() for p in model.parameters())
    fresh = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    load_state_into(fresh, tensors)
    x = torch.randn(5, 3)
    assert torch.equal(fresh(x), model(x))
    assert not list(tmp_path.glob(".*tmp")), "temporary files left behind"


def test_tampered_weights_are_refused(tmp_path):
    stem = save_checkpoint(tmp_path / "m", _model(), kind="test", model={})
    weights = stem.with_suffix(".safetensors")
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256"):
        load_checkpoint(stem)


def test_weights_tampered_after_a_load_are_refused_on_the_next(tmp_path):
    # the hash of a loaded file is cached: a change in place must not be hidden by it
    stem = save_checkpoint(tmp_path / "m", _model(), kind="test", model={})
    load_checkpoint(stem)
    weights = stem.with_suffix(".safetensors")
    weights.write_bytes(weights.read_bytes()[:-4] + b"\x00\x00\x00\x00")
    with pytest.raises(CheckpointError, match="sha256"):
        load_checkpoint(stem)


def test_metadata_from_newer_version_or_other_program_is_refused(tmp_path):
    stem = save_checkpoint(tmp_path / "m", _model(), kind="test", model={})
    meta_path = stem.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta["format_version"] = 99
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="newer"):
        load_checkpoint(stem)
    meta_path.write_text('{"something": "else"}')
    with pytest.raises(CheckpointError, match="not an autofm checkpoint"):
        load_checkpoint(stem)
    meta_path.write_text("not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(stem)


def test_missing_files_and_mismatched_shapes(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "absent")
    stem = save_checkpoint(tmp_path / "m", _model(), kind="test", model={})
    tensors, _ = load_checkpoint(stem)
    wider = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2))
    with pytest.raises(CheckpointError, match="shape"):
        load_state_into(wider, tensors)


def test_pretrained_registry_uses_env_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOFM_CHECKPOINTS", str(tmp_path))
    save_checkpoint(tmp_path / "tiny-test-model", _model(), kind="test", model={})
    assert "tiny-test-model" in list_pretrained()
    tensors, meta = load_pretrained("tiny-test-model")
    assert meta["kind"] == "test"
    with pytest.raises(CheckpointError, match="available"):
        load_pretrained("no-such-model")


def test_stem_with_a_dot_keeps_its_name(tmp_path):
    stem = save_checkpoint(tmp_path / "model_lr0.003", _model(), kind="test", model={"lr": 0.003})
    assert (tmp_path / "model_lr0.003.json").exists()
    assert (tmp_path / "model_lr0.003.safetensors").exists()
    save_checkpoint(tmp_path / "model_lr0.001", _model(), kind="test", model={"lr": 0.001})
    assert load_checkpoint(stem)[1]["model"] == {"lr": 0.003}
    assert load_checkpoint(tmp_path / "model_lr0.003.json")[1]["model"] == {"lr": 0.003}
