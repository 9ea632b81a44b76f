"""OpenFE as the reference feature engineer: its two-stage selection, reimplemented faithfully.

This follows `openfe/openfe.py` of IIIS-Li-Group/OpenFE (PyPI `openfe` 0.0.12) step by step, with
the same random streams, so that on the same data it ranks the same features (the tests check this
against the package when it is installed):

1. Candidates: the first-order pool (`operators.candidate_pool`), numeric columns with at most 100
   distinct values being ordinal (both numerical and categorical).
2. Split: 80 % train / 20 % validation (`train_test_split`, stratified for classification).
3. Init scores: with `feature_boosting`, out-of-fold raw predictions of a LightGBM model on the
   original columns (5 folds); without, the constant prior (mean, or log-odds of the base rate).
4. Stage I, successive feature-wise halving: each candidate alone is scored by how much a small
   LightGBM (100 trees, 16 leaves, early stopping 3) started from the init scores improves the
   validation loss, first on 1/`n_data_blocks` of the rows, then on doubling subsamples keeping
   the better half, until at most `min_candidate_features` remain, which are rescored on all rows;
   candidates with a positive score survive.
5. Stage II: one LightGBM (1000 trees, early stopping 50) on the original columns plus the
   survivors, from the init scores; survivors are ranked by gain importance.

Deliberate differences from the package: no temporary files or worker processes (`n_jobs` runs
threads inside LightGBM); a multiclass prior init score is the log of the class frequencies (the
package passes the frequencies themselves as raw scores); regression works with current
scikit-learn (the package calls `mean_squared_error(squared=False)`, removed in 1.6); a missing
category gives a missing `Combine` code rather than the package's code -1.

`backend="openfe"` runs the PyPI package itself (classification only, see above), as an oracle.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import tempfile
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.special import expit, softmax
from sklearn.metrics import log_loss
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from autofm.core.errors import ValidationError
from autofm.core.progress import progress
from autofm.core.validation import check_positive_int
from autofm.fe.operators import (
    OPERATORS,
    FeatureSpec,
    FeatureTransformer,
    candidate_pool,
    column_kinds,
)

TASKS = ("classification", "regression")
BACKENDS = ("builtin", "openfe")
LIGHTGBM_FORBIDDEN = set('",:[]{}')  # characters LightGBM refuses in a feature name


def openfe_select(
    X: pd.DataFrame,
    y,
    task: str = "classification",
    n_features: int = 10,
    seed: int = 0,
    n_jobs: int = 1,
    **options,
) -> list[FeatureSpec]:
    """The `n_features` features OpenFE ranks highest on (X, y); `options` as in `openfe_rank`."""
    n_features = check_positive_int(n_features, "n_features")
    ranking = openfe_rank(X, y, task=task, seed=seed, n_jobs=n_jobs, **options)
    return [spec for spec, _ in ranking[:n_features]]


def openfe_rank(
    X: pd.DataFrame,
    y,
    task: str = "classification",
    seed: int = 0,
    n_jobs: int = 1,
    *,
    feature_boosting: bool = False,
    n_data_blocks: int = 8,
    min_candidate_features: int = 2000,
    backend: str = "builtin",
) -> list[tuple[FeatureSpec, float]]:
    """OpenFE's ranking of its first-order candidates on (X, y): (feature, gain importance) pairs
    for the stage-I survivors, most important first.

    feature_boosting: start every model from out-of-fold predictions of a LightGBM model of the
        original columns (OpenFE's FeatureBoost), so that features are scored by what they add to
        it; off by default, as in the package, where models start from the constant prior.
    n_data_blocks: the smallest stage-I subsample is 1/n_data_blocks of the rows (a power of 2).
    min_candidate_features: halving stops once this few candidates remain.
    backend: "builtin" (this module) or "openfe" (the PyPI package, needs `pip install openfe`).
    """
    frame, target, task = _check_inputs(X, y, task, n_data_blocks)
    n_jobs = check_positive_int(n_jobs, "n_jobs")
    if backend not in BACKENDS:
        raise ValidationError(f"backend must be one of {BACKENDS}, got {backend!r}")
    lightgbm = _import_lightgbm()
    if backend == "openfe":
        return _rank_with_package(
            frame,
            target,
            task,
            seed,
            n_jobs,
            feature_boosting,
            n_data_blocks,
            min_candidate_features,
        )
    # LightGBM refuses feature names with JSON's special characters: such columns get
    # positional names for the run (other names are kept, so ties break as in the package)
    renamed = {c: f"column_{i}" for i, c in enumerate(frame.columns) if LIGHTGBM_FORBIDDEN & set(c)}
    frame = frame.rename(columns=renamed)
    run = _OpenFERun(lightgbm, frame, target, task, seed, n_jobs)
    run.init_scores = run.out_of_fold_scores() if feature_boosting else run.prior_scores()
    survivors = run.stage1(
        candidate_pool(column_kinds(frame), unique=False), n_data_blocks, min_candidate_features
    )
    original = {new: old for old, new in renamed.items()}
    return [
        (
            FeatureSpec(spec.operator, tuple(original.get(c, c) for c in spec.inputs), spec.name),
            gain,
        )
        for spec, gain in run.stage2(survivors)
    ]


def _check_inputs(X, y, task: str, n_data_blocks: int) -> tuple[pd.DataFrame, np.ndarray, str]:
    if not isinstance(X, pd.DataFrame):
        raise ValidationError(f"X must be a pandas DataFrame, got {type(X).__name__}")
    if X.shape[1] == 0:
        raise ValidationError("X has no columns; pass the table's feature columns")
    if task not in TASKS:
        raise ValidationError(f"task must be one of {TASKS}, got {task!r}")
    n_data_blocks = check_positive_int(n_data_blocks, "n_data_blocks")
    if n_data_blocks & (n_data_blocks - 1):
        raise ValidationError(
            f"n_data_blocks must be a power of 2 (1, 2, 4, 8, ...), got {n_data_blocks}"
        )
    target = pd.Series(np.asarray(y).ravel() if not isinstance(y, pd.Series) else y.to_numpy())
    if len(target) != len(X):
        raise ValidationError(f"y has {len(target)} values but X has {len(X)} rows")
    if target.isna().any():
        raise ValidationError(f"y has {int(target.isna().sum())} missing values; drop those rows")
    min_rows = 20 * n_data_blocks
    if len(X) < min_rows:
        raise ValidationError(
            f"OpenFE needs at least {min_rows} rows with n_data_blocks={n_data_blocks}, X has "
            f"{len(X)}; pass more rows or a smaller n_data_blocks"
        )
    if task == "classification":
        classes, codes = np.unique(target.to_numpy(), return_inverse=True)
        counts = np.bincount(codes)
        if len(classes) < 2 or counts.min() < 5:
            raise ValidationError(
                f"classification needs at least 2 classes with 5 rows each, y has class counts "
                f"{dict(zip(classes.tolist(), counts.tolist()))}; use task='regression' or more rows"
            )
        values = codes.astype("int64")
    else:
        try:
            values = target.to_numpy(dtype="float64")
        except (TypeError, ValueError) as err:
            raise ValidationError(f"regression needs a numeric y ({err})") from err
    return X.reset_index(drop=True), values, task


def _import_lightgbm():
    try:
        import lightgbm
    except ImportError as err:
        raise ValidationError(
            "the OpenFE reference needs lightgbm; install it with `pip install 'autofm[fe]'`"
        ) from err
    return lightgbm


def _subsample(positions: Sequence[int], n_data_blocks: int, rng: random.Random) -> list[list]:
    """OpenFE's `_subsample`: nested shuffled subsamples of 1/n, 2/n, ..., all of the rows."""
    positions = list(positions)
    length = int(len(positions) / n_data_blocks)
    rng.shuffle(positions)
    blocks = [positions[:length]]
    while n_data_blocks != 1:
        n_data_blocks = int(n_data_blocks / 2)
        length = int(length * 2)
        blocks.append(positions if n_data_blocks == 1 else positions[:length])
    return blocks


def _delete_same(scored: list, threshold: float = 1e-20) -> list:
    """OpenFE's `delete_same`: of consecutive (sorted) candidates with equal scores keep the first."""
    kept = scored[:1]
    for item in scored[1:]:
        if abs(item[1] - kept[-1][1]) >= threshold:
            kept.append(item)
    return kept


class _OpenFERun:
    """The state of one OpenFE selection: data, split, init scores and the shared random stream."""

    def __init__(self, lightgbm, frame: pd.DataFrame, target: np.ndarray, task, seed, n_jobs):
        self.lgb = lightgbm
        self.frame = frame
        self.target = target
        self.task = task
        self.seed = seed
        self.n_jobs = n_jobs
        # OpenFE seeds Python's `random` once and draws every shuffle from it, in this order
        self.rng = random.Random(seed)
        n_classes = len(np.unique(target)) if task == "classification" else 0
        self.n_classes = n_classes
        if task == "regression":
            self.metric = "rmse"
        else:
            self.metric = "multi_logloss" if n_classes > 2 else "binary_logloss"
        stratify = target.reshape(-1, 1) if task == "classification" else None
        train, val = train_test_split(
            np.arange(len(frame)), test_size=0.2, random_state=seed, stratify=stratify
        )
        self.train_index, self.val_index = train.tolist(), val.tolist()
        self.categorical = list(frame.select_dtypes(exclude=np.number).columns)
        self.init_scores: np.ndarray | None = None

    def _model(self, **params):
        params = {**params, "metric": self.metric, "verbose": -1}
        if self.task == "classification":
            return self.lgb.LGBMClassifier(**params)
        return self.lgb.LGBMRegressor(**params)

    def _fit(self, model, train_x, train_rows, val_x, val_rows, stopping_rounds):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # LightGBM ≥ 4.7 renames eval_set; both work
            model.fit(
                train_x,
                self.target[train_rows],
                init_score=self.init_scores[train_rows],
                eval_init_score=[self.init_scores[val_rows]],
                eval_set=[(val_x, self.target[val_rows])],
                callbacks=[self.lgb.early_stopping(stopping_rounds, verbose=False)],
            )
        return model

    def _base_columns(self) -> pd.DataFrame:
        """The original columns as OpenFE gives them to LightGBM: categoricals as category codes."""
        data = self.frame.copy()
        for column in self.categorical:
            data[column] = data[column].astype("category").cat.codes.astype("category")
        return data

    def prior_scores(self) -> np.ndarray:
        """OpenFE's init scores without feature boosting: the constant prior."""
        y = self.target
        if self.task == "regression":
            return np.full(len(y), y.mean())
        if self.n_classes > 2:
            prior = np.bincount(y) / len(y)
            return np.tile(np.log(prior), (len(y), 1))
        mean = y.mean()
        return np.full(len(y), np.log(mean / (1 - mean)))

    def out_of_fold_scores(self) -> np.ndarray:
        """OpenFE's FeatureBoost init scores: 5-fold out-of-fold raw predictions of LightGBM."""
        data = self._base_columns()
        y = self.target
        shape = (len(y), self.n_classes) if self.n_classes > 2 else (len(y),)
        scores = np.zeros(shape)
        folds = StratifiedKFold(n_splits=5) if self.task == "classification" else KFold(n_splits=5)
        model = self._model(
            n_estimators=10000, learning_rate=0.1, seed=self.seed, n_jobs=self.n_jobs
        )
        for train_rows, val_rows in folds.split(data, y):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.fit(
                    data.iloc[train_rows],
                    y[train_rows],
                    eval_set=[(data.iloc[val_rows], y[val_rows])],
                    callbacks=[self.lgb.early_stopping(200, verbose=False)],
                )
            if self.task == "classification":
                scores[val_rows] = model.predict_proba(data.iloc[val_rows], raw_score=True)
            else:
                scores[val_rows] = model.predict(data.iloc[val_rows])
        return scores

    def _init_loss(self, rows) -> float:
        init, y = self.init_scores[rows], self.target[rows]
        if self.metric == "binary_logloss":
            return log_loss(y, expit(init), labels=[0, 1])
        if self.metric == "multi_logloss":
            return log_loss(y, softmax(init, axis=1), labels=list(range(self.n_classes)))
        return float(np.sqrt(np.mean((y - init) ** 2)))

    def _feature(self, spec: FeatureSpec, rows: list[int]) -> pd.Series:
        """`spec` computed on these rows, its statistics taken from the same rows (as OpenFE)."""
        block = self.frame.iloc[rows]
        values = FeatureTransformer([spec]).fit(block).transform(block).iloc[:, 0]
        return values.reset_index(drop=True)

    def _score(self, spec: FeatureSpec, train_rows: list[int], val_rows: list[int]) -> float:
        values = self._feature(spec, train_rows + val_rows)
        if spec.operator == "Combine":
            values = values.astype("category")
        column = values.to_frame("feature")
        model = self._model(
            n_estimators=100,
            importance_type="gain",
            num_leaves=16,
            seed=1,
            deterministic=True,
            n_jobs=1,
        )
        n_train = len(train_rows)
        self._fit(model, column.iloc[:n_train], train_rows, column.iloc[n_train:], val_rows, 3)
        return self._init_loss(val_rows) - model.best_score_["valid_0"][self.metric]

    def _score_all(self, candidates: list[FeatureSpec], train_rows, val_rows, desc: str):
        self.rng.shuffle(candidates)  # OpenFE shuffles before scoring; ties keep this order
        scored = [
            (spec, self._score(spec, train_rows, val_rows))
            for spec in progress(candidates, desc=desc)
        ]
        return sorted(scored, key=lambda item: item[1], reverse=True)

    def stage1(
        self, candidates: list[FeatureSpec], n_data_blocks: int, min_candidate_features: int
    ) -> list[FeatureSpec]:
        """Successive feature-wise halving on growing subsamples; the candidates scoring > 0."""
        train_blocks = _subsample(self.train_index, n_data_blocks, self.rng)
        val_blocks = _subsample(self.val_index, n_data_blocks, self.rng)
        scored = self._score_all(candidates, train_blocks[0], val_blocks[0], "OpenFE stage I")
        scored = _delete_same(scored)
        block = 1
        while block != len(train_blocks):
            n_reserved = max(int(len(scored) * 0.5), min(len(scored), min_candidate_features))
            train_rows, val_rows = train_blocks[block], val_blocks[block]
            block += 1
            if n_reserved <= min_candidate_features:
                train_rows, val_rows = train_blocks[-1], val_blocks[-1]
                block = len(train_blocks)
            kept = [spec for spec, _ in scored[:n_reserved]]
            scored = self._score_all(kept, train_rows, val_rows, "OpenFE stage I")
        survivors = [spec for spec, score in scored if score > 0]
        return survivors or [spec for spec, _ in scored[:100]]

    def stage2(self, candidates: list[FeatureSpec]) -> list[tuple[FeatureSpec, float]]:
        """One LightGBM on the original columns plus the candidates; rank by gain importance."""
        self.rng.shuffle(candidates)
        rows = self.train_index + self.val_index
        new = pd.DataFrame(
            {
                f"autoFE-{i}": self._feature(spec, rows).to_numpy()
                for i, spec in enumerate(candidates)
            },
            index=rows,
        )
        data = pd.concat([new, self._base_columns().loc[rows]], axis=1)
        data = data.replace([np.inf, -np.inf], np.nan)
        model = self._model(
            n_estimators=1000, importance_type="gain", num_leaves=16, seed=1, n_jobs=self.n_jobs
        )
        self._fit(
            model,
            data.loc[self.train_index],
            self.train_index,
            data.loc[self.val_index],
            self.val_index,
            50,
        )
        importances = model.feature_importances_[: len(candidates)]
        ranking = [(spec, float(gain)) for spec, gain in zip(candidates, importances)]
        return sorted(ranking, key=lambda item: item[1], reverse=True)


def _spec_from_node(node) -> FeatureSpec:
    """An OpenFE `Node` of depth 1 as a FeatureSpec (group column first, see operators)."""
    inputs = tuple(child.name for child in node.children)
    if OPERATORS[node.name].family == "groupby" or node.name == "GroupByThenNUnique":
        inputs = inputs[::-1]
    return FeatureSpec(node.name, inputs)


def _rank_with_package(
    frame, target, task, seed, n_jobs, feature_boosting, n_data_blocks, min_candidate_features
) -> list[tuple[FeatureSpec, float]]:
    if task != "classification":
        raise ValidationError(
            "openfe 0.0.12 fails on regression with scikit-learn ≥ 1.6 (it calls "
            "mean_squared_error(squared=False)); use backend='builtin'"
        )
    try:
        from openfe import OpenFE
    except ImportError as err:
        raise ValidationError(
            "backend='openfe' needs the openfe package; `pip install openfe`, or use backend='builtin'"
        ) from err
    selector = OpenFE()
    with (
        warnings.catch_warnings(),
        tempfile.TemporaryDirectory(prefix="autofm-openfe-") as folder,
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
    ):
        warnings.simplefilter("ignore")
        selector.fit(
            data=frame.copy(),
            label=pd.DataFrame({"target": target}),
            task=task,
            feature_boosting=feature_boosting,
            n_data_blocks=n_data_blocks,
            min_candidate_features=min_candidate_features,
            tmp_save_path=os.path.join(folder, "data.feather"),
            n_jobs=n_jobs,
            seed=seed,
            verbose=False,
        )
    return [
        (_spec_from_node(node), float(gain)) for node, gain in selector.new_features_scores_list
    ]
