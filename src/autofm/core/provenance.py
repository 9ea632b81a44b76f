"""Provenance every checkpoint records: the command, git commit, versions and time, with paths
made machine-independent (a checkpoint must not carry this machine's folders)."""

from __future__ import annotations

import datetime as _dt
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from autofm import __version__


def git_commit() -> str | None:
    """The current git commit of the working directory, or None outside a repository."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def portable(text: str) -> str:
    """`text` with absolute paths made machine-independent: relative to the working directory
    when under it, else the last path component (a checkpoint must not carry this machine's
    folders)."""
    cwd = os.getcwd().rstrip("/") + "/"

    def shorten(match: re.Match) -> str:
        path = match.group(0)
        return path[len(cwd) :] if path.startswith(cwd) else Path(path).name

    return _ABSOLUTE_PATH.sub(shorten, text)


# an absolute POSIX path: "/" then at least one component, not inside a word or a URL
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~-])/(?:[\w.+@-]+/)*[\w.+@-]+")


def portable_values(value: Any) -> Any:
    """`value` (JSON) with `portable` applied to every string in it."""
    if isinstance(value, str):
        return portable(value)
    if isinstance(value, list | tuple):
        return [portable_values(item) for item in value]
    if isinstance(value, dict):
        return {key: portable_values(item) for key, item in value.items()}
    return value


def default_provenance(**extra: Any) -> dict[str, Any]:
    """Provenance every checkpoint records: command, commit, versions, time; plus `extra`.

    Paths are made portable (`portable`): the command is `autofm ...` or `python -m ...`, never
    this machine's folders."""
    command = [Path(sys.argv[0]).name, *sys.argv[1:]] if sys.argv else []
    return portable_values(
        {
            "command": " ".join(command),
            "git_commit": git_commit(),
            "autofm_version": __version__,
            "torch_version": torch.__version__,
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            **extra,
        }
    )
