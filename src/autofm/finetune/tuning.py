"""Finetune for real within a time budget: pick configurations with a meta-learned tuner (or a
baseline strategy), train them one epoch at a time, keep the best adapter.

A *tuner* is the pair of meta-trained surrogates with the candidate configurations they rank:
a folder holding `perf.*`, `cost.*` (safetensors + JSON) and `tuner.json`. `autofm finetune
meta-train` writes one; the project ships `finetune-tuner`, meta-trained on its meta-dataset.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from autofm.core.checkpoint import checkpoint_dirs, verify_shipped
from autofm.core.errors import CheckpointError, ValidationError
from autofm.core.io import atomic_write_json, read_json
from autofm.core.progress import progress
from autofm.finetune.metadataset import MetaDataset
from autofm.finetune.metafeatures import task_meta_features
from autofm.finetune.optimizer import QuickTuneOptimizer, portfolio
from autofm.finetune.space import DEFAULT_CONFIG, FinetuneConfig
from autofm.finetune.surrogates import CostSurrogate, PerformanceSurrogate
from autofm.finetune.tasks import Task
from autofm.finetune.training import Evaluation, LoraRun
from autofm.lm.model import GPT

STRATEGIES = ("quicktune", "portfolio", "random", "default")
SHIPPED_TUNER = "finetune-tuner"


@dataclass
class Tuner:
    """Meta-trained surrogates and the candidates they choose from."""

    perf: PerformanceSurrogate
    cost: CostSurrogate
    candidates: list[FinetuneConfig]
    max_epochs: int
    info: dict[str, Any] = field(default_factory=dict)

    def save(self, folder: str | os.PathLike) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.perf.save(folder / "perf")
        self.cost.save(folder / "cost")
        atomic_write_json(
            folder / "tuner.json",
            {
                "candidates": [c.to_dict() for c in self.candidates],
                "max_epochs": self.max_epochs,
                **self.info,
            },
        )
        return folder


def meta_train(
    metadataset: MetaDataset,
    seed: int = 0,
    perf_kwargs: dict | None = None,
    cost_kwargs: dict | None = None,
) -> Tuner:
    """Meta-train both surrogates on every run of `metadataset`."""
    perf = PerformanceSurrogate(seed=seed, **(perf_kwargs or {})).fit(metadataset)
    cost = CostSurrogate(seed=seed, **(cost_kwargs or {})).fit(metadataset)
    info = {"tasks": list(metadataset.tasks), "runs": int(metadataset.complete().sum())}
    return Tuner(perf, cost, list(metadataset.configs), metadataset.max_epochs, info)


def load_tuner(name_or_folder: str | os.PathLike = SHIPPED_TUNER) -> Tuner:
    """A tuner folder, or a shipped tuner's name (whose files must be the shipped ones)."""
    folder = Path(name_or_folder)
    if not (folder / "tuner.json").is_file():
        found = [d / str(name_or_folder) for d in checkpoint_dirs()]
        folder = next((f for f in found if (f / "tuner.json").is_file()), None)
        if folder is None:
            raise CheckpointError(
                f"no tuner at {name_or_folder} (a folder with tuner.json, perf.* and cost.*, "
                "written by `autofm finetune meta-train`) and no shipped tuner of that name"
            )
    verify_shipped(str(name_or_folder), folder.parent)  # a path that is not a shipped name passes
    manifest = read_json(folder / "tuner.json", "tuner manifest", keys=("candidates", "max_epochs"))
    candidates = [
        FinetuneConfig.from_values(values, source=f"{folder}/tuner.json")
        for values in manifest.pop("candidates")
    ]
    max_epochs = int(manifest.pop("max_epochs"))
    return Tuner(
        PerformanceSurrogate.load(folder / "perf"),
        CostSurrogate.load(folder / "cost"),
        candidates,
        max_epochs,
        manifest,
    )


def suggest(tuner: Tuner, model: GPT, task: Task, n: int | None = None) -> pd.DataFrame:
    """The tuner's candidates ranked for `task` from its meta-features alone (a portfolio)."""
    meta = pd.Series(task_meta_features(model, task))
    return portfolio(tuner.perf, tuner.cost, tuner.candidates, meta, n, tuner.max_epochs)


@dataclass
class TuneResult:
    """What a budgeted search did: every epoch trained, the incumbent and its test score."""

    strategy: str
    steps: pd.DataFrame  # config_id, epoch, val_score, seconds, elapsed, incumbent
    candidates: list[FinetuneConfig]
    incumbent: int  # config_id of the best run
    val_score: float
    test: Evaluation
    best_run: LoraRun = field(repr=False)
    runs: dict[int, LoraRun] = field(repr=False, default_factory=dict)

    @property
    def test_score(self) -> float:
        return self.test.score


def _schedule(
    strategy: str, tuner: Tuner | None, model: GPT, task: Task, seed: int, max_epochs, refit
):
    """A generator of config ids to train one more epoch, and the candidate list."""
    if strategy == "default":
        candidates = [DEFAULT_CONFIG]
        order = [0]
    else:
        if tuner is None:
            raise ValidationError(f"strategy {strategy!r} needs a tuner (meta-trained surrogates)")
        candidates = tuner.candidates
        if strategy == "random":
            order = list(np.random.default_rng(seed).permutation(len(candidates)))
        elif strategy == "portfolio":
            order = list(suggest(tuner, model, task)["config_id"])
        else:
            meta = pd.Series(task_meta_features(model, task))
            optimizer = QuickTuneOptimizer(
                tuner.perf, tuner.cost, candidates, meta, max_epochs, refit=refit, seed=seed
            )
            return candidates, optimizer
    return candidates, [int(i) for i in order for _ in range(max_epochs)]


def tune(
    model: GPT,
    task: Task,
    budget_seconds: float,
    strategy: str = "quicktune",
    tuner: Tuner | None = None,
    max_epochs: int | None = None,
    refit: bool = False,
    seed: int = 0,
    device: str | torch.device = "cpu",
    show_progress: bool = True,
) -> TuneResult:
    """Finetune `model` on `task` for about `budget_seconds` (the epoch under way when the budget
    runs out is finished, and at least one epoch is trained), choosing what to train by `strategy`; the incumbent is the run with
    the best validation score, tested with its best epoch's adapter."""
    if strategy not in STRATEGIES:
        raise ValidationError(f"unknown strategy {strategy!r}; choose one of {STRATEGIES}")
    if not budget_seconds > 0:
        raise ValidationError(f"the budget must be > 0 seconds, got {budget_seconds}")
    max_epochs = max_epochs or (tuner.max_epochs if tuner else 8)
    candidates, schedule = _schedule(strategy, tuner, model, task, seed, max_epochs, refit)
    runs: dict[int, LoraRun] = {}
    steps = []
    start = time.perf_counter()
    queue = iter(schedule) if isinstance(schedule, list) else None
    bar = progress(total=round(budget_seconds), desc=f"finetuning ({strategy})", unit="s",
                   disable=not show_progress)  # fmt: skip
    while not steps or time.perf_counter() - start < budget_seconds:  # at least one epoch
        if queue is not None:
            config_id = next(queue, None)
        else:
            asked = schedule.ask()
            config_id = None if asked is None else asked["config_id"]
        if config_id is None:
            break
        if config_id not in runs:
            runs[config_id] = LoraRun(
                model, task, candidates[config_id], max_epochs, seed + config_id, device
            )
        record = runs[config_id].step()
        if queue is None:
            schedule.tell(config_id, record.epoch, record.val_score, record.seconds)
        elapsed = time.perf_counter() - start
        steps.append(
            {"config_id": config_id, "epoch": record.epoch, "val_score": record.val_score,
             "seconds": record.seconds, "elapsed": elapsed}
        )  # fmt: skip
        bar.update(min(round(elapsed), round(budget_seconds)) - bar.n)
    bar.close()
    frame = pd.DataFrame(steps)
    frame["incumbent"] = frame["val_score"].cummax()
    best = max(runs, key=lambda i: (runs[i].best_val.score, -i))
    run = runs[best]
    return TuneResult(strategy, frame, candidates, best, run.best_val.score, run.test(), run, runs)
