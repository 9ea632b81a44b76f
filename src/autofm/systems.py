"""The systems autofm hosts and how the CLI and the tour find them.

A system is a subpackage `autofm.<name>` that provides `cli.py` with `register(subparsers,
common)` (adds its command group) and `tour.py` with `step(workdir: Path, seed: int) ->
autofm.core.tour.TourStep`. Systems are found on disk, so nothing else needs editing when one
lands; `autofm.core`, `autofm.data`, `autofm.pfn` (shared layers) and `autofm.checkpoints` are
not systems.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

import autofm

SHARED_PACKAGES = ("core", "data", "pfn", "checkpoints")


def systems() -> list[str]:
    """Names of the system subpackages, alphabetically."""
    return sorted(
        info.name
        for info in pkgutil.iter_modules(autofm.__path__)
        if info.ispkg and info.name not in SHARED_PACKAGES
    )


def system_module(system: str, part: str) -> ModuleType | None:
    """`autofm.<system>.<part>` if that module exists, else None."""
    name = f"autofm.{system}.{part}"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name in (f"autofm.{system}", name):
            return None
        raise


def available_systems(part: str) -> list[tuple[str, ModuleType]]:
    """(system, module) for every system that provides `part` ('cli' or 'tour')."""
    found = []
    for system in systems():
        module = system_module(system, part)
        if module is not None:
            found.append((system, module))
    return found
