"""Where benchmark data is looked for: $AUTOFM_DATA, else ../shared/data beside the project."""

from __future__ import annotations

import os
from pathlib import Path

from autofm.core.errors import DataNotFoundError

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def shared_data_candidates() -> list[Path]:
    """Folders searched, in order."""
    candidates = []
    if os.environ.get("AUTOFM_DATA"):
        candidates.append(Path(os.environ["AUTOFM_DATA"]))
    candidates += [Path.cwd().parent / "shared" / "data", PROJECT_ROOT.parent / "shared" / "data"]
    return candidates


def shared_data_dir(required: bool = True) -> Path | None:
    """The first existing benchmark-data folder; DataNotFoundError (or None) when there is none."""
    for candidate in shared_data_candidates():
        if candidate.is_dir():
            return candidate
    if required:
        looked = ", ".join(map(str, shared_data_candidates()))
        raise DataNotFoundError(
            f"benchmark data not found (looked in {looked}); set AUTOFM_DATA to the folder holding "
            "timeseries/, tabular/, fairness/ and text/"
        )
    return None
