"""Build the meta-dataset with real finetuning runs, resumably and with several workers.

Every (task, configuration) run is one trial of an Optuna study: the runs are enqueued once,
interleaved over tasks (so a partial build covers every task), and workers pop them from the
storage (a SQLite file by default, a PostgreSQL URL for workers on several machines). A trial
reports its validation score after each epoch and stores its per-epoch seconds, test score and
class probabilities as user attributes. A killed build loses at most the runs in progress: run
the same command again (a killed worker's run is redone once its heartbeat has expired).
"""

from __future__ import annotations

import multiprocessing
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
from optuna.trial import TrialState

from autofm.core.config import ConfigMixin
from autofm.core.errors import ValidationError
from autofm.core.progress import progress
from autofm.core.runtime import setup_torch
from autofm.core.study import (
    fail_orphaned_trials,
    open_storage,
    open_study,
    quiet_logging,
    recording_worker,
    storage_url,
)
from autofm.finetune.metadataset import MetaDataset
from autofm.finetune.metafeatures import META_FEATURES, task_meta_features
from autofm.finetune.space import sample_configs
from autofm.finetune.synthetic_qa import GENERATORS, synthetic_qa_task
from autofm.finetune.tasks import Task, load_classification_folder
from autofm.finetune.training import LoraRun, evaluate

STUDY_NAME = "finetune-metadataset"
PROGRAM = "autofm finetune build-metadataset"
FORMAT_VERSION = 1
DEFAULT_QA_TASKS = ("qa_arithmetic", "qa_facts", "qa_dates", "qa_strings")
SHARED_CLASSIFICATION = ("sst2", "ag_news", "tweet_sentiment_extraction", "sms_spam")


@dataclass(frozen=True)
class BuildSpec(ConfigMixin):
    """What a meta-dataset holds. A task is a synthetic QA name (`qa_dates`) or a folder with
    train.csv/test.csv (text,label); the same configurations are run on every task."""

    tasks: tuple[str, ...] = DEFAULT_QA_TASKS
    model: str = "gpt-parent"
    n_configs: int = 64
    config_seed: int = 0
    max_epochs: int = 8
    n_train: int = 96
    n_val: int = 64
    n_test: int = 128
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.tasks:
            raise ValidationError("a meta-dataset needs at least one task")
        names = self.task_names()
        if len(set(names)) != len(names):
            raise ValidationError(
                f"task names must be distinct (a folder's name is its task's): {names}"
            )
        for name in ("n_configs", "max_epochs", "n_train", "n_val", "n_test"):
            if getattr(self, name) < 1:
                raise ValidationError(f"{name} must be ≥ 1, got {getattr(self, name)}")

    def task_names(self) -> list[str]:
        return [Path(t).name if t not in GENERATORS else t for t in self.tasks]


def default_tasks(shared_root: str | os.PathLike | None) -> tuple[str, ...]:
    """The four shared text-classification sets (when `shared_root` has them) + four QA tasks."""
    folders = []
    if shared_root is not None:
        root = Path(shared_root)
        folders = [
            str(root / n) for n in SHARED_CLASSIFICATION if (root / n / "train.csv").is_file()
        ]
    return (*folders, *DEFAULT_QA_TASKS)


def load_task(spec: str, build: BuildSpec) -> Task:
    if spec in GENERATORS:
        return synthetic_qa_task(spec, build.n_train, build.n_val, build.n_test, build.seed)
    return load_classification_folder(spec, build.n_train, build.n_val, build.n_test, build.seed)


def _load_model(name: str):
    from autofm.lm.checkpoint import load_gpt

    model, _ = load_gpt(name)
    return model.float()


def _setup(study: optuna.Study, build: BuildSpec, tasks: list[Task], model) -> None:
    """Describe every task (meta-features, zero-shot scores) once, and enqueue the runs."""
    for task in progress(tasks, desc="describing tasks", unit="task"):
        key = f"task:{task.name}"
        if key in study.user_attrs:
            continue
        zero_val = evaluate(model, task, task.val)
        zero_test = evaluate(model, task, task.test)
        study.set_user_attr(
            key,
            {
                "fingerprint": task.fingerprint(),
                "meta": task_meta_features(model, task),
                "info": {
                    "kind": task.kind,
                    "metric": task.metric,
                    "classes": task.classes,
                    "verbalizers": task.verbalizers,
                    "zero_shot_val": zero_val.score,
                    "zero_shot_test": zero_test.score,
                    "n_train": len(task.train),
                    "n_val": len(task.val),
                    "n_test": len(task.test),
                },
                "labels": None
                if task.kind == "qa"
                else {"val": task.val.labels.tolist(), "test": task.test.labels.tolist()},
            },
        )
    _enqueue_missing(study, build)


def _run_keys(study: optuna.Study, states) -> set[tuple[str, int]]:
    """(task, config_id) of the trials in `states`; a waiting trial holds them as fixed params."""
    keys = set()
    for trial in study.get_trials(deepcopy=False, states=states):
        params = trial.params or trial.system_attrs.get("fixed_params", {})
        if "task" in params:
            keys.add((params["task"], int(params["config_id"])))
    return keys


def _enqueue_missing(study: optuna.Study, build: BuildSpec) -> int:
    """Enqueue every run that is neither done, running nor waiting; the number enqueued. A run
    that raised is PRUNED (its error stored) and not retried; a FAILED one (its worker died)
    is."""
    present = _run_keys(
        study, (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING, TrialState.PRUNED)
    )
    added = 0
    for config_id in range(build.n_configs):
        for name in build.task_names():
            if (name, config_id) not in present:
                study.enqueue_trial({"task": name, "config_id": config_id})
                added += 1
    return added


def _objective_factory(build: BuildSpec, tasks: dict[str, Task], model, device):
    configs = sample_configs(build.n_configs, build.config_seed)
    names = build.task_names()

    def objective(trial: optuna.Trial) -> float:
        frozen = trial.study._storage.get_trial(trial._trial_id)
        if not frozen.params and "fixed_params" not in frozen.system_attrs:
            trial.study.stop()  # the queue ran dry between our check and the pop
            raise optuna.TrialPruned("no enqueued run left")
        name = trial.suggest_categorical("task", names)
        config_id = trial.suggest_int("config_id", 0, build.n_configs - 1)
        task = tasks[name]
        try:
            run = LoraRun(
                model, task, configs[config_id], build.max_epochs, build.seed + config_id, device
            )
            for _ in range(build.max_epochs):
                record = run.step()
                trial.report(record.val_score, record.epoch)
            test = run.test()
        except Exception as err:  # e.g. out of memory: recorded, not retried forever
            trial.set_user_attr("error", f"{type(err).__name__}: {err}"[:500])
            raise optuna.TrialPruned(f"run failed: {err}") from err
        trial.set_user_attr("curve", [r.val_score for r in run.history])
        trial.set_user_attr("seconds", [round(r.seconds, 4) for r in run.history])
        trial.set_user_attr("val_loss", [round(r.val_loss, 5) for r in run.history])
        trial.set_user_attr("best_epoch", run.best_epoch)
        trial.set_user_attr("test_score", test.score)
        if task.kind == "classification":
            trial.set_user_attr(
                "val_probabilities", np.round(run.best_val.probabilities, 5).tolist()
            )
            trial.set_user_attr("test_probabilities", np.round(test.probabilities, 5).tolist())
        return max(r.val_score for r in run.history)

    return objective


def _open(storage: str, build: BuildSpec) -> optuna.Study:
    header = {"program": PROGRAM, "format_version": FORMAT_VERSION, "build": build.to_dict()}
    with quiet_logging():
        return open_study(open_storage(storage), STUDY_NAME, ["maximize"], header, match=["build"])


def _check_fingerprints(study: optuna.Study, tasks: list[Task]) -> None:
    for task in tasks:
        stored = study.user_attrs.get(f"task:{task.name}", {}).get("fingerprint")
        if stored is not None and stored != task.fingerprint():
            raise ValidationError(
                f"task {task.name} here differs from the one this meta-dataset was started with "
                "(other data files or another autofm version); use the same data or a new storage"
            )


def work(
    storage: str,
    build: BuildSpec,
    device: str = "cpu",
    threads: int | None = 1,
    max_seconds: float | None = None,
    show_progress: bool = True,
) -> int:
    """One worker: run enqueued runs until none is left (or `max_seconds`); the runs done."""
    setup_torch(threads, device)
    study = _open(storage, build)
    tasks = {t.name: t for t in (load_task(s, build) for s in build.tasks)}
    _check_fingerprints(study, list(tasks.values()))
    objective = recording_worker(_objective_factory(build, tasks, _load_model(build.model), device))
    fail_orphaned_trials(study)  # a killed worker's run on this machine is redone at once
    total = len(tasks) * build.n_configs
    bar = progress(total=total, desc="finetuning runs", unit="run", disable=not show_progress)
    bar.update(len(_run_keys(study, (TrialState.COMPLETE,))))
    start, done = time.monotonic(), 0
    with quiet_logging():
        while max_seconds is None or time.monotonic() - start < max_seconds:
            if not study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
                fail_orphaned_trials(study)
                if not _enqueue_missing(study, build):
                    break
            study.optimize(objective, n_trials=1, catch=())
            done += 1
            bar.n = len(_run_keys(study, (TrialState.COMPLETE,)))
            bar.refresh()
    bar.close()
    return done


def _work_in_process(args) -> int:
    return work(*args)


def build_metadataset(
    storage: str,
    build: BuildSpec,
    workers: int = 1,
    device: str = "cpu",
    threads: int | None = 1,
    max_seconds: float | None = None,
) -> optuna.Study:
    """Set the study up (task descriptions, the queue), then run `workers` worker processes.
    `storage`: a run folder, a .db file or an Optuna storage URL."""
    setup_torch(threads, device)
    tasks = [load_task(s, build) for s in build.tasks]  # bad tasks or model: refused before
    model = _load_model(build.model)  # anything is written
    storage = storage_url(storage, create=True)
    study = _open(storage, build)
    _check_fingerprints(study, tasks)
    _setup(study, build, tasks, model)
    if workers <= 1:
        work(storage, build, device, threads, max_seconds)
    else:
        context = multiprocessing.get_context("spawn")
        with context.Pool(workers) as pool:
            pool.map(
                _work_in_process,
                [
                    (storage, build, device, threads, max_seconds, index == 0)
                    for index in range(workers)
                ],
            )
    return study


def metadataset_from_study(storage: str) -> MetaDataset:
    """The finished runs of a build, as a MetaDataset (unfinished runs are NaN)."""
    with quiet_logging():
        try:
            study = optuna.load_study(
                study_name=STUDY_NAME, storage=open_storage(storage_url(storage))
            )
        except KeyError as err:
            raise ValidationError(
                f"{storage} holds no meta-dataset build ({STUDY_NAME!r} study)"
            ) from err
    header = study.user_attrs.get("autofm", {})
    if header.get("program") != PROGRAM:
        raise ValidationError(f"{storage} holds no meta-dataset build ({STUDY_NAME!r} study)")
    build = BuildSpec.from_dict(header["build"], source=storage)
    names = build.task_names()
    configs = sample_configs(build.n_configs, build.config_seed)
    shape = (len(names), build.n_configs, build.max_epochs)
    curves, costs = np.full(shape, np.nan), np.full(shape, np.nan)
    test_scores = np.full(shape[:2], np.nan)
    described = {n: study.user_attrs.get(f"task:{n}") for n in names}
    missing = [n for n, d in described.items() if d is None]
    if missing:
        raise ValidationError(f"{storage}: tasks {missing} were never described; rerun the build")
    predictions: dict[str, dict[int, dict[str, np.ndarray]]] = {}
    labels = {}
    for name in names:
        if described[name]["info"]["kind"] != "classification":
            continue
        stored = described[name].get("labels")
        if stored is None:  # a build that did not store its labels: reload and check the data
            task = load_task(next(s for s in build.tasks if Path(s).name == name), build)
            _check_fingerprints(study, [task])
            stored = {"val": task.val.labels, "test": task.test.labels}
        labels[name] = (np.asarray(stored["val"]), np.asarray(stored["test"]))
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        name, config_id = trial.params["task"], trial.params["config_id"]
        t = names.index(name)
        if not np.isnan(curves[t, config_id]).all():
            continue  # a run redone after a false stale mark: keep the first
        curves[t, config_id] = trial.user_attrs["curve"]
        costs[t, config_id] = trial.user_attrs["seconds"]
        test_scores[t, config_id] = trial.user_attrs["test_score"]
        if name in labels:
            predictions.setdefault(name, {})[config_id] = {
                "val": np.asarray(trial.user_attrs["val_probabilities"]),
                "test": np.asarray(trial.user_attrs["test_probabilities"]),
                "val_labels": labels[name][0],
                "test_labels": labels[name][1],
            }
    meta = pd.DataFrame(
        [[described[n]["meta"][f] for f in META_FEATURES] for n in names],
        index=pd.Index(names, name="task"),
        columns=list(META_FEATURES),
    )
    info = {n: described[n]["info"] for n in names}
    return MetaDataset(names, configs, meta, curves, costs, test_scores, info, predictions)
