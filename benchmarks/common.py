"""The tiny runner every benchmark shares: seeds, timing, data lookup, JSON + markdown output."""

from __future__ import annotations

import contextlib
import datetime as dt
import platform
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from autofm.core.io import atomic_write_json, atomic_write_text
from autofm.data.paths import shared_data_dir

RESULTS_DIR = Path(__file__).resolve().parent / "results"
# resume caches (anchor numbers, finished runs): machine-specific, so under the git-ignored runs/
CACHE_DIR = Path(__file__).resolve().parent.parent / "runs" / "benchmarks"


class Timer:
    """Accumulates wall-clock seconds per label; use `with timer("fit"): ...`."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, label: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - started


def require_data(subfolder: str) -> Path:
    """../shared/data/<subfolder>, or exit with a clear message saying the data is missing."""
    root = shared_data_dir(required=False)
    path = root / subfolder if root else None
    if path is None or not path.exists():
        sys.exit(
            f"benchmark data {subfolder!r} not found (looked under {root or '../shared/data'}); "
            "set AUTOFM_DATA to the folder holding it"
        )
    return path


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value), ignoring NaN."""
    array = np.asarray(values, dtype=float)
    array = array[~np.isnan(array)]
    if array.size == 0:
        return float("nan"), float("nan")
    return float(array.mean()), float(array.std(ddof=1)) if array.size > 1 else 0.0


def markdown_table(
    rows: list[dict[str, Any]], columns: Sequence[str] | None = None, digits: int = 3
) -> str:
    """A GitHub markdown table from row dicts (floats rounded to `digits`)."""
    if not rows:
        return ""
    columns = list(columns or rows[0].keys())

    def cell(value: Any) -> str:
        if isinstance(value, float | np.floating):
            return "nan" if np.isnan(value) else f"{value:.{digits}f}"
        return str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def environment() -> dict[str, Any]:
    """Machine and versions, recorded with every result."""
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "machine": platform.machine(),
        "host": platform.node(),
        "cpu_threads": torch.get_num_threads(),
    }


def read_cache(name: str, settings: dict[str, Any]) -> Any | None:
    """The results cached under `name` for these `settings` (else None), saying on stderr that
    they are reused and from which date and machine: cached numbers are not re-measured."""
    import json

    path = CACHE_DIR / f"{name}.json"
    if not path.is_file():
        return None
    cached = json.loads(path.read_text())
    if cached.get("settings") != settings:
        print(f"cache {path} was written with other settings; not reused", file=sys.stderr)
        return None
    made = cached.get("environment", {})
    print(
        f"reusing cached {name} from {path}: measured {made.get('date', '?')} on "
        f"{made.get('host', '?')} ({made.get('machine', '?')}, torch {made.get('torch', '?')}); "
        "delete the file to re-measure",
        file=sys.stderr,
    )
    return cached["results"]


def write_cache(name: str, settings: dict[str, Any], results: Any) -> Path:
    """Cache `results` under `name` with their settings and the machine that measured them."""
    payload = {"settings": settings, "environment": environment(), "results": results}
    return atomic_write_json(CACHE_DIR / f"{name}.json", payload)


def read_runs(path: Path) -> list[dict[str, Any]]:
    """The records of a runs file written by `append_run` (none when it does not exist)."""
    import json

    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def append_run(path: Path, record: dict[str, Any]) -> None:
    """Append one result as a JSON line to a resumable runs file (creating its folder)."""
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        handle.write(json.dumps(record) + "\n")


def timed_fit_predict(
    model, X_train, y_train, X_test, predict: str = "predict"
) -> tuple[Any, dict]:
    """Fit `model`, then call its `predict` method on X_test (warnings silenced): (output,
    {fit_cpu, predict_cpu, fit_wall, predict_wall} in seconds, CPU from `time.process_time`)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wall, cpu = time.perf_counter(), time.process_time()
        model.fit(X_train, y_train)
        fit_wall, fit_cpu = time.perf_counter() - wall, time.process_time() - cpu
        wall, cpu = time.perf_counter(), time.process_time()
        output = getattr(model, predict)(X_test)
        predict_wall, predict_cpu = time.perf_counter() - wall, time.process_time() - cpu
    seconds = {
        "fit_cpu": fit_cpu,
        "predict_cpu": predict_cpu,
        "fit_wall": fit_wall,
        "predict_wall": predict_wall,
    }
    return output, seconds


def save_results(system: str, results: dict[str, Any], markdown: str, seeds: Sequence[int]) -> Path:
    """Write benchmarks/results/<system>.json and <system>.md; return the JSON path."""
    payload = {"system": system, "seeds": list(seeds), "environment": environment(), **results}
    json_path = atomic_write_json(RESULTS_DIR / f"{system}.json", payload)
    atomic_write_text(RESULTS_DIR / f"{system}.md", markdown)
    print(markdown)
    print(f"seeds: {list(seeds)}; results written to {json_path}", file=sys.stderr)
    return json_path
