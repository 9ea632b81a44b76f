"""The foundation's tour step: the data every fresh machine has, and a checkpoint round trip."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from autofm.core.checkpoint import load_checkpoint, save_checkpoint
from autofm.core.report import Report
from autofm.core.tour import TourStep
from autofm.data.tables import load_sklearn
from autofm.data.text import stdlib_corpus
from autofm.data.timeseries import infer_freq, season_length, statsmodels_series


def data_step(workdir: Path, seed: int) -> TourStep:
    """Load the bundled table, series and corpus; save and reload a checkpoint."""
    X, y = load_sklearn("breast_cancer")
    series = statsmodels_series()
    corpus = stdlib_corpus(200_000)
    weights = {"w": torch.randn(4, 4, generator=torch.Generator().manual_seed(seed))}
    stem = save_checkpoint(workdir / "roundtrip", weights, kind="tour", model={})
    loaded, _ = load_checkpoint(stem)
    roundtrip_ok = bool(torch.equal(loaded["w"], weights["w"]))

    report = Report("data")
    rows = []
    fig, axes = plt.subplots(1, series["unique_id"].nunique(), figsize=(14, 2.6))
    for axis, (uid, group) in zip(np.atleast_1d(axes), series.groupby("unique_id")):
        freq = infer_freq(group)
        rows.append(
            {"series": uid, "points": len(group), "freq": freq, "season": season_length(freq)}
        )
        axis.plot(group["ds"], group["y"], lw=0.8)
        axis.set_title(uid)
    report.text(
        f"breast_cancer table: {X.shape[0]} rows × {X.shape[1]} features, {y.nunique()} classes"
    )
    report.table(rows)
    report.figure(fig, "statsmodels' bundled series, as the forecasting step sees them")
    report.text(
        f"standard-library corpus: {len(corpus):,} bytes; checkpoint round trip ok: {roundtrip_ok}"
    )
    summary = (
        f"table {X.shape[0]}×{X.shape[1]}, {len(rows)} series, corpus {len(corpus) // 1000} kB, "
        f"checkpoint round trip {'ok' if roundtrip_ok else 'FAILED'}"
    )
    if not roundtrip_ok:
        raise RuntimeError("checkpoint round trip changed the weights")
    return TourStep("data", summary, {"n_series": len(rows), "corpus_bytes": len(corpus)}, report)
