"""The one model contract: strict configs, one checkpoint layout, one loader, format-1 migration,
and provenance without machine paths."""

import json
import os
from dataclasses import dataclass

import pytest
import torch

from autofm.core.checkpoint import (
    list_pretrained,
    load_model,
    read_checkpoint_meta,
    save_checkpoint,
    save_model,
)
from autofm.core.config import ConfigMixin
from autofm.core.errors import CheckpointError
from autofm.core.migrate import migrate_checkpoint_file, migrate_meta
from autofm.core.provenance import portable


@dataclass(frozen=True)
class _Config(ConfigMixin):
    width: int = 4
    sizes: tuple[int, ...] = (1, 2)
    span: int | tuple[int, int] = 3


class _Net(torch.nn.Module):
    checkpoint_kind = "net"

    def __init__(self, config: _Config):
        super().__init__()
        self.config = config
        self.layer = torch.nn.Linear(config.width, 2)


def _build(config, source):
    return _Net(_Config.from_dict(config, source=source))


def test_config_round_trips_through_json_with_its_tuples():
    config = _Config(width=3, sizes=(4, 5, 6), span=(2, 9))
    restored = _Config.from_dict(json.loads(json.dumps(config.to_dict())))
    assert restored == config and isinstance(restored.span, tuple)
    assert _Config.from_dict({}) == _Config()  # missing keys take their defaults


def test_unknown_config_key_names_the_key_and_the_checkpoint():
    with pytest.raises(CheckpointError, match=r"model\.json has _Config key\(s\) \['depth'\]"):
        _Config.from_dict({"width": 3, "depth": 2}, source="model.json")
    with pytest.raises(CheckpointError, match="must be a JSON object"):
        _Config.from_dict([3], source="model.json")


def test_save_and_load_model_round_trip_in_the_one_layout(tmp_path):
    torch.manual_seed(0)
    net = _Net(_Config(width=3))
    stem = save_model(tmp_path / "net", net, training={"steps": 5}, provenance={"note": "x"})
    meta = json.loads(stem.with_suffix(".json").read_text())
    assert {"kind", "format_version", "model", "training", "provenance"} <= set(meta)
    assert meta["kind"] == "net" and meta["model"] == {"width": 3, "sizes": [1, 2], "span": 3}
    assert meta["training"] == {"steps": 5} and meta["provenance"]["note"] == "x"
    loaded, _ = load_model(stem, kind="net", build=_build)
    assert not loaded.training and loaded.config == net.config
    assert torch.equal(loaded.layer.weight, net.layer.weight)
    with pytest.raises(CheckpointError, match="holds a 'net' checkpoint, not a 'pfn' one"):
        load_model(stem, kind="pfn", build=_build)


def test_load_model_reads_the_weights_of_a_training_state(tmp_path):
    net = _Net(_Config())
    tensors = {f"model.{k}": v for k, v in net.state_dict().items()}
    tensors["optimizer.0.step"] = torch.tensor(3.0)
    stem = save_checkpoint(
        tmp_path / "last", tensors, kind="net", model={}, contents="training-state"
    )
    loaded, meta = load_model(stem, kind="net", build=_build)
    assert meta["contents"] == "training-state"
    assert torch.equal(loaded.layer.bias, net.layer.bias)


FORMAT_1 = {
    "gamformer": {"kind": "gamformer", "n_bins": 8},
    "pfn": {"pfn": {"d_model": 8}, "prior": "gp"},
    "gpt": {"model": {"width": 32}, "tokenizer": {"kind": "bytes"}, "training": {"a": 1}},
    "mamba4cast": {"d_state": 4, "headdim": 8, "quantiles": [0.5]},
    "neural-ensembler": {"kind": "autofm.ensemble.NeuralEnsembler", "n_models": 3},
}


@pytest.mark.parametrize("kind", sorted(FORMAT_1))
def test_each_format_1_layout_migrates_to_its_kind(kind):
    meta = {"format_version": 1, "config": FORMAT_1[kind], "sha256": "0", "provenance": {}}
    migrated = migrate_meta(meta, "old.json")
    assert migrated["kind"] == kind and migrated["format_version"] == 2
    assert "config" not in migrated and "kind" not in migrated["model"]


def test_format_1_training_state_and_unknown_layouts(tmp_path):
    config = {"model": FORMAT_1["pfn"], "train": {"lr": 1}, "step": 7, "optimizer_param_groups": []}
    meta = migrate_meta({"config": config, "sha256": "0"}, "last.json")
    assert meta["contents"] == "training-state" and meta["training"]["step"] == 7
    assert meta["training"]["prior"] == "gp"
    with pytest.raises(CheckpointError, match="unknown kind; re-save it"):
        migrate_meta({"config": {"whatever": 1}, "sha256": "0"}, "odd.json")


def test_a_format_1_file_loads_and_migrates_with_its_weights_untouched(tmp_path):
    torch.manual_seed(1)
    net = _Net(_Config())
    stem = save_model(tmp_path / "old", net)
    meta = json.loads(stem.with_suffix(".json").read_text())
    old = {k: meta[k] for k in ("weights_file", "sha256", "n_parameters", "provenance")}
    old |= {"format_version": 1, "config": {"kind": "gamformer", "width": 4}}
    stem.with_suffix(".json").write_text(json.dumps(old))
    weights = stem.with_suffix(".safetensors").read_bytes()
    assert read_checkpoint_meta(stem)["kind"] == "gamformer"  # migrated in memory
    assert migrate_checkpoint_file(stem) and not migrate_checkpoint_file(stem)
    assert stem.with_suffix(".safetensors").read_bytes() == weights
    assert json.loads(stem.with_suffix(".json").read_text())["format_version"] == 2


def test_provenance_paths_are_portable(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = f"{tmp_path}/src/run.py --out /tmp/xyz/model --url http://a/b ratio 1/2"
    assert portable(text) == "src/run.py --out model --url http://a/b ratio 1/2"
    monkeypatch.setattr("sys.argv", [f"{tmp_path}/bin/autofm", "train", "--out", "/scratch/m"])
    stem = save_model(tmp_path / "m", _Net(_Config()))
    command = read_checkpoint_meta(stem)["provenance"]["command"]
    assert command == "autofm train --out m"


def test_shipped_checkpoints_are_current_and_hold_no_machine_paths():
    shipped = [name for name in list_pretrained() if not os.environ.get("AUTOFM_CHECKPOINTS")]
    assert {"gamformer-cpu", "mamba4cast-cpu", "icl-gp"} <= set(shipped)
    from autofm.core.checkpoint import find_pretrained

    for name in shipped:
        raw = json.loads(find_pretrained(name).with_suffix(".json").read_text())
        assert raw["format_version"] == 2 and "config" not in raw
        text = json.dumps(raw["provenance"]) + json.dumps(raw["training"])
        assert portable(text) == text, name


def test_half_precision_weights_load_back_into_a_float32_model(tmp_path):
    torch.manual_seed(2)
    net = _Net(_Config())
    stem = save_model(tmp_path / "half", net, dtype=torch.float16)
    from safetensors.torch import load_file

    assert load_file(str(stem.with_suffix(".safetensors")))["layer.weight"].dtype == torch.float16
    loaded, _ = load_model(stem, kind="net", build=_build)
    assert loaded.layer.weight.dtype == torch.float32
    torch.testing.assert_close(loaded.layer.weight, net.layer.weight, rtol=1e-3, atol=1e-4)
