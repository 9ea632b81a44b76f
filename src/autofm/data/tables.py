"""Tabular data: CSV/Parquet files, scikit-learn's bundled sets by name, OpenML by id."""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

from autofm.core.errors import DataNotFoundError, ValidationError
from autofm.core.io import atomic_write_bytes
from autofm.core.validation import check_columns

SKLEARN_DATASETS = ("breast_cancer", "iris", "wine", "digits", "diabetes")
OPENML_CACHE = Path(os.environ.get("AUTOFM_CACHE", Path.home() / ".cache" / "autofm")) / "openml"


def read_table(path: str | os.PathLike, what: str = "table") -> pd.DataFrame:
    """Read a CSV, TSV or Parquet file with at least one row into a DataFrame; errors call the
    file a `what` file."""
    path = Path(path)
    if not path.is_file():
        hint = (
            f" (bundled datasets by name: {', '.join(SKLEARN_DATASETS)})" if what == "table" else ""
        )
        raise DataNotFoundError(f"{what} file {path} not found{hint}")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        elif suffix in (".tsv", ".tab"):
            frame = pd.read_csv(path, sep="\t")
        elif suffix == ".arff":
            frame = read_arff(path)
        else:
            frame = pd.read_csv(path)
    except (ValueError, OSError, UnicodeDecodeError) as err:
        raise ValidationError(f"cannot read {what} file {path}: {err}") from err
    if frame.empty:
        raise ValidationError(f"{what} file {path} has no rows")
    return frame


def split_target(frame: pd.DataFrame, target: str | None) -> tuple[pd.DataFrame, pd.Series]:
    """Split off the target column (default: the last column)."""
    if frame.shape[1] < 2:
        raise ValidationError(f"table needs a feature and a target column, got {frame.shape[1]}")
    if target is None:
        target = frame.columns[-1]
    check_columns(frame, [target], "table")
    y = frame[target]
    if y.isna().any():
        raise ValidationError(f"target column {target!r} has {int(y.isna().sum())} missing values")
    return frame.drop(columns=[target]), y


def load_sklearn(name: str) -> tuple[pd.DataFrame, pd.Series]:
    """One of scikit-learn's bundled datasets by name, as (X, y)."""
    import sklearn.datasets as skd

    if name not in SKLEARN_DATASETS:
        raise DataNotFoundError(
            f"unknown bundled dataset {name!r}; choose one of {', '.join(SKLEARN_DATASETS)}"
        )
    bunch = getattr(skd, f"load_{name}")(as_frame=True)
    return bunch.data, bunch.target.rename("target")


def load_table(
    source: str | os.PathLike, target: str | None = None
) -> tuple[pd.DataFrame, pd.Series]:
    """(X, y) from a file path, a bundled dataset name, or 'openml:<id>'; target defaults to last."""
    text = str(source)
    if text in SKLEARN_DATASETS:
        return load_sklearn(text)
    if text.startswith("openml:"):
        frame, default_target = load_openml(int(text.split(":", 1)[1]))
        return split_target(frame, target or default_target)
    return split_target(read_table(source), target)


def read_arff(path: str | os.PathLike) -> pd.DataFrame:
    """Read an ARFF file (OpenML's format): numeric columns as floats, nominal ones as strings."""
    from scipy.io import arff

    try:
        data, meta = arff.loadarff(str(path))
    except (ValueError, NotImplementedError, arff.ParseArffError) as err:
        raise ValidationError(f"cannot parse ARFF file {path}: {err}") from err
    frame = pd.DataFrame(data)
    for column, kind in zip(meta.names(), meta.types()):
        if kind == "nominal":
            decoded = frame[column].map(lambda v: v.decode() if isinstance(v, bytes) else v)
            frame[column] = decoded.replace("?", np.nan)
    return frame


def load_openml(
    data_id: int, cache_dir: str | os.PathLike | None = None
) -> tuple[pd.DataFrame, str | None]:
    """Dataset `data_id` from OpenML as (frame, default target); cached as ARFF + JSON.

    With the two cache files present (`<id>.arff`, `<id>.json`), no network is used.
    """
    cache = Path(cache_dir) if cache_dir is not None else OPENML_CACHE
    arff_path, desc_path = cache / f"{data_id}.arff", cache / f"{data_id}.json"
    if not (arff_path.is_file() and desc_path.is_file()):
        base = "https://www.openml.org/api/v1/json/data"
        try:
            with urllib.request.urlopen(f"{base}/{data_id}", timeout=30) as response:
                description = json.load(response)["data_set_description"]
            with urllib.request.urlopen(description["url"], timeout=120) as response:
                arff_bytes = response.read()
        except OSError as err:
            raise DataNotFoundError(
                f"cannot download OpenML dataset {data_id} ({err}); check the network or place "
                f"{arff_path.name} and {desc_path.name} in {cache}"
            ) from err
        atomic_write_bytes(arff_path, arff_bytes)
        atomic_write_bytes(desc_path, json.dumps(description).encode())
    description = json.loads(desc_path.read_text())
    return read_arff(arff_path), description.get("default_target_attribute")
