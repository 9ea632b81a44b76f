"""Progress bars: tqdm on stderr, quiet when stderr is not a terminal or when asked."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")
_quiet = False


def set_quiet(quiet: bool) -> None:
    """Silence (or re-enable) every progress bar and status message in this process."""
    global _quiet
    _quiet = quiet


def is_quiet() -> bool:
    """True when progress output should be suppressed."""
    return _quiet or not sys.stderr.isatty()


def progress(iterable: Iterable[T] | None = None, **kwargs: Any) -> tqdm:
    """A tqdm bar on stderr, disabled when quiet; takes tqdm's arguments (total, desc, ...)."""
    kwargs.setdefault("disable", is_quiet())
    kwargs.setdefault("file", sys.stderr)
    kwargs.setdefault("dynamic_ncols", True)
    kwargs.setdefault("leave", False)
    return tqdm(iterable, **kwargs)


def status(message: str) -> None:
    """A one-line human message on stderr (never stdout, which `--json` reserves)."""
    if not _quiet:
        print(message, file=sys.stderr, flush=True)
