"""Multi-objective search for the Pareto front of sub-network quality versus size.

Methods: NSGA-II, multi-objective TPE and random search (Optuna samplers), and a Pareto local
search that moves one choice at a time (one layer more or fewer, one embedding / MLP step, one
head) from the non-dominated sub-networks found so far. Every method evaluates the largest and the
smallest sub-network first, and every evaluation is a trial of one Optuna study (`core.study`:
SQLite in the run folder by default, any RDB URL for many workers), so a killed search resumes
with no finished trial lost. Each trial stores its sub-network and all measured objectives.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from itertools import product
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from autofm.compress.objectives import (
    QUALITY_OBJECTIVES,
    SIZE_OBJECTIVES,
    Calibration,
    Evaluator,
    tensors_sha256,
)
from autofm.compress.space import SearchSpace, SubNetwork
from autofm.core.errors import ValidationError
from autofm.core.pareto import best_under, hypervolume_2d, pareto_mask
from autofm.core.progress import progress
from autofm.core.study import (
    HEADER,
    check_header,
    complete_trials,
    default_population_size,
    make_sampler,
    open_storage,
    open_study,
    quiet_logging,
    storage_url,
)

METHODS = ("nsga2", "tpe", "random", "local")
PROGRAM = "autofm.compress"
FORMAT_VERSION = 1
REFERENCE_MARGIN = 0.1
# a resumed search must match these header entries (the reference point may differ)
MATCH = ("method", "objectives", "seed", "parent", "space", "weights_sha256")
MATCH += ("calibration_sha256", "validation_sha256", "latency")


@dataclass(frozen=True)
class Candidate:
    """One evaluated sub-network: its trial number and its objective values."""

    number: int
    sub: SubNetwork
    values: dict[str, float]

    def to_dict(self, quality: str) -> dict[str, Any]:
        """JSON-ready: `number`, `sub_network`, the `quality` value as `objective`, all values."""
        sub, objective = self.sub.to_dict(), self.values[quality]
        return {"number": self.number, "sub_network": sub, "objective": objective, **self.values}


@dataclass(frozen=True)
class SearchResult:
    """The finished trials, their Pareto front (by increasing size) and its hypervolume with the
    fixed `reference` point (quality, size)."""

    method: str
    objectives: tuple[str, str]
    study_name: str
    storage_url: str
    reference: tuple[float, float]
    trials: list[Candidate]
    front: list[Candidate]
    hypervolume: float

    def best_under(
        self, *, params: float | None = None, flops: float | None = None, latency_ms=None
    ) -> Candidate:
        """The best-quality sub-network evaluated within one size budget, e.g. `params=1e6`."""
        budgets = {"params": params, "flops": flops, "latency_ms": latency_ms}
        given = {name: value for name, value in budgets.items() if value is not None}
        if len(given) != 1:
            raise ValidationError("give exactly one budget: params=, flops= or latency_ms=")
        (size, budget), quality = next(iter(given.items())), self.objectives[0]
        measured = [c for c in self.trials if size in c.values]
        if not measured:
            raise ValidationError(f"this search did not measure {size}; search with it")
        points = [(c.values[quality], c.values[size]) for c in measured]
        index = best_under(points, budget)
        if index is None:
            smallest = min(p[1] for p in points)
            raise ValidationError(
                f"no searched sub-network has {size} ≤ {budget:g}; the smallest has {smallest:g}"
            )
        return measured[index]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary, the front as `Candidate.to_dict` points (what `autofm compress
        extract --front` reads)."""
        summary = {f.name: getattr(self, f.name) for f in fields(self)[:5]}  # up to reference
        front = [c.to_dict(self.objectives[0]) for c in self.front]
        return summary | {
            "n_trials": len(self.trials),
            "hypervolume": self.hypervolume,
            "front": front,
        }


class _Recorder:
    """Stands in for an Optuna trial in `SearchSpace.suggest`: answers each suggestion with
    `pick(name, choices)` and records the choices, so the space's own parameters are used."""

    def __init__(self, pick: Callable[[str, list], Any]):
        self.pick, self.params, self.choices = pick, {}, {}

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False):
        return self.suggest_categorical(name, list(range(low, high + 1, step)))

    def suggest_categorical(self, name: str, choices: Sequence[Any]):
        self.choices[name] = list(choices)
        self.params[name] = self.pick(name, self.choices[name])
        return self.params[name]


def _suggested(space: SearchSpace, pick: Callable[[str, list], Any]):
    """(sub-network, its parameters, every parameter's choices) for the answers `pick` gives."""
    recorder = _Recorder(pick)
    sub = space.suggest(recorder)
    return sub, recorder.params, recorder.choices


def _sub_of(space: SearchSpace, params: Mapping[str, Any]) -> SubNetwork:
    return _suggested(space, lambda name, _: params[name])[0]


def _local_params(study, space, choices, rng: np.random.Generator) -> dict[str, Any]:
    """The next point of the Pareto local search: an unvisited neighbour (one choice one step
    away) of a random non-dominated trial, or a random unvisited point when there is none."""
    trials = complete_trials(study)
    visited = {SubNetwork.from_dict(t.user_attrs["sub"]) for t in trials}
    archive = [trials[i] for i in np.flatnonzero(pareto_mask([t.values for t in trials]))]
    for i in rng.permutation(len(archive)):
        params = archive[i].params
        neighbours = []
        for name, values in choices.items():
            at = values.index(params[name])
            neighbours += [
                {**params, name: values[j]} for j in (at - 1, at + 1) if 0 <= j < len(values)
            ]
        for j in rng.permutation(len(neighbours)):
            if _sub_of(space, neighbours[j]) not in visited:
                return neighbours[j]
    for _ in range(1000):  # a restart: every neighbour of the front has been evaluated
        params = {name: values[rng.integers(len(values))] for name, values in choices.items()}
        if _sub_of(space, params) not in visited:
            break
    return params


def _check(method: str, objectives: Sequence[str], n_trials: int) -> tuple[str, str]:
    if method not in METHODS:
        raise ValidationError(f"unknown search method {method!r}; choose one of {METHODS}")
    if isinstance(n_trials, bool) or not isinstance(n_trials, int | np.integer) or n_trials < 1:
        raise ValidationError(f"n_trials must be a positive integer, got {n_trials!r}")
    objectives = tuple(str(o).lower() for o in objectives)
    if objectives not in set(product(QUALITY_OBJECTIVES, SIZE_OBJECTIVES)):
        raise ValidationError(
            f"objectives must be (quality, size) with quality in {QUALITY_OBJECTIVES} and size "
            f"in {SIZE_OBJECTIVES}, got {objectives}"
        )
    return objectives


def search(
    supernet,
    space: SearchSpace | None = None,
    objectives: Sequence[str] = ("kl", "params"),
    method: str = "nsga2",
    n_trials: int = 100,
    seed: int = 0,
    *,
    calibration: Calibration | None = None,
    validation_tokens=None,
    n_blocks: int = 64,
    latency: Mapping[str, Any] | None = None,
    storage: str | os.PathLike | None = None,
    run_dir: str | os.PathLike = "runs/compress",
    study_name: str | None = None,
    reference: tuple[float, float] | None = None,
    population_size: int | None = None,
) -> SearchResult:
    """Run (or resume, up to `n_trials` finished trials) a search of `space` (default: the
    super-network's uniform space) minimising `objectives` = (quality, size).

    Quality 'kl' needs `calibration`, 'val_loss' needs `validation_tokens` (`n_blocks` blocks);
    every trial also records params, flops and whichever quality is available. `latency` holds
    `measure_latency` options for size 'latency_ms'. The study lives in `storage` (URL, run
    folder or .db file; default: `run_dir`/study.db) under `study_name` (default
    '{method}-{quality}-{size}-seed{seed}'). The hypervolume's `reference` defaults to 1.1 × the
    smallest sub-network's quality and 1.1 × the largest one's size."""
    quality, size = _check(method, objectives, n_trials)
    space = space if space is not None else supernet.space()
    if space.parent != supernet.config:
        raise ValidationError("the search space belongs to another parent than the super-network")
    url = storage_url(storage if storage is not None else run_dir, create=True)
    storage_ = open_storage(url)  # a bad URL fails before any evaluation
    evaluator = Evaluator(
        supernet, calibration, validation_tokens, n_blocks=n_blocks, latency=latency
    )
    recorded = [name for name in evaluator.available if name != "latency_ms" or size == name]
    largest, largest_params, choices = _suggested(space, lambda _, values: max(values))
    smallest, smallest_params, _ = _suggested(space, lambda _, values: min(values))
    default_reference = (
        (1 + REFERENCE_MARGIN) * evaluator.value(smallest, quality),
        (1 + REFERENCE_MARGIN) * evaluator.value(largest, size),
    )
    study_name = study_name or f"{method}-{quality}-{size}-seed{seed}"
    header = {
        "program": PROGRAM,
        "format_version": FORMAT_VERSION,
        "method": method,
        "objectives": [quality, size],
        "seed": int(seed),
        "parent": space.parent.to_dict(),
        "space": {f.name: getattr(space, f.name) for f in fields(space) if f.name != "parent"},
        "weights_sha256": tensors_sha256(t for _, t in sorted(supernet.state_dict().items())),
        **evaluator.fingerprint(),
        "latency": dict(latency or {}) if size == "latency_ms" else None,
        "reference": list(reference or default_reference),
    }

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        sub = space.suggest(trial)
        values = evaluator.values(sub, recorded)
        trial.set_user_attr("sub", sub.to_dict())
        trial.set_user_attr("values", values)
        return values[quality], values[size]

    with quiet_logging():
        study = open_study(
            storage_, study_name, ["minimize", "minimize"], header, match=MATCH,
            metric_names=[quality, size],
        )  # fmt: skip
        if not study.get_trials(deepcopy=False):
            study.enqueue_trial(largest_params)
            study.enqueue_trial(smallest_params)
        population = population_size or default_population_size(n_trials)
        _optimize(study, objective, method, n_trials, seed, population, space, choices)
    return _result(study, url, reference)


def _optimize(study, objective, method, n_trials, seed, population, space, choices) -> None:
    """Evaluate trials until the study holds `n_trials` finished ones."""
    done = len(complete_trials(study))
    started = len(study.get_trials(deepcopy=False))
    # a resumed run or a second worker continues with a fresh random stream
    sampler = "random" if method == "local" else method
    study.sampler = make_sampler(sampler, 2, seed + started, population)
    bar = progress(total=max(0, n_trials - done), desc=study.study_name)
    try:
        if method != "local":
            if done < n_trials:
                study.optimize(
                    objective,
                    n_trials=n_trials - done,
                    callbacks=[
                        optuna.study.MaxTrialsCallback(n_trials, states=(TrialState.COMPLETE,)),
                        lambda *_: bar.update(1),
                    ],
                )
            return
        rng = np.random.default_rng([seed, started])
        while len(complete_trials(study)) < n_trials:
            # a waiting trial (the first design, or one a killed run enqueued) goes first
            if not study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
                study.enqueue_trial(_local_params(study, space, choices, rng))
            study.optimize(objective, n_trials=1)
            bar.update(1)
    finally:
        bar.close()


def _result(study: optuna.Study, url: str, reference=None) -> SearchResult:
    header = study.user_attrs[HEADER]
    quality, size = header["objectives"]
    reference = tuple(float(r) for r in (reference or header["reference"]))
    trials = [
        Candidate(
            t.number, SubNetwork.from_dict(t.user_attrs["sub"], source=url), t.user_attrs["values"]
        )
        for t in complete_trials(study)
    ]
    first: dict[SubNetwork, Candidate] = {}
    for candidate in trials:  # a sub-network evaluated twice counts once, as its first trial
        first.setdefault(candidate.sub, candidate)
    unique = list(first.values())
    points = np.array([[c.values[quality], c.values[size]] for c in unique]).reshape(-1, 2)
    mask = pareto_mask(points)
    front = sorted((c for c, keep in zip(unique, mask) if keep), key=lambda c: c.values[size])
    return SearchResult(
        method=header["method"],
        objectives=(quality, size),
        study_name=study.study_name,
        storage_url=url,
        reference=reference,
        trials=trials,
        front=front,
        hypervolume=hypervolume_2d(points[mask], reference),
    )


def load_result(
    storage: str | os.PathLike, study_name: str, reference: tuple[float, float] | None = None
) -> SearchResult:
    """The result of a finished or running search, read from its storage (URL, folder, .db)."""
    url = storage_url(storage)
    storage_ = open_storage(url)
    names = [
        s.study_name for s in optuna.get_all_study_summaries(storage_, include_best_trial=False)
    ]
    if study_name not in names:
        raise ValidationError(f"no study named {study_name!r} in {url}; it has {names or 'none'}")
    study = optuna.load_study(study_name=study_name, storage=storage_)
    check_header(study.user_attrs.get(HEADER), study_name, PROGRAM, FORMAT_VERSION)
    return _result(study, url, reference)
