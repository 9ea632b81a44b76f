"""Would a smaller Mamba4Cast reach the speed targets (issue #21: ≥ 10× AutoETS on every set,
≥ 30× on monthly)? Whole-dataset forecast seconds of the shipped architecture and of smaller
ones (randomly initialised: the same operations and shapes as trained weights of that size, so
the time is theirs; their forecasts mean nothing) beside AutoETS, one thread each, same process.

This measures speed only: a smaller model would still have to be trained and keep the
benchmark's MASE within 0.5% to be shipped.

    python -m benchmarks.forecast_model_size
"""

from __future__ import annotations

import copy
import functools

import torch

from autofm.core.runtime import setup_torch
from autofm.forecast import Mamba4CastForecaster
from autofm.forecast.model import Mamba4Cast, Mamba4CastConfig
from benchmarks.common import markdown_table, save_results
from benchmarks.forecast import load_subset, run_anchor, warm_up_numba
from benchmarks.speed import median_seconds

DATASETS = ("m3_yearly", "m3_monthly")
SIZES = {
    "shipped (d 128, 3 layers)": {},
    "d 64, 3 layers": dict(d_model=64),
    "d 64, 2 layers": dict(d_model=64, n_layers=2),
    "d 32, 2 layers, state 16, heads of 16": dict(d_model=32, n_layers=2, d_state=16, headdim=16),
}


def main() -> None:
    setup_torch(1)
    shipped = Mamba4CastForecaster.from_pretrained("mamba4cast-cpu")
    forecasters = {}
    for name, changes in SIZES.items():
        forecaster = copy.copy(shipped)
        if changes:
            torch.manual_seed(0)
            config = Mamba4CastConfig.from_dict({**shipped.model.config.to_dict(), **changes})
            forecaster.model = Mamba4Cast(config).eval()
        forecasters[name] = forecaster
    warm_up_numba()
    rows = []
    for dataset in DATASETS:
        context, _, meta = load_subset(dataset, 10**9)
        h, freq = int(meta["horizon"]), meta["freq"]
        _, ets = run_anchor("AutoETS", context, h, meta)
        for name, forecaster in forecasters.items():
            seconds = median_seconds(
                functools.partial(forecaster.predict, context, h, freq=freq), 3
            )
            rows.append(
                {
                    "dataset": dataset,
                    "model": name,
                    "parameters": sum(p.numel() for p in forecaster.model.parameters()),
                    "seconds": seconds,
                    "autoets_seconds": ets,
                    "ratio": ets / seconds,
                }
            )
    text = (
        "# Forecast speed by model size (issue #21)\n\n"
        "Whole datasets, one thread each, same process; smaller models randomly initialised "
        "(speed only). ratio = AutoETS seconds / ours.\n\n" + markdown_table(rows) + "\n"
    )
    save_results("forecast.model_size", {"rows": rows}, text, seeds=[0])


if __name__ == "__main__":
    main()
