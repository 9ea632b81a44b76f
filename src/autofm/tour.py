"""`autofm tour`: every implemented system end to end at small scale, one HTML report."""

from __future__ import annotations

import time
import traceback
from pathlib import Path

from autofm.core.io import atomic_write_json
from autofm.core.progress import status
from autofm.core.report import Report
from autofm.core.tour import TourStep
from autofm.systems import available_systems
from autofm.tour_data import data_step


def run_tour(out: str | Path = "runs/tour", seed: int = 0, only: list[str] | None = None) -> dict:
    """Run the data step and each system's tour step; write report.html and summary.json."""
    steps = [("data", data_step)] + [
        (name, module.step) for name, module in available_systems("tour")
    ]
    if only:
        unknown = sorted(set(only) - {name for name, _ in steps})
        if unknown:
            from autofm.core.errors import ValidationError

            known = ", ".join(name for name, _ in steps)
            raise ValidationError(f"unknown tour step(s) {unknown}; available: {known}")
        steps = [(name, fn) for name, fn in steps if name in only]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report = Report("autofm tour")
    report.text(
        "Each section runs one system end to end at small scale on data every machine has. "
        "Numbers here are smoke-scale; the benchmarks hold the measured results."
    )
    results: dict[str, dict] = {}
    for name, run_step in steps:
        status(f"tour: {name} …")
        started = time.perf_counter()
        workdir = out / name
        workdir.mkdir(parents=True, exist_ok=True)
        try:
            result: TourStep = run_step(workdir, seed)
        except Exception as err:  # a failing step is reported, the others still run
            seconds = time.perf_counter() - started
            results[name] = {"ok": False, "summary": f"FAILED: {err}", "seconds": seconds}
            report.heading(f"{name}: failed").code(traceback.format_exc())
            continue
        seconds = time.perf_counter() - started
        results[name] = {
            "ok": True,
            "summary": result.summary,
            "seconds": seconds,
            **result.metrics,
        }
        if result.report is not None:
            report.extend(result.report)
        else:
            report.heading(name).text(result.summary)
    report.heading("Summary").table(
        [
            {"step": n, "ok": r["ok"], "seconds": r["seconds"], "summary": r["summary"]}
            for n, r in results.items()
        ]
    )
    report_path = report.save(out / "report.html")
    atomic_write_json(out / "summary.json", results)
    return {"report": str(report_path), "steps": results}
