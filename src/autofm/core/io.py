"""Atomic writes: outputs appear under their final name complete, or not at all."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes the file private (0600): give it what a plain open() would (0666 & ~umask)
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


OUTPUT_KINDS = ("file", "folder", "checkpoint")


def check_writable(path: str | os.PathLike, what: str = "output", kind: str = "file") -> Path:
    """Raise ValidationError unless `path` can be written as a `kind` of output: a "file", a
    "folder", or a "checkpoint" stem (`path.json` + `path.safetensors`). Checked before long
    work, so nothing runs for an output that cannot be kept; creates nothing (missing folders
    are made when the output is written)."""
    from autofm.core.errors import ValidationError

    if kind not in OUTPUT_KINDS:
        raise ValueError(f"kind must be one of {OUTPUT_KINDS}, got {kind!r}")
    path = Path(path)

    def refuse(why: str, fix: str) -> NoReturn:
        raise ValidationError(f"cannot write the {what} {path}: {why}; {fix}")

    if kind == "file" and path.is_dir():
        refuse("it is a folder", "give a file path")
    if kind == "folder" and path.exists() and not path.is_dir():
        refuse("it is a file, not a folder", "give a folder path")
    if kind == "checkpoint":
        name = path.name
        if path.suffix in (".json", ".safetensors"):
            name = path.stem
        for suffix in (".json", ".safetensors"):
            half = path.parent / f"{name}{suffix}"
            if half.is_dir():
                refuse(f"{half} is a folder", "choose another name")
    existing = path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        refuse(f"{existing} is a file, not a folder", "choose a path in a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        refuse(f"the folder {existing} is not writable", "choose a writable folder")
    return path


def read_json(path: str | os.PathLike, what: str = "file", keys: tuple[str, ...] = ()) -> Any:
    """The JSON value in `path`; with `keys`, a JSON object that holds them. A missing file
    raises DataNotFoundError, anything else that is not that ValidationError, naming `what`."""
    from autofm.core.errors import DataNotFoundError, ValidationError

    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"{what} {path} not found")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValidationError(f"cannot read the {what} {path} as JSON ({err})") from err
    if keys:
        missing = [key for key in keys if not isinstance(value, dict) or key not in value]
        if missing:
            raise ValidationError(f"the {what} {path} has no {', '.join(missing)} entry")
    return value


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically and return the path."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write `obj` as indented JSON to `path` atomically and return the path."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default))


def _json_default(obj: Any) -> Any:
    # numpy scalars and arrays, paths: the common non-JSON types in results
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serialisable")
