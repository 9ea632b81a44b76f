"""A pool of base-model predictions and its on-disk format.

A pool folder holds `predictions.npz` (val_predictions [N_val, M, C], val_labels, test_predictions
[N_test, M, C], test_labels) and `pool.json` (model names and descriptions, classes, provenance).
Failed models are kept, with NaN predictions and status "failed"; `Pool.usable()` drops them.
Pools come from `pool_builder.build_pool` (scikit-learn models on a table) or from `ftc` (the
FTC metadataset layout, or its synthetic stand-in).
"""

from __future__ import annotations

import os
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from autofm.core.errors import DataNotFoundError, ValidationError
from autofm.core.io import atomic_path, atomic_write_json, read_json

POOL_FORMAT = "autofm.ensemble.pool/1"
PREDICTION_ARRAYS = ("val_predictions", "val_labels", "test_predictions", "test_labels")


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
        "classes": [python_scalar(c) for c in pool.classes],
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
    # imported here: the FTC reader builds Pools (and needs pandas), so it imports this module
    from autofm.ensemble.ftc import read_ftc

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
    keys = ("format", "model_names", "models", "classes")
    meta = read_json(folder / "pool.json", "pool file", keys=keys)
    if meta["format"] != POOL_FORMAT:
        raise ValidationError(f"{folder}/pool.json is not an autofm pool ({meta['format']!r})")
    arrays = _read_predictions(folder / "predictions.npz")
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


def _read_predictions(path: Path) -> dict[str, np.ndarray]:
    """The four arrays of a pool's predictions.npz, read in full; anything else (another file,
    a truncated archive, missing arrays) is refused as not an autofm pool. Nothing pickled is
    ever loaded."""
    if not path.is_file():
        raise DataNotFoundError(f"{path} not found: a pool folder holds pool.json and this file")
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            why = "one array, not an .npz archive"
        else:
            with archive:
                missing = [name for name in PREDICTION_ARRAYS if name not in archive.files]
                if missing:
                    why = f"no {', '.join(missing)} array"
                else:
                    return {name: archive[name] for name in PREDICTION_ARRAYS}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error):
        why = "not a complete NumPy .npz archive"
    raise ValidationError(
        f"{path} is not an autofm pool's predictions ({why}); rebuild the pool with "
        "`autofm ensemble build-pool`"
    )


def python_scalar(value: Any) -> Any:
    """A NumPy scalar as the Python value it holds (so that it can be written as JSON)."""
    return value.item() if hasattr(value, "item") else value
