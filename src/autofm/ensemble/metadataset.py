"""Metadatasets of base-model predictions: one on-disk format, built, read or generated.

A pool folder holds `predictions.npz` (val_predictions [N_val, M, C], val_labels, test_predictions
[N_test, M, C], test_labels) and `pool.json` (model names and descriptions, classes, provenance).
Failed models are kept, with NaN predictions and status "failed"; `Pool.usable()` drops them.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.discriminant_analysis import QuadraticDiscriminantAnalysis
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import (
    ExtraTreesClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from autofm.core.errors import DataNotFoundError, ValidationError
from autofm.core.io import atomic_path, atomic_write_json
from autofm.core.progress import progress
from autofm.core.validation import check_array
from autofm.ensemble.base import softmax

POOL_FORMAT = "autofm.ensemble.pool/1"


@dataclass
class Pool:
    """Validation and test predictions of M base models on the same samples, in one format."""

    val_predictions: np.ndarray
    val_labels: np.ndarray
    test_predictions: np.ndarray
    test_labels: np.ndarray
    model_names: list[str]
    models: list[dict[str, Any]] = field(default_factory=list)
    classes: list[Any] = field(default_factory=list)
    description: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        val, test = self.val_predictions, self.test_predictions
        if val.ndim != 3 or test.ndim != 3:
            raise ValidationError(
                f"pool predictions must be [N, M, C]; got val {val.shape}, test {test.shape}"
            )
        if val.shape[1:] != test.shape[1:]:
            raise ValidationError(
                f"validation predictions have (models, classes) {val.shape[1:]} but test "
                f"predictions have {test.shape[1:]}: both must come from the same models"
            )
        if len(self.val_labels) != val.shape[0] or len(self.test_labels) != test.shape[0]:
            raise ValidationError(
                f"labels do not match predictions: {len(self.val_labels)} val labels for "
                f"{val.shape[0]} rows, {len(self.test_labels)} test labels for {test.shape[0]} rows"
            )
        if len(self.model_names) != val.shape[1]:
            raise ValidationError(
                f"{len(self.model_names)} model names for {val.shape[1]} models in the pool"
            )
        if not self.models:
            self.models = [{"name": name, "status": "ok"} for name in self.model_names]
        if not self.classes:
            self.classes = list(range(val.shape[2]))

    @property
    def n_models(self) -> int:
        return self.val_predictions.shape[1]

    @property
    def n_classes(self) -> int:
        return self.val_predictions.shape[2]

    def failed(self) -> np.ndarray:
        """Boolean mask [M] of models with any NaN prediction (failed to train or predict)."""
        bad = np.isnan(self.val_predictions).any(axis=(0, 2))
        return bad | np.isnan(self.test_predictions).any(axis=(0, 2))

    def usable(self) -> Pool:
        """The pool without failed models (ValidationError if none is left)."""
        keep = ~self.failed()
        if not keep.any():
            raise ValidationError("every model in the pool failed; nothing to ensemble")
        return self.subset(np.flatnonzero(keep))

    def subset(self, models) -> Pool:
        """A pool with only the given model indices, in that order."""
        models = np.asarray(models, dtype=int)
        return Pool(
            self.val_predictions[:, models, :],
            self.val_labels,
            self.test_predictions[:, models, :],
            self.test_labels,
            [self.model_names[i] for i in models],
            [self.models[i] for i in models],
            list(self.classes),
            dict(self.description),
        )


def save_pool(pool: Pool, folder: str | os.PathLike) -> Path:
    """Write `predictions.npz` and `pool.json` into `folder` (each atomically); return the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / "predictions.npz") as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(
                handle,
                val_predictions=pool.val_predictions.astype(np.float32),
                val_labels=pool.val_labels.astype(np.int64),
                test_predictions=pool.test_predictions.astype(np.float32),
                test_labels=pool.test_labels.astype(np.int64),
            )
    meta = {
        "format": POOL_FORMAT,
        "model_names": pool.model_names,
        "models": pool.models,
        "classes": [_jsonable(c) for c in pool.classes],
        "description": pool.description,
        "shapes": {
            "val": list(pool.val_predictions.shape),
            "test": list(pool.test_predictions.shape),
        },
    }
    atomic_write_json(folder / "pool.json", meta)
    return folder


def load_pool(folder: str | os.PathLike) -> Pool:
    """Read a pool written by `save_pool`; FTC-layout folders go through `read_ftc`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataNotFoundError(f"pool folder {folder} not found")
    if not (folder / "pool.json").is_file():
        if any(folder.glob("*/val_predictions.csv")):
            return read_ftc(folder)
        raise DataNotFoundError(
            f"{folder} holds neither pool.json + predictions.npz (autofm ensemble build-pool) nor "
            "FTC-layout subfolders with val_predictions.csv"
        )
    try:
        meta = json.loads((folder / "pool.json").read_text())
        arrays = np.load(folder / "predictions.npz", allow_pickle=False)
    except (OSError, ValueError, json.JSONDecodeError) as err:
        raise ValidationError(f"cannot read pool in {folder}: {err}") from err
    if meta.get("format") != POOL_FORMAT:
        raise ValidationError(f"{folder}/pool.json is not an autofm pool ({meta.get('format')!r})")
    return Pool(
        arrays["val_predictions"].astype(np.float64),
        arrays["val_labels"],
        arrays["test_predictions"].astype(np.float64),
        arrays["test_labels"],
        list(meta["model_names"]),
        list(meta["models"]),
        list(meta["classes"]),
        dict(meta.get("description", {})),
    )


def _jsonable(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


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
    if n_models < 1 or n_classes < 2 or n_families < 1:
        raise ValidationError("need n_models >= 1, n_classes >= 2, n_families >= 1")
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


def default_model_grid(random_state: int = 0, size: str = "full") -> list[tuple[str, str, Any]]:
    """(name, family, unfitted estimator) for a diverse pool, including deliberately poor models.

    `size` 'full' (about 40 models) or 'small' (about 14, for tests and the tour).
    """
    scaled = lambda model: make_pipeline(SimpleImputer(), StandardScaler(), model)  # noqa: E731
    imputed = lambda model: make_pipeline(SimpleImputer(), model)  # noqa: E731
    grid: list[tuple[str, str, Any]] = []
    reg = (0.001, 0.1, 10.0) if size == "small" else (0.0003, 0.003, 0.03, 0.3, 3.0, 30.0)
    for c in reg:
        grid.append((f"logreg_C{c}", "logreg", scaled(LogisticRegression(C=c, max_iter=500))))
    ks = (1, 15) if size == "small" else (1, 3, 7, 15, 31, 63)
    for k in ks:
        grid.append((f"knn_k{k}", "knn", scaled(KNeighborsClassifier(n_neighbors=k))))
    depths = (1, None) if size == "small" else (1, 2, 4, 8, None)
    for depth in depths:
        tree = DecisionTreeClassifier(max_depth=depth, random_state=random_state)
        grid.append((f"tree_depth{depth}", "tree", imputed(tree)))
    forests = (
        ((20, "sqrt"),) if size == "small" else ((10, "sqrt"), (50, "sqrt"), (50, 0.5), (50, 1.0))
    )
    for n_trees, features in forests:
        for family, cls in (("rf", RandomForestClassifier), ("extra", ExtraTreesClassifier)):
            model = cls(
                n_estimators=n_trees,
                max_features=features,
                min_samples_leaf=2,
                random_state=random_state,
                n_jobs=1,
            )
            grid.append((f"{family}_{n_trees}_{features}", family, imputed(model)))
    boosting = ((0.1, 50),) if size == "small" else ((0.03, 50), (0.1, 100), (0.3, 200), (1.0, 100))
    for lr, iters in boosting:
        model = HistGradientBoostingClassifier(
            learning_rate=lr, max_iter=iters, early_stopping=False, random_state=random_state
        )
        grid.append((f"hgb_lr{lr}_it{iters}", "hgb", model))
    mlps = ((32, 1e-4),) if size == "small" else ((16, 1e-4), (64, 1e-4), (64, 1.0))
    for width, alpha in mlps:
        model = MLPClassifier(
            hidden_layer_sizes=(width,), alpha=alpha, max_iter=300, random_state=random_state
        )
        grid.append((f"mlp_w{width}_a{alpha}", "mlp", scaled(model)))
    grid.append(("gaussian_nb", "naive_bayes", imputed(GaussianNB())))
    # QDA often fails on collinear or one-hot tables: such models are kept as failed
    grid.append(("qda", "qda", imputed(QuadraticDiscriminantAnalysis(reg_param=0.0))))
    grid.append(("dummy_prior", "dummy", DummyClassifier(strategy="prior")))
    if size != "small":
        grid.append(
            (
                "dummy_uniform",
                "dummy",
                DummyClassifier(strategy="uniform", random_state=random_state),
            )
        )
    return grid


def build_pool(
    X,
    y,
    *,
    models: list[tuple[str, str, Any]] | None = None,
    val_size: float = 0.25,
    test_size: float = 0.25,
    random_state: int = 0,
    grid_size: str = "full",
) -> Pool:
    """Train a diverse pool of scikit-learn models on a train split and store their validation and
    test predictions.

    X: numeric features [n, d] (NaN allowed, imputed per model); y: labels (any type, encoded as
    class indices in sorted order). The split is stratified. A model that raises or returns
    non-finite probabilities is kept with status "failed" and NaN predictions; one that predicts
    the same distribution for every sample is kept with status "constant".
    """
    features = check_array(X, "X", ndim=2, allow_nan=True, min_rows=8)
    raw_labels = np.asarray(y)
    if len(raw_labels) != len(features):
        raise ValidationError(f"X has {len(features)} rows but y has {len(raw_labels)} labels")
    if pd.isna(raw_labels).any():
        raise ValidationError("y has missing labels; drop those rows first")
    classes, labels = np.unique(raw_labels, return_inverse=True)
    if len(classes) < 2:
        raise ValidationError(f"y has a single class ({classes[0]!r}); need at least two")
    counts = np.bincount(labels)
    if counts.min() < 3:
        raise ValidationError(
            f"class {classes[int(np.argmin(counts))]!r} has {counts.min()} sample(s); each class "
            "needs at least 3 to appear in the train, validation and test splits"
        )
    if not (0 < val_size < 1 and 0 < test_size < 1 and val_size + test_size < 1):
        raise ValidationError("val_size and test_size must be in (0, 1) and sum to less than 1")
    index = np.arange(len(labels))
    train_val, test = train_test_split(
        index, test_size=test_size, stratify=labels, random_state=random_state
    )
    train, val = train_test_split(
        train_val,
        test_size=val_size / (1 - test_size),
        stratify=labels[train_val],
        random_state=random_state,
    )
    grid = models if models is not None else default_model_grid(random_state, grid_size)
    n_classes = len(classes)
    val_predictions = np.full((len(val), len(grid), n_classes), np.nan)
    test_predictions = np.full((len(test), len(grid), n_classes), np.nan)
    descriptions = []
    for position, (name, family, estimator) in enumerate(progress(grid, desc="pool")):
        started = time.perf_counter()
        info: dict[str, Any] = {"name": name, "family": family, "params": repr(estimator)}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fitted = clone(estimator).fit(features[train], labels[train])
                val_proba = _full_proba(fitted, features[val], n_classes)
                test_proba = _full_proba(fitted, features[test], n_classes)
            if not (np.isfinite(val_proba).all() and np.isfinite(test_proba).all()):
                raise FloatingPointError("non-finite probabilities")
            val_predictions[:, position, :] = val_proba
            test_predictions[:, position, :] = test_proba
            constant = np.ptp(val_proba, axis=0).max() < 1e-9
            info["status"] = "constant" if constant else "ok"
        except Exception as err:  # a failed model is data, not a crash: keep it marked
            info["status"] = "failed"
            info["error"] = f"{type(err).__name__}: {err}"[:300]
        info["fit_seconds"] = time.perf_counter() - started
        descriptions.append(info)
    return Pool(
        val_predictions,
        labels[val],
        test_predictions,
        labels[test],
        [name for name, _, _ in grid],
        descriptions,
        [_jsonable(c) for c in classes],
        {
            "source": "build_pool",
            "n_train": len(train),
            "n_val": len(val),
            "n_test": len(test),
            "random_state": random_state,
        },
    )


def _full_proba(model, features: np.ndarray, n_classes: int) -> np.ndarray:
    """predict_proba with a column for every class (classes absent from the train split get 0)."""
    proba = model.predict_proba(features)
    full = np.zeros((len(features), n_classes))
    full[:, np.asarray(model.classes_, dtype=int)] = proba
    sums = full.sum(axis=1, keepdims=True)
    return full / np.where(sums > 0, sums, 1.0)
