"""Running the model on prepared contexts: length-sorted batches, time features, forward passes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from autofm.core.progress import progress
from autofm.core.runtime import resolve_device
from autofm.data.timeseries import window_dates
from autofm.forecast.features import N_TIME_FEATURES, time_features
from autofm.forecast.model import Mamba4Cast

CPU_BATCH_TOKENS = 1024  # positions (series × (longest context + h)) per forward pass on CPU
GPU_BATCH_SIZE = 256  # series per forward pass on an accelerator
MAX_PADDING = 0.125  # the largest share of a batch's positions that may be (masked) padding


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
    [B] the season lengths. `model` is moved to `device` and put in eval mode. Batches come
    from `length_batches` (`batch_size` series, or None: about CPU_BATCH_TOKENS positions on
    CPU, GPU_BATCH_SIZE series elsewhere); shorter contexts in a batch are left-padded and
    masked out exactly, so a forecast does not depend on the other series.
    """
    point = np.empty((len(contexts), h))
    quantiles = np.empty((len(contexts), h, len(model.config.quantiles)))
    model = model.to(resolve_device(device)).eval()
    on, dtype = next(model.parameters()).device, next(model.parameters()).dtype
    size = batch_size or (None if on.type == "cpu" else GPU_BATCH_SIZE)
    lengths = np.array([len(y) for y in contexts])
    features = series_features(lengths, h, dates)
    batches = length_batches(lengths, size, tokens=CPU_BATCH_TOKENS, extra=h)
    for batch in progress(batches, desc="forecast", disable=len(batches) < 3 or None):
        width = int(lengths[batch].max())
        start = width - lengths[batch]
        y_context = np.full((len(batch), width), np.nan)
        x = np.zeros((len(batch), width + h, N_TIME_FEATURES), dtype=np.float32)
        for row, i in enumerate(batch):
            y_context[row, start[row] :] = contexts[i]
            x[row, start[row] :] = features[i]
        x = torch.from_numpy(x).to(on, dtype)
        with torch.inference_mode():
            batch_point, batch_quantiles = model.predict(
                x[:, :width],
                torch.from_numpy(y_context).to(on, dtype),
                x[:, width:],
                torch.from_numpy(seasons[batch]).to(on),
                torch.from_numpy(start).to(on) if start.any() else None,
            )
        point[batch] = batch_point.double().cpu().numpy()
        quantiles[batch] = batch_quantiles.double().cpu().numpy()
    return point, quantiles


def series_features(
    lengths: np.ndarray, h: int, dates: list[pd.DatetimeIndex | None] | None
) -> list[np.ndarray]:
    """Time features [length + h, N_TIME_FEATURES] of each context and its horizon.

    Series sharing a date index object (the same end, `series_calendar`) share one feature
    array, computed once for the longest of them: features count steps from the last context
    point, so a shorter series' features are that array's last rows, the same values.
    """
    indexes = [None] * len(lengths) if dates is None else dates
    longest: dict[int, tuple[pd.DatetimeIndex | None, int]] = {}  # id(index) -> (index, length)
    for index, length in zip(indexes, lengths, strict=True):
        known = longest.get(id(index), (index, 0))[1]
        longest[id(index)] = index, max(known, int(length))
    shared = {
        key: time_features(
            None if index is None else window_dates(index, length, h), length + h, length
        )
        for key, (index, length) in longest.items()
    }
    return [
        shared[id(index)][-(length + h) :] for index, length in zip(indexes, lengths, strict=True)
    ]


def length_batches(
    lengths,
    size: int | None = None,
    *,
    tokens: int = CPU_BATCH_TOKENS,
    extra: int = 0,
    max_padding: float = MAX_PADDING,
) -> list[np.ndarray]:
    """Indices grouped into batches of series of similar length, shortest first.

    A batch is as long as its longest series plus `extra` (the horizon); the others are
    left-padded, at most a `max_padding` share of the batch's positions, and the model masks
    the padding out exactly. A batch holds at most `size` series, or, without a size, about
    `tokens` positions (always at least one series).
    """
    lengths = np.asarray(lengths)
    batches, members, filled = [], [], 0  # filled: the members' own positions
    for i in np.argsort(lengths, kind="stable"):
        width = int(lengths[i]) + extra  # sorted: the longest so far
        count = len(members) + 1
        room = count <= size if size else count * width <= tokens
        if members and not (room and filled + width >= (1 - max_padding) * count * width):
            batches.append(np.array(members))
            members, filled = [], 0
        members.append(i)
        filled += width
    if members:
        batches.append(np.array(members))
    return batches
