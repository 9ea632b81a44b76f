"""What one trial computes: a configuration's error and fairness objectives, on validation folds
and on the held-out test split."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from autofm.fairness.data import FairData
from autofm.fairness.metrics import confusion_counts, group_rates, objectives_from_counts
from autofm.fairness.spaces import build_pipeline, suggest_params

if TYPE_CHECKING:
    import optuna


def evaluate(
    model: str, params: dict[str, Any], data: FairData, random_state: int, max_epochs: int = 200
) -> dict[str, dict[str, float]]:
    """Fit one model per fold; validation and test objectives and test rates, mean over folds."""
    val, test, rates = [], [], []
    for k, (train, valid) in enumerate(data.folds):
        pipeline = build_pipeline(
            model, params, data.X, random_state + k, data.n_features, max_epochs
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            pipeline.fit(data.X.iloc[train], data.y[train])
        predicted = pipeline.predict(data.X.iloc[valid])
        val.append(
            objectives_from_counts(confusion_counts(data.y[valid], predicted, data.group[valid]))
        )
        counts = confusion_counts(data.y_test, pipeline.predict(data.X_test), data.group_test)
        test.append(objectives_from_counts(counts))
        rates.append(group_rates(counts))

    def mean(dicts: list[dict[str, float]]) -> dict[str, float]:
        return {key: float(np.mean([d[key] for d in dicts])) for key in dicts[0]}

    return {"val": mean(val), "test": mean(test), "rates": mean(rates)}


@dataclass(frozen=True)
class TrialObjective:
    """Optuna's objective for one study: sample a configuration of `model`, evaluate it, store
    every result on the trial, and return the validation values of `objectives`."""

    model: str
    objectives: list[str]
    data: FairData
    random_state: int
    max_epochs: int = 200

    def __call__(self, trial: optuna.Trial) -> tuple[float, ...]:
        started = time.perf_counter()
        params = suggest_params(self.model, trial)
        result = evaluate(
            self.model, params, self.data, self.random_state + trial.number, self.max_epochs
        )
        # one attribute, one database write
        trial.set_user_attr("result", {**result, "seconds": time.perf_counter() - started})
        return tuple(result["val"][o] for o in self.objectives)
