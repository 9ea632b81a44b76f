"""ManyFairHPO: hyperparameter search for error and several fairness objectives at once.

One call to `run` optimises the chosen objectives together (NSGA-III for more than two, NSGA-II for
two, or random search as a baseline) and, for the conflict analysis, one bi-objective run
(1 − F1, f) per fairness objective f. All runs live in one Optuna storage (`storage.py`), so a
killed run resumes with no finished trial lost and several worker processes can share a study.
Every trial (`objective.py`) stores every objective of `metrics.OBJECTIVES` on validation (mean
over folds) and on the held-out test split, and its test group rates.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState

from autofm.core.errors import ValidationError
from autofm.core.pareto import pareto_mask
from autofm.core.progress import progress, status
from autofm.core.study import (
    check_header,
    default_population_size,
    fail_orphaned_trials,
    quiet_logging,
    recording_worker,
    stored_header,
)
from autofm.fairness.conflicts import hypervolume_contrast, hypervolume_regret
from autofm.fairness.data import FairData, prepare_data
from autofm.fairness.metrics import LABELS, OBJECTIVES, PAPER_OBJECTIVES
from autofm.fairness.objective import (
    TrialObjective,
    check_jobs,
    default_jobs,
    release_fold_workers,
)
from autofm.fairness.select import ALIASES, Selection, select_model
from autofm.fairness.spaces import check_model
from autofm.fairness.storage import (
    SAMPLERS,
    experimental_features,
    make_sampler,
    open_storage,
    storage_url,
)

PROGRAM = "autofm.fairness"
FORMAT_VERSION = 1
DEFAULT_STUDY = "fair"
# each objective's name in a study, as optuna-dashboard shows it (the labels of report.py)


def check_objectives(objectives: Sequence[str]) -> list[str]:
    """Known names (or their aliases), no repeats, error ('f1') first and at least one fairness
    objective."""
    objectives = [ALIASES.get(str(o).lower(), str(o).lower()) for o in objectives]
    unknown = [o for o in objectives if o not in OBJECTIVES]
    if unknown:
        raise ValidationError(f"unknown objective(s) {unknown}; known: {', '.join(OBJECTIVES)}")
    if len(set(objectives)) != len(objectives):
        raise ValidationError(f"objectives repeat a name: {objectives}")
    if "f1" not in objectives or len(objectives) < 2:
        raise ValidationError(
            "objectives must include 'f1' (1 − F1) and at least one fairness metric"
        )
    return ["f1"] + [o for o in OBJECTIVES if o in objectives and o != "f1"]


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """Finished trials: number, params_*, val_*, test_*, rate_* (test group rates), seconds."""
    rows = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        row: dict[str, Any] = {"number": trial.number}
        row.update({f"params_{k}": v for k, v in trial.params.items()})
        result = trial.user_attrs.get("result", {})
        for prefix, key in (("val_", "val"), ("test_", "test"), ("rate_", "rates")):
            row.update({prefix + k: v for k, v in result.get(key, {}).items()})
        row["seconds"] = result.get("seconds", float("nan"))
        rows.append(row)
    return pd.DataFrame(rows)


class ManyFairHPO:
    """Many-objective fairness-aware HPO with a human in the loop (Robertson et al., AIES 2024).

    Parameters: `model` one of rf, gb, mlp, logreg; `objectives` a subset of f1 (1 − F1), dsp, deod,
    deod_max (DEOD's worst case, not in the paper), deop, invd, always with f1 (default: the
    paper's five); `sampler` auto (NSGA-II for 2 objectives, NSGA-III for more),
    nsga2, nsga3, random or tpe; `bi_objective_trials` trials per bi-objective (1 − F1, f) run
    used by `conflicts` (None: as many as `n_trials`; 0: none); `population_size` of the genetic
    samplers (None: n_trials // 5 clipped to [10, 50]); `max_epochs` caps MLP training; `n_jobs`
    processes fit a trial's folds at once (None: $AUTOFM_THREADS, else this host's cores shared
    among the study's workers on it; see `objective.py`), with the same results for every value.
    """

    def __init__(
        self,
        model: str = "rf",
        objectives: Sequence[str] = PAPER_OBJECTIVES,
        *,
        sampler: str = "auto",
        n_folds: int = 3,
        test_size: float = 0.25,
        keep_protected: bool = False,
        bi_objective_trials: int | None = None,
        population_size: int | None = None,
        max_epochs: int = 200,
        n_jobs: int | None = None,
        study_name: str = DEFAULT_STUDY,
        workdir: str | os.PathLike = "runs/fair",
        random_state: int = 0,
    ):
        self.model = model
        self.objectives = objectives
        self.sampler = sampler
        self.n_folds = n_folds
        self.test_size = test_size
        self.keep_protected = keep_protected
        self.bi_objective_trials = bi_objective_trials
        self.population_size = population_size
        self.max_epochs = max_epochs
        self.n_jobs = n_jobs
        self.study_name = study_name
        self.workdir = workdir
        self.random_state = random_state

    # ---- running -----------------------------------------------------------------------------

    def _settings(self, data: FairData) -> dict[str, Any]:
        return {
            "program": PROGRAM,
            "format_version": FORMAT_VERSION,
            "model": self.model,
            "objectives": self.objectives_,
            "sampler": self.sampler,
            "random_state": self.random_state,
            "max_epochs": self.max_epochs,
            **data.info,
        }

    def _open_study(
        self, storage, name: str, objectives: list[str], settings: dict[str, Any], role: str
    ) -> optuna.Study:
        study = optuna.create_study(
            storage=storage,
            study_name=name,
            directions=["minimize"] * len(objectives),
            load_if_exists=True,
        )
        existing, has_trials = stored_header(study, "autofm")
        if existing is None:
            if has_trials:
                raise ValidationError(
                    f"study {name!r} exists in this storage but was not written by {PROGRAM}; "
                    "use another --name or storage"
                )
            with experimental_features():
                study.set_metric_names([LABELS[o] for o in objectives])
            study.set_user_attr(
                "autofm", {**settings, "role": role, "study_objectives": objectives}
            )
            return study
        check_header(existing, name, PROGRAM, FORMAT_VERSION)
        for key in ("model", "data_sha256", "n_folds", "test_size", "random_state", "privileged"):
            if existing.get(key) != settings.get(key):
                raise ValidationError(
                    f"study {name!r} already holds a run with {key}={existing.get(key)!r}, not "
                    f"{settings.get(key)!r}; resume with the same data and settings or use another name"
                )
        if existing.get("study_objectives") != objectives:
            raise ValidationError(
                f"study {name!r} optimises {existing.get('study_objectives')}, not {objectives}"
            )
        return study

    def _optimize(
        self,
        study: optuna.Study,
        objectives: list[str],
        data: FairData,
        n_trials: int,
        seed: int,
        label: str,
    ) -> None:
        orphans = fail_orphaned_trials(study)  # a killed worker's trials, redone now
        if orphans:
            status(f"{study.study_name}: trials {orphans} of a stopped worker marked failed")
        done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
        remaining = max(0, n_trials - done)
        if remaining == 0:
            return
        population = self.population_size or default_population_size(n_trials)
        # a resumed run or a second worker continues with a fresh random stream
        study.sampler = make_sampler(
            self.sampler,
            len(objectives),
            seed + len(study.get_trials(deepcopy=False)),
            population,
        )
        bar = progress(total=remaining, desc=f"{self.study_name}:{label}")
        objective = TrialObjective(
            self.model, objectives, data, self.random_state, self.max_epochs, self.n_jobs
        )
        try:
            study.optimize(
                recording_worker(objective),
                n_trials=remaining,
                callbacks=[
                    MaxTrialsCallback(n_trials, states=(TrialState.COMPLETE,)),
                    lambda *_: bar.update(1),
                ],
                catch=(ValueError, FloatingPointError),
            )
        finally:
            bar.close()

    def run(
        self,
        X,
        y,
        sensitive,
        n_trials: int = 100,
        storage: str | os.PathLike | None = None,
        *,
        privileged: Any = None,
        positive: Any = None,
    ) -> ManyFairHPO:
        """Run (or resume) the search; `sensitive` is a column of `X` or one value per row."""
        check_model(self.model)
        self.objectives_ = check_objectives(self.objectives)
        if self.sampler not in SAMPLERS:
            raise ValidationError(f"unknown sampler {self.sampler!r}; choose one of {SAMPLERS}")
        if isinstance(n_trials, bool) or not isinstance(n_trials, int | np.integer) or n_trials < 1:
            raise ValidationError(f"n_trials must be a positive integer, got {n_trials!r}")
        if not isinstance(self.n_folds, int) or self.n_folds < 2:
            raise ValidationError(f"n_folds must be an integer ≥ 2, got {self.n_folds!r}")
        if check_jobs(self.n_jobs) is None:
            default_jobs()  # a bad $AUTOFM_THREADS is refused now, not as a failure of each trial
        if not 0 < self.test_size < 1:
            raise ValidationError(f"test_size must be in (0, 1), got {self.test_size}")
        data = prepare_data(
            X,
            y,
            sensitive,
            privileged=privileged,
            positive=positive,
            keep_protected=self.keep_protected,
            n_folds=self.n_folds,
            test_size=self.test_size,
            random_state=self.random_state,
        )
        url = storage_url(storage if storage is not None else self.workdir, create=True)
        self.storage_url_ = url
        storage_ = open_storage(url)
        settings = self._settings(data)
        self.info_ = settings
        bi_trials = n_trials if self.bi_objective_trials is None else int(self.bi_objective_trials)
        runs = [("main", self.study_name, self.objectives_, n_trials)]
        if len(self.objectives_) > 2 and bi_trials > 0:
            runs += [
                (f"bi:{m}", f"{self.study_name}.f1-{m}", ["f1", m], bi_trials)
                for m in self.objectives_[1:]
            ]
        with quiet_logging():  # our progress bar replaces Optuna's per-trial log
            try:
                for role, name, objectives, trials in runs:
                    study = self._open_study(storage_, name, objectives, settings, role)
                    status(f"{name}: {len(objectives)} objectives, {trials} trials ({self.model})")
                    # differently named studies (e.g. a random-search baseline) draw other streams
                    seed = self.random_state + zlib.crc32(name.encode()) % 100_000
                    self._optimize(study, objectives, data, trials, seed, role)
            finally:
                release_fold_workers()
        self._load_studies(storage_)
        return self

    # ---- reading results ---------------------------------------------------------------------

    @classmethod
    def load(cls, storage: str | os.PathLike, study_name: str = DEFAULT_STUDY) -> ManyFairHPO:
        """Open a finished or running search from its storage (run folder, .db file or URL)."""
        url = storage_url(storage)
        storage_ = open_storage(url)
        names = [
            s.study_name for s in optuna.get_all_study_summaries(storage_, include_best_trial=False)
        ]
        if study_name not in names:
            raise ValidationError(
                f"no study named {study_name!r} in {url}; it has {names or 'no studies'}"
            )
        header = optuna.load_study(study_name=study_name, storage=storage_).user_attrs.get("autofm")
        check_header(header, study_name, PROGRAM, FORMAT_VERSION)
        search = cls(
            model=header["model"],
            objectives=header["objectives"],
            sampler=header.get("sampler", "auto"),
            n_folds=header["n_folds"],
            test_size=header["test_size"],
            keep_protected=header.get("keep_protected", False),
            max_epochs=header.get("max_epochs", 200),
            study_name=study_name,
            random_state=header["random_state"],
        )
        search.objectives_ = list(header["objectives"])
        search.info_ = header
        search.storage_url_ = url
        search._load_studies(storage_)
        return search

    def _load_studies(self, storage_) -> None:
        names = {
            s.study_name for s in optuna.get_all_study_summaries(storage_, include_best_trial=False)
        }
        self.study_ = optuna.load_study(study_name=self.study_name, storage=storage_)
        self.bi_studies_ = {
            m: optuna.load_study(study_name=f"{self.study_name}.f1-{m}", storage=storage_)
            for m in self.objectives_[1:]
            if f"{self.study_name}.f1-{m}" in names
        }

    def _check_fitted(self) -> None:
        if not hasattr(self, "study_"):
            raise ValidationError("no search results yet: call run(...) or ManyFairHPO.load(...)")

    def trials(self) -> pd.DataFrame:
        """All finished trials of the many-objective run."""
        self._check_fitted()
        return trials_frame(self.study_)

    def pareto_front(self) -> pd.DataFrame:
        """Finished trials that are Pareto-optimal on the validation objectives."""
        frame = self.trials()
        if frame.empty:
            return frame
        mask = pareto_mask(frame[[f"val_{o}" for o in self.objectives_]].to_numpy(float))
        return frame[mask].reset_index(drop=True)

    def bi_objective_runs(self) -> dict[str, pd.DataFrame]:
        """Finished trials of each bi-objective (1 − F1, f) run, keyed by f."""
        self._check_fitted()
        return {m: trials_frame(s) for m, s in self.bi_studies_.items()}

    def conflicts(self, split: str = "val") -> dict[str, Any]:
        """Hypervolume contrast matrix, many- vs bi-objective regret, and each objective's best."""
        self._check_fitted()
        if split not in ("val", "test"):
            raise ValidationError(f"split must be 'val' or 'test', got {split!r}")
        runs = {m: f for m, f in self.bi_objective_runs().items() if not f.empty}
        many = self.trials()
        if many.empty:
            raise ValidationError("the study has no finished trials yet")
        if len(runs) < 2:
            raise ValidationError(
                "conflicts need the bi-objective runs of at least two fairness metrics; "
                "run with bi_objective_trials > 0 (CLI: --bi-trials N) and ≥ 2 fairness objectives"
            )
        best = {o: float(many[f"{split}_{o}"].min()) for o in self.objectives_}
        return {
            "contrast": hypervolume_contrast(runs, split),
            "regret": hypervolume_regret(many, runs, split),
            "best": best,
            "split": split,
        }

    def select(self, weights) -> Selection:
        """The Pareto-set model picked by stakeholder `weights` (e.g. 'dsp=0.3,deop=0.2,f1=0.5')."""
        front = self.pareto_front()
        base = self.info_["base_rates"]["trainval"]
        return select_model(front, weights, self.objectives_, base)
