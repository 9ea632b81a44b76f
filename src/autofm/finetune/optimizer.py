"""Quick-Tune's grey-box search over a fixed pool of candidate configurations, one epoch at a time.

Each step trains one candidate for one more epoch (DyHPO style): the candidate with the highest
expected improvement at its next epoch, per predicted second when cost-aware. With
`refit=False` (the default, as in "Transfer Learning for Finetuning Large Language Models") the
meta-learned surrogates are used as they are: the new task enters only through its
meta-features and each candidate's own partial learning curve, a dataset-aware portfolio that
stops unpromising runs early. `refit=True` is Quick-Tune proper: every `refit_every`
observations the performance surrogate is refit on the new task's observations (mixed with
meta-train samples) and conditioned on them.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from autofm.core.errors import ValidationError
from autofm.finetune.space import FinetuneConfig, config_features
from autofm.finetune.surrogates import CostSurrogate, PerformanceSurrogate

DEFAULT_INITIAL = {False: 1, True: 3}  # refit → steps before the acquisition takes over


def _one_row(task_meta: pd.DataFrame | pd.Series) -> pd.DataFrame:
    if isinstance(task_meta, pd.Series):
        return task_meta.to_frame().T
    if len(task_meta) != 1:
        raise ValidationError(f"task_meta must describe one task, got {len(task_meta)} rows")
    return task_meta


def expected_improvement(
    mean: np.ndarray, std: np.ndarray, best: np.ndarray, explore_factor: float = 0.0
) -> np.ndarray:
    """EI of scores ~ N(mean, std²) over `best` (maximisation), with margin `explore_factor`."""
    improvement = mean - best - explore_factor
    std = np.maximum(std, 1e-12)
    z = improvement / std
    return improvement * norm.cdf(z) + std * norm.pdf(z)


class QuickTuneOptimizer:
    """Ask which candidate to train for one more epoch; tell what that epoch scored and cost.

    candidates: the pool (config_id = position); task_meta: the new task's raw meta-features
    (a Series or one-row DataFrame with the surrogates' columns); max_epochs: a candidate is
    finished at this many epochs (at most the surrogate's). The first `n_initial` steps start
    candidates at epoch 1 without the acquisition: the best predicted from meta-features alone
    when `refit=False` (default n_initial=1, no random start), random ones when `refit=True`
    (default 3, as in Quick-Tune). `refit_iterations` steps of `fit_extra` per refit.
    """

    def __init__(
        self,
        perf: PerformanceSurrogate,
        cost: CostSurrogate | None,
        candidates: list[FinetuneConfig],
        task_meta: pd.DataFrame | pd.Series,
        max_epochs: int,
        refit: bool = False,
        refit_every: int = 5,
        n_initial: int | None = None,
        seed: int = 0,
        cost_aware: bool = True,
        refit_iterations: int = 50,
        explore_factor: float = 0.0,
    ):
        if not candidates:
            raise ValidationError("the candidate pool is empty; pass at least one configuration")
        if not 1 <= max_epochs <= perf.max_epochs_:
            raise ValidationError(
                f"max_epochs must lie in 1..{perf.max_epochs_} (the surrogate's curve length), "
                f"got {max_epochs}"
            )
        if cost_aware and cost is None:
            raise ValidationError("cost_aware=True needs a cost surrogate; pass one or set False")
        n_initial = DEFAULT_INITIAL[bool(refit)] if n_initial is None else n_initial
        if not 1 <= n_initial <= len(candidates):
            raise ValidationError(f"n_initial must lie in 1..{len(candidates)}, got {n_initial}")
        if refit and refit_every < 1:
            raise ValidationError(f"refit_every must be ≥ 1, got {refit_every}")
        self.perf = copy.deepcopy(perf) if refit else perf  # a refit never changes the caller's
        self.cost = cost
        self.candidates = list(candidates)
        self.task_meta = _one_row(task_meta)
        self.max_epochs = max_epochs
        self.refit = refit
        self.refit_every = refit_every
        self.n_initial = n_initial
        self.seed = seed
        self.cost_aware = cost_aware
        self.refit_iterations = refit_iterations
        self.explore_factor = explore_factor

        self.features_ = config_features(self.candidates)
        n = len(self.candidates)
        self.curves_ = np.full((n, perf.max_epochs_), np.nan)
        self.seconds_ = np.full((n, perf.max_epochs_), np.nan)
        self.epochs_done_ = np.zeros(n, dtype=int)
        self.history_: list[dict[str, Any]] = []
        self.n_refits_ = 0
        self._not_refit: list[tuple[int, int]] = []
        self.predicted_seconds_ = cost.predict(self.features_, self.task_meta) if cost else None
        if refit:
            order = np.random.default_rng(seed).permutation(n)
        else:
            ranking = portfolio(perf, None, self.candidates, self.task_meta, max_epochs=max_epochs)
            order = ranking["config_id"].to_numpy()
        self.initial_design_ = [int(i) for i in order[:n_initial]]

    def ask(self) -> dict[str, Any] | None:
        """The next step `{"config_id", "config", "epoch"}` (epoch = that candidate's epochs so
        far + 1), or None when every candidate has max_epochs epochs."""
        open_ids = np.nonzero(self.epochs_done_ < self.max_epochs)[0]
        if not len(open_ids):
            return None
        fresh = [i for i in self.initial_design_ if self.epochs_done_[i] == 0]
        if len(self.history_) < self.n_initial and fresh:
            chosen = fresh[0]
        else:
            chosen = int(open_ids[np.argmax(self._acquisition(open_ids))])
        return {
            "config_id": chosen,
            "config": self.candidates[chosen],
            "epoch": int(self.epochs_done_[chosen] + 1),
        }

    def _acquisition(self, ids: np.ndarray) -> np.ndarray:
        next_epochs = self.epochs_done_[ids] + 1
        mean, std = self.perf.predict(
            self.features_[ids], self.task_meta, self.curves_[ids], next_epochs
        )
        # the incumbent at a fidelity: best score seen at that many epochs or fewer (Quick-Tune)
        best_per_epoch = np.fmax.accumulate(np.nanmax(self.curves_, axis=0, initial=-np.inf))
        best = best_per_epoch[next_epochs - 1]
        score = expected_improvement(mean, std, best, self.explore_factor)
        if not np.any(score > 0):
            return mean  # EI underflowed everywhere: fall back to the best predicted score
        if self.cost_aware:
            seconds = self.predicted_seconds_[ids].copy()
            started = self.epochs_done_[ids] > 0
            # a started candidate's own epochs tell its next epoch's cost better than the surrogate
            seconds[started] = np.nanmean(self.seconds_[ids[started]], axis=1)
            seconds = np.maximum(seconds, 1e-9)
            score = score / np.maximum(seconds / seconds.max(), 1e-6)
        return score

    def tell(self, config_id: int, epoch: int, score: float, seconds: float) -> None:
        """Record that `config_id`'s epoch `epoch` scored `score` (validation, higher is better)
        and took `seconds`."""
        if not 0 <= config_id < len(self.candidates):
            raise ValidationError(f"config_id {config_id} is not in 0..{len(self.candidates) - 1}")
        expected = int(self.epochs_done_[config_id] + 1)
        if epoch != expected:
            raise ValidationError(
                f"config {config_id} has {expected - 1} epochs; tell epoch {expected} next, "
                f"not {epoch}"
            )
        if epoch > self.max_epochs:
            raise ValidationError(f"config {config_id} already has max_epochs={self.max_epochs}")
        if not (np.isfinite(score) and np.isfinite(seconds) and seconds >= 0):
            raise ValidationError(f"score ({score}) and seconds ({seconds}) must be finite, ≥ 0")
        self.curves_[config_id, epoch - 1] = score
        self.seconds_[config_id, epoch - 1] = seconds
        self.epochs_done_[config_id] = epoch
        self.history_.append(
            {
                "config_id": config_id,
                "epoch": epoch,
                "score": float(score),
                "seconds": float(seconds),
            }
        )
        if self.refit:
            self._not_refit.append((config_id, epoch))
            told = len(self.history_)
            if told >= self.n_initial and (told - self.n_initial) % self.refit_every == 0:
                self._refit()

    def _refit(self) -> None:
        ids = np.array([i for i, _ in self._not_refit])
        epochs = np.array([e for _, e in self._not_refit])
        self.perf.fit_extra(
            self.features_[ids],
            self.task_meta,
            self.curves_[ids],
            epochs,
            self.curves_[ids, epochs - 1],
            n_iterations=self.refit_iterations,
            seed=self.seed + self.n_refits_,
        )
        self.n_refits_ += 1
        self._not_refit = []

    @property
    def history(self) -> pd.DataFrame:
        """One row per told epoch: config_id, epoch, score, seconds, cumulative seconds and the
        incumbent (best score so far)."""
        frame = pd.DataFrame(self.history_, columns=["config_id", "epoch", "score", "seconds"])
        frame["cumulative_seconds"] = frame["seconds"].cumsum()
        frame["incumbent_score"] = frame["score"].cummax()
        return frame


def portfolio(
    perf: PerformanceSurrogate,
    cost: CostSurrogate | None,
    candidates: list[FinetuneConfig],
    task_meta: pd.DataFrame | pd.Series,
    n: int | None = None,
    max_epochs: int | None = None,
) -> pd.DataFrame:
    """Candidates ranked by the predicted validation score after `max_epochs` (default: the
    surrogate's) from the task's meta-features alone (no epoch trained), best first, with the
    predicted seconds of the full run when `cost` is given; the top `n` (all when None)."""
    task_meta = _one_row(task_meta)
    max_epochs = perf.max_epochs_ if max_epochs is None else max_epochs
    features = config_features(list(candidates))
    count = len(features)
    mean, std = perf.predict(
        features, task_meta, np.zeros((count, perf.max_epochs_)), np.full(count, max_epochs), 0
    )
    frame = pd.DataFrame(
        {"config_id": np.arange(count), "predicted_score": mean, "predicted_std": std}
    )
    if cost is not None:
        frame["predicted_seconds"] = cost.predict(features, task_meta) * max_epochs
    frame = pd.concat([frame, pd.DataFrame([c.to_dict() for c in candidates])], axis=1).sort_values(
        ["predicted_score", "config_id"], ascending=[False, True], kind="stable"
    )
    frame.insert(0, "rank", np.arange(1, count + 1))
    return frame.reset_index(drop=True).head(count if n is None else n)
