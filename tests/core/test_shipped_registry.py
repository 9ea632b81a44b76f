"""The registry of shipped checkpoints: every shipped file has the sha256 recorded in code, and a
name it holds loads only those files, wherever they are found; a path loads any checkpoint."""

import hashlib
import json
import runpy
import shutil

import pytest
import torch

from autofm.checkpoints import registry
from autofm.checkpoints.registry import SHIPPED
from autofm.core import checkpoint
from autofm.core.checkpoint import (
    PACKAGE_CHECKPOINT_DIR,
    checkpoint_stem,
    list_pretrained,
    load_checkpoint,
    load_model,
    load_pretrained,
    save_checkpoint,
)
from autofm.core.errors import CheckpointError
from autofm.finetune.tuning import SHIPPED_TUNER, load_tuner
from autofm.icl.pretrained import build_pfn_from_config, load_pfn

NAME = "icl-counting"  # the smallest shipped pair


def _swapped_pair(folder, name=NAME):
    """The shipped NAME saved as `folder/name` with one weight changed and a consistent JSON
    (its sha256 recomputed), as someone swapping both files would write it."""
    tensors, meta = load_checkpoint(PACKAGE_CHECKPOINT_DIR / NAME)
    first = sorted(tensors)[0]
    tensors[first] = tensors[first] + 1.0
    save_checkpoint(
        folder / name,
        tensors,
        kind=meta["kind"],
        model=meta["model"],
        training=meta["training"],
        provenance=meta["provenance"],
    )
    return first, tensors[first]


def test_every_shipped_file_has_the_sha256_recorded_in_code(monkeypatch):
    # fails after retraining a shipped checkpoint until `registry --update` is run (on purpose)
    for name, files in SHIPPED.items():
        for file, sha256 in files.items():
            digest = hashlib.sha256((PACKAGE_CHECKPOINT_DIR / file).read_bytes()).hexdigest()
            assert digest == sha256, (
                f"{file} changed; if on purpose: python -m autofm.checkpoints.registry --update"
            )
        if f"{name}.json" in files:  # a pair: its JSON records the same weights
            meta = json.loads((PACKAGE_CHECKPOINT_DIR / f"{name}.json").read_text())
            assert meta["sha256"] == files[f"{name}.safetensors"]
    assert registry.scan() == SHIPPED  # no shipped checkpoint added or removed either
    monkeypatch.delenv("AUTOFM_CHECKPOINTS", raising=False)
    assert set(SHIPPED) == {*list_pretrained(), SHIPPED_TUNER}


def test_a_consistent_swapped_pair_under_a_shipped_name_is_refused_but_loads_by_path(
    tmp_path, monkeypatch
):
    tensor_name, changed = _swapped_pair(tmp_path)
    assert load_checkpoint(tmp_path / NAME)[1]["kind"] == "pfn"  # its own sha256 matches
    monkeypatch.setenv("AUTOFM_CHECKPOINTS", str(tmp_path))
    for load in (
        lambda: load_pretrained(NAME),
        lambda: load_pfn(NAME),
        lambda: load_pfn("counting"),  # a prior's name resolves to icl-counting
        lambda: load_model(NAME, kind="pfn", build=build_pfn_from_config),
    ):
        with pytest.raises(CheckpointError) as refused:
            load()
        message = str(refused.value)
        assert str(tmp_path / f"{NAME}.json") in message and "shipped" in message
        assert f"load it by path: {tmp_path / NAME}" in message and "\n" not in message
    for path in (tmp_path / NAME, str(tmp_path / NAME), tmp_path / f"{NAME}.safetensors"):
        model, meta = load_pfn(path)
        assert torch.equal(model.state_dict()[tensor_name], changed)


def test_a_swapped_json_alone_is_refused(tmp_path, monkeypatch):
    shutil.copy(PACKAGE_CHECKPOINT_DIR / f"{NAME}.safetensors", tmp_path)
    meta = json.loads((PACKAGE_CHECKPOINT_DIR / f"{NAME}.json").read_text())
    meta["training"]["prior"] = "steps"  # weights untouched, so their sha256 still matches
    (tmp_path / f"{NAME}.json").write_text(json.dumps(meta))
    monkeypatch.setenv("AUTOFM_CHECKPOINTS", str(tmp_path))
    with pytest.raises(CheckpointError, match=f"{NAME}.json"):
        load_pretrained(NAME)
    assert load_checkpoint(tmp_path / NAME)[1]["training"]["prior"] == "steps"


def test_a_shipped_name_in_the_working_directory_is_checked_too(tmp_path, monkeypatch):
    _swapped_pair(tmp_path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointError, match="shipped"):
        checkpoint_stem(NAME)
    assert load_checkpoint(checkpoint_stem(f"./{NAME}"))[1]["kind"] == "pfn"  # a path
    for file in SHIPPED[NAME]:  # the shipped files themselves, copied here, pass
        shutil.copy(PACKAGE_CHECKPOINT_DIR / file, tmp_path)
    assert load_pfn(NAME)[1]["training"]["prior"] == "counting"


def test_a_swapped_file_in_the_package_folder_says_how_to_restore_or_register_it(
    tmp_path, monkeypatch
):
    _swapped_pair(tmp_path)
    monkeypatch.setattr(checkpoint, "PACKAGE_CHECKPOINT_DIR", tmp_path.resolve())
    monkeypatch.delenv("AUTOFM_CHECKPOINTS", raising=False)
    with pytest.raises(CheckpointError, match="reinstall autofm.*registry --update"):
        load_pretrained(NAME)
    (tmp_path / f"{NAME}.safetensors").unlink()
    (tmp_path / f"{NAME}.json").write_bytes((PACKAGE_CHECKPOINT_DIR / f"{NAME}.json").read_bytes())
    with pytest.raises(CheckpointError, match=f"{NAME}.safetensors is missing"):
        load_pretrained(NAME)


def test_a_user_checkpoint_under_another_name_loads_by_name(tmp_path, monkeypatch):
    tensor_name, changed = _swapped_pair(tmp_path, "my-counting")
    monkeypatch.setenv("AUTOFM_CHECKPOINTS", str(tmp_path))
    model, _ = load_pfn("my-counting")
    assert torch.equal(model.state_dict()[tensor_name], changed)
    assert load_pfn(NAME)[1]["sha256"] == SHIPPED[NAME][f"{NAME}.safetensors"]


def test_the_shipped_tuner_folder_is_checked_file_by_file(tmp_path, monkeypatch):
    assert load_tuner().max_epochs >= 1  # the shipped one, from the package
    shutil.copytree(PACKAGE_CHECKPOINT_DIR / SHIPPED_TUNER, tmp_path / SHIPPED_TUNER)
    manifest_path = tmp_path / SHIPPED_TUNER / "tuner.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["max_epochs"] += 1
    manifest_path.write_text(json.dumps(manifest))
    monkeypatch.setenv("AUTOFM_CHECKPOINTS", str(tmp_path))
    with pytest.raises(CheckpointError, match=f"{SHIPPED_TUNER}/tuner.json"):
        load_tuner(SHIPPED_TUNER)
    assert load_tuner(tmp_path / SHIPPED_TUNER).max_epochs == manifest["max_epochs"]
    assert load_tuner(str(tmp_path / SHIPPED_TUNER)).max_epochs == manifest["max_epochs"]


@pytest.fixture
def hashed(monkeypatch):
    """The files hashed from now on (with an empty cache)."""
    calls = []
    hash_file = checkpoint.sha256_file
    monkeypatch.setattr(
        checkpoint, "sha256_file", lambda path: calls.append(path) or hash_file(path)
    )
    monkeypatch.setattr(checkpoint, "_sha256_cache", {})
    return calls


def test_a_settled_file_is_hashed_once_per_process(hashed):
    for _ in range(3):
        load_pretrained(NAME)
    assert len(hashed) == 2  # the JSON and the weights, once each


def test_a_file_written_just_now_is_hashed_again_each_time(tmp_path, hashed):
    # another write within the clock's tick could leave its mtime as it is
    stem = save_checkpoint(tmp_path / "m", {"w": torch.zeros(3)}, kind="test", model={})
    hashed.clear()
    load_checkpoint(stem)
    load_checkpoint(stem)
    assert len(hashed) == 2


def _copy_of_the_checkpoints_folder(tmp_path):
    folder = tmp_path / "checkpoints"
    shutil.copytree(PACKAGE_CHECKPOINT_DIR, folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def test_update_regenerates_the_identical_registry_from_unchanged_files(tmp_path):
    folder = _copy_of_the_checkpoints_folder(tmp_path)
    source = (folder / "registry.py").read_text()
    assert registry.main(["--folder", str(folder)]) == 0
    assert registry.main(["--update", "--folder", str(folder)]) == 0
    assert (folder / "registry.py").read_text() == source


def test_update_records_a_retrained_file_and_only_that(tmp_path):
    folder = _copy_of_the_checkpoints_folder(tmp_path)
    source = (folder / "registry.py").read_text()
    _swapped_pair(folder)
    assert registry.main(["--folder", str(folder)]) == 1  # stale: says so, rewrites nothing
    assert (folder / "registry.py").read_text() == source
    assert registry.main(["--update", "--folder", str(folder)]) == 0
    updated = runpy.run_path(str(folder / "registry.py"))["SHIPPED"]
    for file in SHIPPED[NAME]:
        assert updated[NAME][file] == hashlib.sha256((folder / file).read_bytes()).hexdigest()
        assert updated[NAME][file] != SHIPPED[NAME][file]
    assert {k: v for k, v in updated.items() if k != NAME} == {
        k: v for k, v in SHIPPED.items() if k != NAME
    }
    # only the dict literal changed
    assert registry.rewrite((folder / "registry.py").read_text(), SHIPPED) == source
