"""Running the model on prepared contexts: equal-length batches, time features, forward passes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from autofm.core.progress import progress
from autofm.core.runtime import resolve_device
from autofm.data.timeseries import window_dates
from autofm.forecast.features import time_features
from autofm.forecast.model import Mamba4Cast

CPU_BATCH_TOKENS = 4096  # positions (series × (context + h)) per forward pass on CPU
GPU_BATCH_SIZE = 256  # series per forward pass on an accelerator


def forecast_contexts(
    model: Mamba4Cast,
    contexts: list[np.ndarray],
    h: int,
    dates: list[pd.DatetimeIndex | None] | None,
    seasons: np.ndarray,
    *,
    batch_size: int | None = None,
    device: str = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """The model's point forecasts [B, h] and quantiles [B, h, Q] for prepared contexts.

    `contexts` are 1-D arrays (leading NaNs dropped, at most the context window), `dates[i]`
    ends with context i's dates and its h future ones (None: position-only features), `seasons`
    [B] the season lengths. `model` is moved to `device` and put in eval mode. A batch holds
    `batch_size` series of one length (None: about CPU_BATCH_TOKENS positions on CPU,
    GPU_BATCH_SIZE series elsewhere).
    """
    point = np.empty((len(contexts), h))
    quantiles = np.empty((len(contexts), h, len(model.config.quantiles)))
    model = model.to(resolve_device(device)).eval()
    on = next(model.parameters()).device
    size = batch_size or (None if on.type == "cpu" else GPU_BATCH_SIZE)
    batches = equal_length_batches(
        [len(y) for y in contexts], size, tokens=CPU_BATCH_TOKENS, extra=h
    )
    # series sharing a date index (the same end) share features; batches come grouped by
    # length, so the cache holds one length at a time, and keeps each index (ids stay unique)
    feature_cache, n_context = {}, 0  # id(date index) -> (index, features)

    def features_of(series_dates) -> np.ndarray:
        if id(series_dates) not in feature_cache:
            window = None if series_dates is None else window_dates(series_dates, n_context, h)
            features = time_features(window, n_context + h, n_context)
            feature_cache[id(series_dates)] = series_dates, features
        return feature_cache[id(series_dates)][1]

    for batch in progress(batches, desc="forecast", disable=len(batches) < 3 or None):
        y_context = np.stack([contexts[i] for i in batch])
        if y_context.shape[1] != n_context:
            feature_cache.clear()
            n_context = y_context.shape[1]
        features = [features_of(None if dates is None else dates[i]) for i in batch]
        x = torch.from_numpy(np.stack(features)).to(on)
        with torch.inference_mode():
            batch_point, batch_quantiles = model.predict(
                x[:, :n_context],
                torch.from_numpy(y_context).float().to(on),
                x[:, n_context:],
                torch.from_numpy(seasons[batch]).to(on),
            )
        point[batch] = batch_point.double().cpu().numpy()
        quantiles[batch] = batch_quantiles.double().cpu().numpy()
    return point, quantiles


def equal_length_batches(
    lengths: list[int], size: int | None = None, *, tokens: int = CPU_BATCH_TOKENS, extra: int = 0
) -> list[np.ndarray]:
    """Indices grouped into batches of series of the same length, shortest first.

    A batch never pads, so a series' forecast does not depend on which other series are
    forecast with it (left padding is learned, not exact). Series longer than the context
    window are cut to it first, so most long series share one length. A batch holds at most `size` series, or, without a size, about `tokens` positions
    (a series counts its length plus `extra`, the horizon).
    """
    lengths = np.asarray(lengths)
    batches = []
    for length in np.unique(lengths):
        members = np.flatnonzero(lengths == length)
        step = size or max(1, tokens // (int(length) + extra))
        batches.extend(members[i : i + step] for i in range(0, len(members), step))
    return batches
