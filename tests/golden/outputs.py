"""Outputs of every shipped model (and the ensemblers) on fixed inputs, for the before/after check.

`compute()` is what `test_golden_outputs.py` recomputes and compares with `outputs.json`, which
`python -m tests.golden.outputs` writes. Refactors must leave these numbers unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

GOLDEN_FILE = Path(__file__).with_name("outputs.json")


def _pfn_outputs() -> dict[str, list]:
    from autofm.icl import load_pfn

    out = {}
    for prior in ("steps", "sine-line", "gp", "counting"):
        model, _ = load_pfn(prior)
        generator = torch.Generator().manual_seed(0)
        x_context = torch.rand(2, 12, 1, generator=generator)
        x_query = torch.rand(2, 5, 1, generator=generator)
        if model.config.task == "classification":
            y_context = (x_context[..., 0] > 0.5).float()
        else:
            y_context = torch.sin(6 * x_context[..., 0])
        with torch.no_grad():
            logits = model(x_context, y_context, x_query)
        out[f"pfn-{prior}"] = logits[:, :, ::37].reshape(-1).double().tolist()
    return out


def _gam_outputs() -> dict[str, list]:
    from autofm.gam import GAMformerClassifier, GAMformerRegressor

    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        {
            "a": rng.normal(size=160),
            "b": rng.uniform(size=160),
            "c": rng.choice(["x", "y", "z"], size=160),
        }
    )
    logit = np.sin(2 * X["a"]) + 2 * X["b"] - (X["c"] == "y")
    y = (logit + rng.normal(0, 0.5, 160) > 0.5).astype(int)
    classifier = GAMformerClassifier(random_state=0).fit(X, y)
    regressor = GAMformerRegressor(random_state=0).fit(X, logit)
    return {
        "gam-classifier-proba": classifier.predict_proba(X.iloc[:20])[:, 1].tolist(),
        "gam-classifier-shapes": np.concatenate(
            [np.ravel(t) for t in classifier.shape_functions_]
        ).tolist(),
        "gam-regressor-predict": regressor.predict(X.iloc[:20]).tolist(),
    }


def _forecast_outputs() -> dict[str, list]:
    from autofm.forecast import Mamba4CastForecaster

    rng = np.random.default_rng(0)
    frames = []
    for i, (freq, n, season) in enumerate([("MS", 48, 12), ("QS", 30, 4), ("YS", 20, 1)]):
        t = np.arange(n)
        y = 50 + 0.3 * t + 5 * np.sin(2 * np.pi * t / max(season, 2)) + rng.normal(0, 1, n)
        ds = pd.date_range("2001-01-01", periods=n, freq=freq)
        frames.append(pd.DataFrame({"unique_id": f"s{i}", "ds": ds, "y": y}))
    out = {}
    forecaster = Mamba4CastForecaster.from_pretrained("mamba4cast-cpu")
    for combine in ("theta", None):
        forecaster.combine = combine
        result = pd.concat([forecaster.predict(frame, h=6) for frame in frames], ignore_index=True)
        for column in ("Mamba4Cast", "Mamba4Cast-lo-80", "Mamba4Cast-hi-80"):
            out[f"forecast-{combine}-{column}"] = result[column].astype(float).tolist()
    return out


def _ensemble_outputs() -> dict[str, list]:
    from autofm.ensemble import GreedyEnsemble, NeuralEnsembler, Stacking

    rng = np.random.default_rng(0)
    n, m, c = 120, 6, 3
    labels = rng.integers(0, c, n)
    logits = (
        rng.normal(size=(n, m, c))
        + 1.5 * np.eye(c)[labels][:, None, :] * rng.uniform(0.2, 2, m)[None, :, None]
    )
    P = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    greedy = GreedyEnsemble(n_rounds=20).fit(P, labels)
    stacking = Stacking().fit(P, labels)
    neural = NeuralEnsembler(max_epochs=15, patience=5, random_state=0).fit(P, labels)
    return {
        "ensemble-greedy-weights": greedy.weights_.tolist(),
        "ensemble-stacking-proba": stacking.predict_proba(P[:10]).ravel().tolist(),
        "ensemble-neural-weights": neural.weights(P[:10]).ravel().tolist(),
    }


def compute() -> dict[str, list]:
    """Every golden output, keyed by model and output name."""
    torch.set_num_threads(1)
    return {
        **_pfn_outputs(),
        **_gam_outputs(),
        **_forecast_outputs(),
        **_ensemble_outputs(),
    }


if __name__ == "__main__":
    GOLDEN_FILE.write_text(json.dumps(compute(), indent=0) + "\n")
    print(f"wrote {GOLDEN_FILE}")
