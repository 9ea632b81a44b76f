"""What one trial computes: a configuration's error and fairness objectives, on validation folds
and on the held-out test split.

The folds of a trial are fitted in parallel worker processes (joblib's loky backend: scikit-learn
pipelines spend much of their time holding the GIL, so threads would not scale). Each fold is
fitted with one BLAS/OpenMP thread wherever it runs, so a trial's values do not depend on how
many folds run at once. By default (`n_jobs=None`) a trial uses $AUTOFM_THREADS processes, else
this host's usable cores divided among the live processes on this host that have run trials of
the same study, counted at the start of each trial: one worker on a 2-core machine fits two
folds at once, two workers fit one each, and nobody oversubscribes the cores.
"""

from __future__ import annotations

import os
import socket
import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import joblib
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.parallel import Parallel, delayed
from threadpoolctl import threadpool_limits

from autofm.core.errors import ValidationError
from autofm.core.study import WORKER, _has_exited
from autofm.fairness.data import FairData
from autofm.fairness.metrics import confusion_counts, group_rates, objectives_from_counts
from autofm.fairness.spaces import build_pipeline, suggest_params

if TYPE_CHECKING:
    import optuna


def check_jobs(n_jobs: Any, name: str = "n_jobs") -> int | None:
    """`n_jobs` is None or a positive integer."""
    if n_jobs is None:
        return None
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int | np.integer) or n_jobs < 1:
        raise ValidationError(f"{name} must be a positive integer or None, got {n_jobs!r}")
    return int(n_jobs)


def local_workers(study: optuna.Study) -> int:
    """How many processes on this host that have run a trial of `study` are still running (at
    least 1: the caller). Live processes rather than running trials, since a worker between two
    short trials has none running."""
    host = socket.gethostname()
    processes = set()
    for trial in study.get_trials(deepcopy=False):
        worker = trial.user_attrs.get(WORKER)
        if isinstance(worker, dict) and worker.get("host") == host and not _has_exited(worker):
            processes.add((worker.get("pid"), worker.get("started")))
    return max(1, len(processes))


def default_jobs(study: optuna.Study | None = None) -> int:
    """Processes for one trial's folds: $AUTOFM_THREADS, else this host's usable cores (CPU
    affinity and cgroup quota included) divided among the workers of `study` on this host."""
    setting = os.environ.get("AUTOFM_THREADS", "").strip()
    if setting:
        if not setting.isdigit() or int(setting) < 1:
            raise ValidationError(
                f"AUTOFM_THREADS must be a positive integer, got {setting!r}; fix or unset it"
            )
        return int(setting)
    workers = local_workers(study) if study is not None else 1
    return max(1, joblib.cpu_count() // workers)


def release_fold_workers() -> None:
    """Stop the idle processes that fitted folds. joblib keeps them 300 s for reuse, and a
    process started by `multiprocessing` waits for its children before it exits."""
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor(reuse=True).shutdown(wait=True)


def _fit_fold(
    model: str,
    params: dict[str, Any],
    data: FairData,
    fold: int,
    random_state: int,
    max_epochs: int,
) -> tuple[dict[str, float], np.ndarray]:
    """Fit fold `fold`'s model; its validation objectives and its confusion counts on test."""
    train, valid = data.folds[fold]
    pipeline = build_pipeline(
        model, params, data.X, random_state + fold, data.n_features, max_epochs
    )
    # one thread per fold: results then do not depend on how many folds run at once
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipeline.fit(data.X.iloc[train], data.y[train])
        predicted = pipeline.predict(data.X.iloc[valid])
        predicted_test = pipeline.predict(data.X_test)
    val = objectives_from_counts(confusion_counts(data.y[valid], predicted, data.group[valid]))
    return val, confusion_counts(data.y_test, predicted_test, data.group_test)


def evaluate(
    model: str,
    params: dict[str, Any],
    data: FairData,
    random_state: int,
    max_epochs: int = 200,
    n_jobs: int = 1,
) -> dict[str, dict[str, float]]:
    """Fit one model per fold, up to `n_jobs` folds at once in separate processes; validation
    and test objectives and test rates, mean over folds (the same for every `n_jobs`)."""
    n_jobs = min(check_jobs(n_jobs) or 1, len(data.folds))
    folds = Parallel(n_jobs=n_jobs)(
        delayed(_fit_fold)(model, params, data, fold, random_state, max_epochs)
        for fold in range(len(data.folds))
    )
    val = [fold_val for fold_val, _ in folds]
    test = [objectives_from_counts(counts) for _, counts in folds]
    rates = [group_rates(counts) for _, counts in folds]

    def mean(dicts: list[dict[str, float]]) -> dict[str, float]:
        return {key: float(np.mean([d[key] for d in dicts])) for key in dicts[0]}

    return {"val": mean(val), "test": mean(test), "rates": mean(rates)}


@dataclass(frozen=True)
class TrialObjective:
    """Optuna's objective for one study: sample a configuration of `model`, evaluate it, store
    every result on the trial, and return the validation values of `objectives`. `n_jobs`
    processes fit the folds (None: `default_jobs`, decided at the start of each trial)."""

    model: str
    objectives: list[str]
    data: FairData
    random_state: int
    max_epochs: int = 200
    n_jobs: int | None = None

    def __call__(self, trial: optuna.Trial) -> tuple[float, ...]:
        started = time.perf_counter()
        params = suggest_params(self.model, trial)
        result = evaluate(
            self.model,
            params,
            self.data,
            self.random_state + trial.number,
            self.max_epochs,
            self.n_jobs or default_jobs(trial.study),
        )
        # one attribute, one database write
        trial.set_user_attr("result", {**result, "seconds": time.perf_counter() - started})
        return tuple(result["val"][o] for o in self.objectives)
