"""The systems autofm hosts and how the CLI and the tour find them.

A system plugs in by providing, in its subpackage, `cli.py` with `register(subparsers, common)`
(adds its command group) and `tour.py` with `step(workdir: Path, seed: int) -> TourStep`.
Nothing else needs editing when a system lands.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from autofm.core.report import Report

SYSTEMS = ("icl", "gam", "forecast", "ensemble", "fairness", "lm", "compress", "finetune", "fe")


@dataclass
class TourStep:
    """What one system's tour step returns: a one-line summary, numbers, a report section."""

    system: str
    summary: str
    metrics: dict[str, Any] = field(default_factory=dict)
    report: Report | None = None


def system_module(system: str, part: str) -> ModuleType | None:
    """`autofm.<system>.<part>` if that module exists, else None (a missing system is skipped)."""
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
    for system in SYSTEMS:
        module = system_module(system, part)
        if module is not None:
            found.append((system, module))
    return found
