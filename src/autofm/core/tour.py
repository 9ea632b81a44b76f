"""What one system's step of `autofm tour` returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autofm.core.report import Report


@dataclass
class TourStep:
    """A one-line summary, numbers, and a report section of one system's tour step."""

    system: str
    summary: str
    metrics: dict[str, Any] = field(default_factory=dict)
    report: Report | None = None
