"""Checkpoints: safetensors weights plus a JSON file with the model config, provenance and sha256.

A checkpoint named `stem` is two files, `stem.safetensors` and `stem.json`. Every system's
checkpoint has one JSON layout (`save_checkpoint`): its `kind` ("pfn", "gamformer", ...), the
`model` config that rebuilds it, a `training` summary and `provenance`. `load_model` is the one
loader: find by name or path, verify the sha256, check the kind, build, load the weights
strictly. Nothing is pickled. Files of format 1 are migrated on reading (`autofm.core.migrate`).

A shipped name (a key of `autofm.checkpoints.registry.SHIPPED`) resolves only to files whose
sha256 is the one recorded in code for it (`verify_shipped`), wherever they are found; a path
loads any checkpoint whose weights match its JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from autofm.checkpoints.registry import SHIPPED
from autofm.core.errors import AutofmError, CheckpointError
from autofm.core.io import atomic_path, atomic_write_json
from autofm.core.migrate import migrate_meta
from autofm.core.provenance import default_provenance, portable_values

FORMAT_VERSION = 2
CONTENTS = ("model", "training-state")
_LAYOUT_KEYS = (
    "kind",
    "format_version",
    "contents",
    "model",
    "training",
    "provenance",
    "weights_file",
    "sha256",
    "n_parameters",
)
PACKAGE_CHECKPOINT_DIR = Path(__file__).resolve().parent.parent / "checkpoints"
ENV_CHECKPOINT_DIR = "AUTOFM_CHECKPOINTS"
# git's "racy clean" rule: a file written this shortly before it was hashed may be written again
# within the same timestamp tick (the same mtime), so its hash is not cached
_SETTLED_NS = 3_000_000_000
_sha256_cache: dict[tuple[str, int, int, int, int, int], str] = {}


def _stem(path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.suffix in (".safetensors", ".json"):
        path = path.with_suffix("")
    return path


def _with(stem: Path, suffix: str) -> Path:
    # appended, not Path.with_suffix: a stem such as "model_lr0.003" keeps its dot
    return stem.parent / f"{stem.name}{suffix}"


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_cached(path: str | os.PathLike) -> str:
    """`sha256_file`, computed once per process for each version of a file (same path, inode,
    size, mtime and ctime), so that loading a checkpoint again does not hash it again; a file
    changed in the last few seconds (`_SETTLED_NS`) is hashed every time."""
    path = os.path.abspath(path)
    stat = os.stat(path)
    key = (path, stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
    if key in _sha256_cache:
        return _sha256_cache[key]
    started = time.time_ns()
    digest = sha256_file(path)
    if started - max(stat.st_mtime_ns, stat.st_ctime_ns) > _SETTLED_NS:
        _sha256_cache[key] = digest
    return digest


def verify_shipped(name: str, folder: Path) -> None:
    """Refuse the checkpoint `name` found in `folder` if `name` is shipped and any of its files
    differs from the shipped one (`autofm.checkpoints.registry`); other names pass."""
    in_package = folder.resolve() == PACKAGE_CHECKPOINT_DIR
    for relative, expected in SHIPPED.get(name, {}).items():
        path = folder / relative
        digest = sha256_cached(path) if path.is_file() else None
        if digest == expected:
            continue
        found = "is missing" if digest is None else f"has sha256 {digest[:12]}…"
        problem = f"{path} {found}, not the shipped {name!r} file's {expected[:12]}…"
        if in_package:
            raise CheckpointError(
                f"{problem}: reinstall autofm to restore it (if you retrained it on purpose, run "
                "`python -m autofm.checkpoints.registry --update`); save your own weights under "
                "another name"
            )
        raise CheckpointError(
            f"{problem}: a checkpoint under a shipped name must be the shipped one; rename or "
            f"remove yours (the shipped one is then used), or load it by path: "
            f"{folder.absolute() / name}"
        )


def save_checkpoint(
    path: str | os.PathLike,
    tensors: dict[str, torch.Tensor] | torch.nn.Module,
    *,
    kind: str,
    model: dict[str, Any],
    training: dict[str, Any] | None = None,
    provenance: dict[str, Any] | None = None,
    contents: str = "model",
    dtype: torch.dtype | None = None,
    **extra: Any,
) -> Path:
    """Write `path.safetensors` and `path.json` atomically; return the stem path.

    `dtype` (e.g. torch.float16) stores floating-point weights in that precision; loading casts
    them back to the model's own (`load_state_into`).

    The JSON is `{"kind", "format_version", "contents", "model", "training", "provenance",
    "weights_file", "sha256", "n_parameters"}` plus `extra` top-level entries (e.g. a
    tokenizer or a calibration). `model` is the config that rebuilds the model (JSON);
    `contents` is "model" (weights only) or "training-state" (weights under "model.", optimizer
    and RNG state: a run folder's `last`).
    """
    if contents not in CONTENTS:
        raise CheckpointError(f"contents must be one of {CONTENTS}, got {contents!r}")
    clash = set(extra) & set(_LAYOUT_KEYS)
    if clash:
        raise CheckpointError(f"extra checkpoint entries {sorted(clash)} clash with its layout")
    stem = _stem(path)
    if isinstance(tensors, torch.nn.Module):
        tensors = tensors.state_dict()
    # safetensors refuses shared or non-contiguous storage: store independent contiguous copies
    tensors = {name: t.detach().cpu().contiguous().clone() for name, t in tensors.items()}
    if dtype is not None:
        tensors = {n: t.to(dtype) if t.is_floating_point() else t for n, t in tensors.items()}
    weights_path = _with(stem, ".safetensors")
    with atomic_path(weights_path) as tmp:
        save_file(tensors, str(tmp))
        digest = sha256_file(tmp)
    meta = {
        "kind": kind,
        "format_version": FORMAT_VERSION,
        "contents": contents,
        "model": model,
        "training": training or {},
        "provenance": portable_values(
            provenance if provenance is not None else default_provenance()
        ),
        **extra,
        "weights_file": weights_path.name,
        "sha256": digest,
        "n_parameters": int(sum(t.numel() for t in tensors.values())),
    }
    try:
        atomic_write_json(_with(stem, ".json"), meta)
    except BaseException:
        weights_path.unlink(missing_ok=True)  # a checkpoint is both files or neither
        raise
    return stem


def save_model(
    path: str | os.PathLike,
    model: torch.nn.Module,
    *,
    training: dict[str, Any] | None = None,
    provenance: dict[str, Any] | None = None,
    dtype: torch.dtype | None = None,
    **extra: Any,
) -> Path:
    """Save a model that follows the model contract: it has `config` (a `ConfigMixin`
    dataclass that rebuilds it) and `checkpoint_kind`. A DDP wrapper is unwrapped; `provenance`
    adds entries to `default_provenance()`; `extra` adds top-level entries (e.g. a tokenizer)."""
    module = model.module if hasattr(model, "module") else model
    return save_checkpoint(
        path,
        module,
        kind=module.checkpoint_kind,
        model=module.config.to_dict(),
        training=training,
        provenance=default_provenance(**(provenance or {})),
        dtype=dtype,
        **extra,
    )


def read_checkpoint_meta(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check the JSON half of a checkpoint (format 1 is migrated in memory)."""
    stem = _stem(path)
    meta_path = _with(stem, ".json")
    if not meta_path.is_file():
        if stem.is_file():  # a path to some other file, e.g. a PyTorch .pt
            raise CheckpointError(
                f"{stem} is not an autofm checkpoint (no {meta_path.name} beside it); a "
                "checkpoint is a STEM.json + STEM.safetensors pair: pass the stem"
            )
        raise CheckpointError(f"checkpoint metadata {meta_path} not found; expected {stem}.json")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"checkpoint metadata {meta_path} is not valid JSON: {err}") from err
    if not isinstance(meta, dict) or "sha256" not in meta:
        raise CheckpointError(f"{meta_path} is not an autofm checkpoint (no sha256 key)")
    version = meta.get("format_version", 1)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{meta_path} has format version {version}, newer than this autofm supports "
            f"({FORMAT_VERSION}); upgrade autofm"
        )
    if version < FORMAT_VERSION:
        meta = migrate_meta(meta, str(meta_path))
    missing = [key for key in ("kind", "model") if key not in meta]
    if missing:
        raise CheckpointError(f"{meta_path} is not an autofm checkpoint (no {missing} keys)")
    return meta


def update_checkpoint_meta(path: str | os.PathLike, **entries: Any) -> None:
    """Add or replace top-level entries of a checkpoint's JSON (not its layout: kind, model,
    training, provenance, checksum), e.g. a calibration fitted after training; the weights are
    untouched. A format-1 file is rewritten in the current format."""
    clash = set(_LAYOUT_KEYS) & set(entries)
    if clash:
        raise CheckpointError(f"cannot overwrite checkpoint keys {sorted(clash)}")
    stem = _stem(path)
    meta = read_checkpoint_meta(stem)
    meta.update(entries)
    atomic_write_json(_with(stem, ".json"), meta)


def load_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load `(tensors, meta)`; raise CheckpointError if files are missing or the hash differs."""
    stem = _stem(path)
    meta = read_checkpoint_meta(stem)
    weights_path = _with(stem, ".safetensors")
    if not weights_path.is_file():
        raise CheckpointError(f"checkpoint weights {weights_path} not found")
    digest = sha256_cached(weights_path)
    if digest != meta["sha256"]:
        raise CheckpointError(
            f"checkpoint {weights_path} does not match the sha256 in {stem}.json "
            f"(expected {meta['sha256'][:12]}…, got {digest[:12]}…): the file was modified or "
            "corrupted; re-download or retrain it"
        )
    try:
        tensors = load_file(str(weights_path))
    except Exception as err:  # safetensors raises its own error types
        raise CheckpointError(f"cannot read weights {weights_path}: {err}") from err
    return tensors, meta


def model_tensors(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    """The model's weights in a checkpoint: all tensors, or those under "model." of a
    training state (a run folder's `last`)."""
    if meta.get("contents") == "training-state":
        return {name[6:]: value for name, value in tensors.items() if name.startswith("model.")}
    return tensors


def load_model(
    name_or_path: str | os.PathLike,
    *,
    kind: str,
    build: Callable[[dict[str, Any], str], torch.nn.Module],
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Load the `kind` model in a checkpoint (a shipped name, a stem, its .json/.safetensors, or
    a run folder's `last`): `(model in eval mode, meta)`.

    `build(model_config, source)` makes the untrained model from `meta["model"]` (`source`
    names the checkpoint for error messages); the weights are then loaded into it, strictly.
    """
    stem = checkpoint_stem(name_or_path)
    tensors, meta = load_checkpoint(stem)
    if meta["kind"] != kind:
        raise CheckpointError(
            f"{name_or_path} holds a {meta['kind']!r} checkpoint, not a {kind!r} one; pass a "
            f"{kind} checkpoint"
        )
    model = build(meta["model"], str(name_or_path))
    load_state_into(model, model_tensors(tensors, meta))
    return model.eval(), meta


def optimizer_tensors(
    optimizer: torch.optim.Optimizer,
) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """An optimizer's state as tensors named `optimizer.<param index>.<key>` (for safetensors)
    and its param groups (JSON), the two halves `restore_optimizer` takes back."""
    state = optimizer.state_dict()
    tensors = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            tensors[f"optimizer.{index}.{key}"] = torch.as_tensor(value)
    return tensors, state["param_groups"]


def restore_optimizer(
    optimizer: torch.optim.Optimizer, tensors: dict, param_groups: list[dict]
) -> None:
    """Load the state saved by `optimizer_tensors` (tensors may hold other entries too)."""
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": param_groups})


def load_state_into(module: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Load `tensors` into `module`, raising CheckpointError on missing/extra keys or shapes."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    wrong = sorted(
        name for name in set(expected) & set(tensors) if expected[name].shape != tensors[name].shape
    )
    if missing or extra or wrong:
        details = []
        if missing:
            details.append(f"missing {missing[:3]}")
        if extra:
            details.append(f"unexpected {extra[:3]}")
        if wrong:
            name = wrong[0]
            details.append(
                f"shape of {name} is {tuple(tensors[name].shape)}, model expects "
                f"{tuple(expected[name].shape)}"
            )
        raise CheckpointError(
            "checkpoint weights do not match the model built from its config: " + "; ".join(details)
        )
    module.load_state_dict(tensors)


def checkpoint_dirs() -> list[Path]:
    """Folders searched for pretrained checkpoints: $AUTOFM_CHECKPOINTS first, then the package."""
    dirs = []
    if os.environ.get(ENV_CHECKPOINT_DIR):
        dirs.append(Path(os.environ[ENV_CHECKPOINT_DIR]))
    dirs.append(PACKAGE_CHECKPOINT_DIR)
    return dirs


def list_pretrained() -> list[str]:
    """Names of all pretrained checkpoints found in `checkpoint_dirs()`."""
    names: set[str] = set()
    for folder in checkpoint_dirs():
        if folder.is_dir():
            names.update(
                p.name[: -len(".json")]
                for p in folder.glob("*.json")
                if _with(_stem(p), ".safetensors").exists()
            )
    return sorted(names)


def find_pretrained(name: str) -> Path:
    """Stem path of the pretrained checkpoint `name`; CheckpointError listing the known names,
    or if `name` is shipped and the files found differ from the shipped ones."""
    for folder in checkpoint_dirs():
        stem = folder / name
        if _with(stem, ".json").is_file():
            verify_shipped(name, folder)
            return stem
    known = ", ".join(list_pretrained()) or "none"
    raise CheckpointError(f"no pretrained checkpoint named {name!r}; available: {known}")


def checkpoint_stem(name_or_path: str | os.PathLike) -> Path:
    """The stem of a checkpoint given by path or by pretrained name.

    A path is an existing file, or anything ending in `.json`/`.safetensors` or holding a folder
    separator (loading it then says if it is missing); anything else is a name: a stem in the
    working directory whose `.json` exists, else a pretrained name (`find_pretrained`). A
    shipped name is checked against the shipped files either way (`verify_shipped`).
    """
    stem = _stem(name_or_path)
    text = str(name_or_path)
    looks_like_path = (
        os.sep in text
        or "/" in text
        or Path(text).suffix in (".json", ".safetensors")
        or Path(text).is_file()  # an existing file is a path, not a pretrained name
    )
    if looks_like_path:
        return stem
    if _with(stem, ".json").is_file():
        verify_shipped(text, stem.parent)
        return stem
    return find_pretrained(text)


def checkpoint_identity(name_or_path: str | os.PathLike) -> str:
    """One spelling for every way of naming a checkpoint (a shipped name, a stem, its .json or
    .safetensors, relative or absolute): its stem's absolute path; the spec as given when it
    names no checkpoint (loading it says why)."""
    try:
        stem = checkpoint_stem(name_or_path)
    except (AutofmError, OSError):
        return str(name_or_path)
    return str(stem.resolve()) if _with(stem, ".json").is_file() else str(name_or_path)


def load_pretrained(name: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load the shipped (or $AUTOFM_CHECKPOINTS) checkpoint `name`: `(tensors, meta)`."""
    return load_checkpoint(find_pretrained(name))
