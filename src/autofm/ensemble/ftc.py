"""The FTC metadataset layout (Ensembling Finetuned Language Models for Text Classification,
arXiv:2410.19889): read it, write it, or generate an FTC-like pool with the same structure.

One subfolder per finetuning configuration, each with `val_predictions.csv` and
`test_predictions.csv` (C logit columns, then `label`).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from autofm.core.errors import DataNotFoundError, ValidationError
from autofm.core.io import atomic_path
from autofm.ensemble.base import softmax
from autofm.ensemble.pool import Pool


def _read_ftc_split(path: Path) -> tuple[np.ndarray, np.ndarray]:
    frame = pd.read_csv(path)
    if "label" not in frame.columns:
        raise ValidationError(
            f"{path} has no 'label' column (expected C logit columns, then label)"
        )
    logits = frame.drop(columns=["label"]).to_numpy(dtype=np.float64)
    return logits, frame["label"].to_numpy()


def read_ftc(folder: str | os.PathLike) -> Pool:
    """Read the FTC metadataset layout: one subfolder per finetuning configuration, each with
    `val_predictions.csv` and `test_predictions.csv` (C logit columns, then `label`).

    Logits are turned into probabilities with a softmax. Configurations with a missing file are
    skipped with a warning; those with NaN logits are kept as failed. All configurations must
    agree on the labels.
    """
    folder = Path(folder)
    configs = sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    val_logits, test_logits, names, labels = [], [], [], None
    for config in configs:
        val_path, test_path = config / "val_predictions.csv", config / "test_predictions.csv"
        if not (val_path.is_file() and test_path.is_file()):
            warnings.warn(f"skipping {config.name}: val/test_predictions.csv missing", stacklevel=2)
            continue
        val, y_val = _read_ftc_split(val_path)
        test, y_test = _read_ftc_split(test_path)
        if labels is None:
            labels = (y_val, y_test)
        elif not (np.array_equal(labels[0], y_val) and np.array_equal(labels[1], y_test)):
            raise ValidationError(
                f"{config.name}'s labels differ from {names[0]}'s: all configurations must "
                "predict the same samples in the same order"
            )
        if val_logits and val.shape[1] != val_logits[0].shape[1]:
            raise ValidationError(
                f"{config.name} has {val.shape[1]} logit columns, {names[0]} has "
                f"{val_logits[0].shape[1]}"
            )
        val_logits.append(val)
        test_logits.append(test)
        names.append(config.name)
    if not names:
        raise DataNotFoundError(f"no FTC configuration folders with predictions under {folder}")
    val_stack, test_stack = np.stack(val_logits, axis=1), np.stack(test_logits, axis=1)
    n_classes = val_stack.shape[2]
    classes = np.unique(np.concatenate(labels))
    if not np.all(np.isin(classes, np.arange(n_classes))):
        raise ValidationError(f"FTC labels must be class indices 0..{n_classes - 1}")
    failed = [bool(np.isnan(v).any() or np.isnan(t).any()) for v, t in zip(val_logits, test_logits)]
    return Pool(
        softmax(val_stack),
        labels[0].astype(np.int64),
        softmax(test_stack),
        labels[1].astype(np.int64),
        names,
        [
            {"name": n, "family": n.split("_")[0], "status": "failed" if f else "ok"}
            for n, f in zip(names, failed)
        ],
        list(range(n_classes)),
        {"source": "ftc", "folder": str(folder)},
    )


def write_ftc(pool: Pool, folder: str | os.PathLike) -> Path:
    """Write a pool in the FTC layout (log-probabilities as logits); the inverse of read_ftc."""
    folder = Path(folder)
    for index, name in enumerate(pool.model_names):
        for split, predictions, labels in (
            ("val", pool.val_predictions, pool.val_labels),
            ("test", pool.test_predictions, pool.test_labels),
        ):
            logits = np.log(np.maximum(predictions[:, index, :], 1e-12))
            frame = pd.DataFrame(logits, columns=[str(c) for c in range(pool.n_classes)])
            frame["label"] = labels
            path = folder / name / f"{split}_predictions.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                frame.to_csv(tmp, index=False)
    return folder


def make_synthetic_ftc(
    n_val: int = 1000,
    n_test: int = 1000,
    n_models: int = 30,
    n_classes: int = 4,
    n_families: int = 5,
    collapsed_fraction: float = 0.15,
    random_state: int | None = 0,
) -> Pool:
    """An FTC-like metadataset: configurations from a few model families, with structure that
    real finetuning grids show.

    * each family is an expert on one region of the input space and weak elsewhere, and region
      membership is visible in the predictions (experts are sharp where they are competent), so
      per-sample weighting can beat any static mixture;
    * configurations of one family share an error term (correlated errors) plus their own noise;
    * each configuration has its own temperature (miscalibrated logits, over- or under-confident);
    * a fraction of configurations collapsed to chance (constant or random logits), as diverging
      learning rates do.
    """
    if n_models < 1 or n_classes < 2 or n_families < 1 or n_val < 1 or n_test < 1:
        raise ValidationError(
            "need n_models ≥ 1, n_classes ≥ 2, n_families ≥ 1 and n_val, n_test ≥ 1; got "
            f"{n_models}, {n_classes}, {n_families}, {n_val}, {n_test}"
        )
    rng = np.random.default_rng(random_state)
    n = n_val + n_test
    labels = rng.integers(n_classes, size=n)
    n_regions = n_families
    regions = rng.integers(n_regions, size=n)
    onehot = np.eye(n_classes)[labels]
    family_of = np.arange(n_models) % n_families
    family_noise = rng.normal(size=(n_families, n, n_classes))
    collapsed = rng.random(n_models) < collapsed_fraction
    if collapsed.all():
        collapsed[0] = False
    logits = np.empty((n, n_models, n_classes))
    models = []
    for m in range(n_models):
        family = int(family_of[m])
        skill = 0.7 + 0.6 * rng.random()
        expert = regions == family
        signal = np.where(expert, 4.0 * skill, 0.6 * skill)[:, None] * onehot
        noise = 0.8 * family_noise[family] + 0.8 * rng.normal(size=(n, n_classes))
        # outside its region a family is noisy, not merely unsure: errors are confident
        noise = noise * np.where(expert, 0.5, 1.5)[:, None]
        temperature = float(np.exp(rng.normal(0.0, 0.5)))
        status = "ok"
        if collapsed[m]:
            status = "collapsed"
            kind = rng.integers(2)
            logits[:, m, :] = (
                np.zeros((n, n_classes)) if kind == 0 else rng.normal(size=(n, n_classes))
            )
        else:
            logits[:, m, :] = (signal + noise) / temperature
        models.append(
            {
                "name": f"family{family}_config{m}",
                "family": f"family{family}",
                "temperature": temperature,
                "status": status,
            }
        )
    proba = softmax(logits)
    order = rng.permutation(n)
    val, test = order[:n_val], order[n_val:]
    return Pool(
        proba[val],
        labels[val],
        proba[test],
        labels[test],
        [model["name"] for model in models],
        models,
        list(range(n_classes)),
        {
            "source": "synthetic-ftc",
            "n_families": n_families,
            "collapsed_fraction": collapsed_fraction,
            "random_state": random_state,
        },
    )
