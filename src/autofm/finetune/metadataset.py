"""A meta-dataset of finetuning runs: every configuration's learning curve and cost on every task.

Two layouts on disk, both written by `MetaDataset.save` and read by `MetaDataset.load`:

* the quicktunetool layout, one row per run: `config.csv` (the configuration), `meta.csv` (its
  task's meta-features), `curve.csv` (validation score after each epoch, columns `1..E`),
  `cost.csv` (seconds of each epoch, columns `1..E`), plus `runs.csv` (task, config_id, test
  score at the best epoch) and `tasks.json` (each task's kind, metric and zero-shot scores);
* the FTC layout (`ftc/<task>/<config>/{val,test}_predictions.csv`) for classification tasks,
  which `autofm.ensemble` reads as a pool of finetuned models.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from autofm.core.errors import DataNotFoundError, ValidationError
from autofm.core.io import atomic_path, atomic_write_json
from autofm.finetune.space import FinetuneConfig

LAYOUT_FILES = ("runs.csv", "config.csv", "meta.csv", "curve.csv", "cost.csv", "tasks.json")


@dataclass
class MetaDataset:
    """Learning curves of `configs` on `tasks`.

    curves[t, c, e]: validation score (accuracy or exact match, in [0, 1]) of configuration c on
    task t after epoch e + 1; costs[t, c, e]: seconds that epoch took (training + validation);
    test_scores[t, c]: test score at the configuration's best validation epoch. NaN marks a run
    not (yet) in the meta-dataset. meta: one row of numeric meta-features per task.
    task_info[task]: kind ("classification"/"qa"), metric, zero_shot_val, zero_shot_test.
    predictions[task][config_id] (classification only): {"val": [n, C], "test": [n, C],
    "val_labels", "test_labels"} class probabilities at the best epoch.
    """

    tasks: list[str]
    configs: list[FinetuneConfig]
    meta: pd.DataFrame
    curves: np.ndarray
    costs: np.ndarray
    test_scores: np.ndarray
    task_info: dict[str, dict[str, Any]] = field(default_factory=dict)
    predictions: dict[str, dict[int, dict[str, np.ndarray]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        shape = (len(self.tasks), len(self.configs))
        if self.curves.ndim != 3 or self.curves.shape[:2] != shape:
            raise ValidationError(
                f"curves must be [tasks {shape[0]}, configs {shape[1]}, epochs], got {self.curves.shape}"
            )
        if self.costs.shape != self.curves.shape or self.test_scores.shape != shape:
            raise ValidationError("costs must match curves, and test_scores [tasks, configs]")
        if list(self.meta.index) != list(self.tasks):
            raise ValidationError("meta must have one row per task, in the order of tasks")

    @property
    def max_epochs(self) -> int:
        return self.curves.shape[2]

    @property
    def config_frame(self) -> pd.DataFrame:
        """The configurations as a DataFrame indexed by config_id."""
        return pd.DataFrame([c.to_dict() for c in self.configs]).rename_axis("config_id")

    def complete(self) -> np.ndarray:
        """[tasks, configs] True where the run has every epoch."""
        return ~np.isnan(self.curves).any(axis=2)

    def task_index(self, task: str) -> int:
        if task not in self.tasks:
            raise ValidationError(f"unknown task {task!r}; the meta-dataset has {self.tasks}")
        return self.tasks.index(task)

    def subset(self, tasks: list[str]) -> MetaDataset:
        """The meta-dataset restricted to `tasks` (e.g. all but a left-out one)."""
        rows = [self.task_index(t) for t in tasks]
        return MetaDataset(
            list(tasks),
            self.configs,
            self.meta.loc[list(tasks)],
            self.curves[rows],
            self.costs[rows],
            self.test_scores[rows],
            {t: self.task_info.get(t, {}) for t in tasks},
            {t: self.predictions[t] for t in tasks if t in self.predictions},
        )

    # ---- disk layouts ----

    def save(self, folder: str | os.PathLike) -> Path:
        """Write the quicktunetool layout (complete runs only) and the FTC layout."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        done = self.complete()
        task_rows, config_rows = np.nonzero(done)
        epochs = [str(e + 1) for e in range(self.max_epochs)]
        config_frame = self.config_frame.reset_index(drop=True)
        frames = {
            "runs.csv": pd.DataFrame(
                {
                    "task": [self.tasks[t] for t in task_rows],
                    "config_id": config_rows,
                    "test_score": self.test_scores[task_rows, config_rows],
                }
            ),
            "config.csv": config_frame.iloc[config_rows].reset_index(drop=True),
            "meta.csv": self.meta.iloc[task_rows].reset_index(drop=True),
            "curve.csv": pd.DataFrame(self.curves[task_rows, config_rows], columns=epochs),
            "cost.csv": pd.DataFrame(self.costs[task_rows, config_rows], columns=epochs),
        }
        for name, frame in frames.items():
            with atomic_path(folder / name) as tmp:
                frame.to_csv(tmp, index=False)
        atomic_write_json(
            folder / "tasks.json",
            {
                "tasks": self.tasks,
                "n_configs": len(self.configs),
                "info": self.task_info,
                "all_configs": [c.to_dict() for c in self.configs],
                # every task's meta-features, also for a task without a complete run yet
                "meta": {t: self.meta.loc[t].astype(float).to_dict() for t in self.tasks},
            },
        )
        for task, runs in self.predictions.items():
            for config_id, arrays in runs.items():
                self._write_ftc(folder / "ftc" / task / config_name(config_id), arrays)
        return folder

    @staticmethod
    def _write_ftc(folder: Path, arrays: dict[str, np.ndarray]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for split in ("val", "test"):
            probabilities = np.asarray(arrays[split], dtype=float)
            frame = pd.DataFrame(
                np.log(np.maximum(probabilities, 1e-12)),
                columns=[str(c) for c in range(probabilities.shape[1])],
            )
            frame["label"] = np.asarray(arrays[f"{split}_labels"], dtype=int)
            with atomic_path(folder / f"{split}_predictions.csv") as tmp:
                frame.to_csv(tmp, index=False)

    @classmethod
    def load(cls, folder: str | os.PathLike) -> MetaDataset:
        """Read a folder written by `save`; checks that the files agree with each other."""
        folder = Path(folder)
        missing = [name for name in LAYOUT_FILES if not (folder / name).is_file()]
        if missing:
            raise DataNotFoundError(
                f"{folder} is not a finetuning meta-dataset: {missing} missing "
                "(build one with `autofm finetune build-metadataset`)"
            )
        try:
            header = json.loads((folder / "tasks.json").read_text())
            frames = {
                name: pd.read_csv(folder / name, float_precision="round_trip")
                for name in LAYOUT_FILES[:-1]
            }
        except (json.JSONDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
            raise ValidationError(f"{folder}: a layout file is not readable ({err})") from err
        for key in ("tasks", "all_configs"):
            if key not in header:
                raise ValidationError(f"{folder}/tasks.json has no {key!r} entry")
        runs = frames["runs.csv"]
        missing = sorted({"task", "config_id", "test_score"} - set(runs.columns))
        if missing:
            raise ValidationError(f"{folder}/runs.csv has no {missing} column(s)")
        n_runs = {name: len(frame) for name, frame in frames.items()}
        if len(set(n_runs.values())) != 1:
            raise ValidationError(
                f"{folder}: the layout files have different numbers of runs {n_runs}; "
                "each row of runs/config/meta/curve/cost.csv is one run"
            )
        curve, cost = frames["curve.csv"], frames["cost.csv"]
        if list(curve.columns) != list(cost.columns) or list(curve.columns) != [
            str(e + 1) for e in range(curve.shape[1])
        ]:
            raise ValidationError(
                f"{folder}: curve.csv and cost.csv need the epoch columns 1..E, got "
                f"{list(curve.columns)} and {list(cost.columns)}"
            )
        if curve.isna().any().any() or cost.isna().any().any():
            raise ValidationError(
                f"{folder}: curve.csv/cost.csv have missing epochs; every run needs all "
                f"{curve.shape[1]} epochs"
            )
        tasks = list(header["tasks"])
        configs = [
            FinetuneConfig.from_values(values, source=f"{folder}/tasks.json")
            for values in header["all_configs"]
        ]
        ids = pd.to_numeric(runs["config_id"], errors="coerce")
        bad_ids = runs["config_id"][
            ids.isna() | (ids != ids.round()) | (ids < 0) | (ids >= len(configs))
        ]
        unknown = sorted(set(runs["task"]) - set(tasks))
        if unknown or len(bad_ids):
            raise ValidationError(
                f"{folder}/runs.csv names tasks {unknown} or config ids {list(bad_ids)[:5]} that "
                "tasks.json does not list"
            )
        runs = runs.assign(config_id=ids.astype(int))
        duplicated = runs.duplicated(["task", "config_id"])
        if duplicated.any():
            row = runs[duplicated].iloc[0]
            raise ValidationError(
                f"{folder}/runs.csv lists run ({row['task']}, {row['config_id']}) twice"
            )
        for row, config_id in enumerate(runs["config_id"]):
            stored = FinetuneConfig.from_values(
                frames["config.csv"].iloc[row].to_dict(), source=f"{folder}/config.csv row {row}"
            )
            if stored != configs[config_id]:
                raise ValidationError(
                    f"{folder}: config.csv row {row} does not match config {config_id} of tasks.json"
                )
        shape = (len(tasks), len(configs), curve.shape[1])
        curves, costs = np.full(shape, np.nan), np.full(shape, np.nan)
        test_scores = np.full(shape[:2], np.nan)
        meta = pd.DataFrame(index=pd.Index(tasks, name="task"), columns=frames["meta.csv"].columns)
        for task, values in header.get("meta", {}).items():
            if task in meta.index:
                meta.loc[task, list(values)] = list(values.values())
        for row, (task, config_id) in enumerate(zip(runs["task"], runs["config_id"])):
            t = tasks.index(task)
            curves[t, config_id] = curve.iloc[row].to_numpy(dtype=float)
            costs[t, config_id] = cost.iloc[row].to_numpy(dtype=float)
            test_scores[t, config_id] = runs["test_score"].iloc[row]
            if "meta" not in header:
                meta.loc[task] = frames["meta.csv"].iloc[row].to_numpy()
        predictions: dict[str, dict[int, dict[str, np.ndarray]]] = {}
        for task in tasks:
            task_folder = folder / "ftc" / task
            if task_folder.is_dir():
                predictions[task] = {
                    int(path.name[len("lora_") :]): _read_ftc_run(path)
                    for path in sorted(task_folder.iterdir())
                    if path.is_dir() and re.fullmatch(r"lora_\d+", path.name)
                }
        return cls(
            tasks,
            configs,
            meta.astype(float),
            curves,
            costs,
            test_scores,
            dict(header.get("info", {})),
            predictions,
        )


def config_name(config_id: int) -> str:
    """The FTC folder name of a configuration: `lora_007`."""
    return f"lora_{config_id:03d}"


def _read_ftc_run(folder: Path) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    for split in ("val", "test"):
        frame = pd.read_csv(folder / f"{split}_predictions.csv", float_precision="round_trip")
        logits = frame.drop(columns=["label"]).to_numpy(dtype=float)
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        arrays[split] = exp / exp.sum(axis=1, keepdims=True)
        arrays[f"{split}_labels"] = frame["label"].to_numpy(dtype=int)
    return arrays
