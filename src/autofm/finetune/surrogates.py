"""Meta-learned surrogates of Quick-Tune: a deep-kernel GP for the next validation score and an
MLP for the seconds per epoch.

Both read a configuration (`space.config_features`) and its task's meta-features, normalised
by a `TaskFeatureScaler` fitted on the meta-train tasks only and saved with the surrogate, so a
new task is encoded exactly like the tasks the surrogate learned from. The performance surrogate
also reads the configuration's partial learning curve, zero-padded to the maximum number of
epochs, how many of its epochs are observed and the epoch to predict (both as fractions of the
maximum): one sample per curve prefix, (y_1..y_{e-1}, 0..0) → y_e, as in Quick-Tune, plus
(no epoch → y_e), which `optimizer.portfolio` asks for.
"""

from __future__ import annotations

import contextlib
import copy
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gpytorch
import numpy as np
import pandas as pd
import torch
from linear_operator.utils.cholesky import psd_safe_cholesky
from sklearn.base import BaseEstimator
from torch import nn

from autofm.core.checkpoint import load_checkpoint, load_state_into, save_checkpoint
from autofm.core.errors import CheckpointError, ValidationError
from autofm.finetune.metadataset import MetaDataset
from autofm.finetune.space import FEATURE_NAMES, config_features

COUNT_COLUMNS = ("n_train", "n_classes", "mean_input_tokens", "answer_tokens")
"""Meta-features that are counts: log1p before standardising."""
PERFORMANCE_KIND = "finetune-performance-surrogate"
COST_KIND = "finetune-cost-surrogate"
# exact GP algebra by Cholesky up to this many points (gpytorch switches to CG above 800)
CHOLESKY_LIMIT = 20_000
DTYPE = torch.float64
# normalised meta-features are squashed into ±SOFT_CLIP: a new task may lie far out
SOFT_CLIP = 2.0


@dataclass(frozen=True)
class TaskFeatureScaler:
    """Standardises numeric task meta-features (log1p of counts first) with the mean and scale
    of the tasks it was fitted on, then squashes them smoothly into ±SOFT_CLIP, so that a new
    task far from the few meta-train tasks does not push the encoder into extrapolation; a
    constant column maps to 0."""

    columns: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]

    @classmethod
    def fit(cls, meta: pd.DataFrame) -> TaskFeatureScaler:
        """Fit on the meta-train tasks' meta-features (one row per task)."""
        columns = tuple(str(c) for c in meta.columns)
        values = cls._logged(_numeric(meta, columns), columns)
        scale = values.std(axis=0)
        return cls(columns, tuple(values.mean(axis=0)), tuple(np.where(scale > 1e-12, scale, 1.0)))

    def transform(self, meta: pd.DataFrame | pd.Series) -> np.ndarray:
        """[n tasks, n meta-features] normalised; `meta` is a DataFrame or one task's Series."""
        if isinstance(meta, pd.Series):
            meta = meta.to_frame().T
        values = self._logged(_numeric(meta, self.columns), self.columns)
        standardised = (values - np.asarray(self.mean)) / np.asarray(self.scale)
        return SOFT_CLIP * np.tanh(standardised / SOFT_CLIP)

    @staticmethod
    def _logged(values: np.ndarray, columns: tuple[str, ...]) -> np.ndarray:
        counts = [i for i, name in enumerate(columns) if name in COUNT_COLUMNS]
        values = values.copy()
        values[:, counts] = np.log1p(np.maximum(values[:, counts], 0))
        return values

    def to_dict(self) -> dict[str, list]:
        return {"columns": list(self.columns), "mean": list(self.mean), "scale": list(self.scale)}

    @classmethod
    def from_dict(cls, values: dict[str, list]) -> TaskFeatureScaler:
        return cls(tuple(values["columns"]), tuple(values["mean"]), tuple(values["scale"]))


def _numeric(meta: pd.DataFrame, columns: tuple[str, ...]) -> np.ndarray:
    missing = [c for c in columns if c not in meta.columns]
    if missing:
        raise ValidationError(
            f"task meta-features lack the columns {missing} the surrogate was trained with "
            f"({list(columns)}); compute them for the new task the same way"
        )
    try:
        values = meta[list(columns)].to_numpy(dtype=float)
    except (TypeError, ValueError) as err:
        raise ValidationError(f"task meta-features must be numeric: {err}") from err
    if not np.isfinite(values).all():
        raise ValidationError("task meta-features contain NaN or inf; fill them before encoding")
    return values


def task_features(
    meta: pd.DataFrame | pd.Series, scaler: TaskFeatureScaler | None = None
) -> np.ndarray:
    """Normalised task meta-features [n tasks, n features]; `scaler` fitted on meta-train
    tasks (a surrogate's `task_scaler_`), or fitted on `meta` itself when None."""
    if scaler is None:
        if isinstance(meta, pd.Series):
            meta = meta.to_frame().T
        scaler = TaskFeatureScaler.fit(meta)
    return scaler.transform(meta)


def curve_inputs(
    config_features: np.ndarray,
    task_features: np.ndarray,
    partial_curves: np.ndarray,
    next_epochs: np.ndarray,
    max_epochs: int,
    observed_epochs: np.ndarray | None = None,
) -> np.ndarray:
    """The performance surrogate's inputs [n, F + K + E + 2]: configuration ⊕ task ⊕ the
    partial curve (its first `observed_epochs` scores, zero-padded) ⊕ observed_epochs / E ⊕
    next_epochs / E. `observed_epochs` defaults to next_epochs - 1 (predict the next epoch);
    0 predicts `next_epochs` from the configuration and task alone. A single task row is
    broadcast to all n."""
    config_features = np.atleast_2d(np.asarray(config_features, dtype=float))
    n = len(config_features)
    task_features = np.asarray(task_features, dtype=float)
    if task_features.ndim == 1 or len(task_features) == 1:
        task_features = np.broadcast_to(task_features.reshape(1, -1), (n, task_features.size))
    curves = np.atleast_2d(np.asarray(partial_curves, dtype=float))
    next_epochs = np.asarray(next_epochs, dtype=int).reshape(-1)
    observed = (
        next_epochs - 1
        if observed_epochs is None
        else np.broadcast_to(np.asarray(observed_epochs, dtype=int).reshape(-1), next_epochs.shape)
    )
    if len(task_features) != n or len(curves) != n or len(next_epochs) != n:
        raise ValidationError(
            f"config_features ({n}), task rows ({len(task_features)}), partial_curves "
            f"({len(curves)}) and next_epochs ({len(next_epochs)}) must have the same length"
        )
    if curves.shape[1] != max_epochs:
        raise ValidationError(
            f"partial_curves have {curves.shape[1]} epochs; the surrogate expects {max_epochs} "
            "(pad each curve with NaN or zeros to the maximum number of epochs)"
        )
    if n and (next_epochs.min() < 1 or next_epochs.max() > max_epochs):
        raise ValidationError(f"next_epochs must lie in 1..{max_epochs}")
    if np.any((observed < 0) | (observed >= next_epochs)):
        raise ValidationError("observed_epochs must lie in 0..next_epochs-1")
    prefix_mask = np.arange(max_epochs)[None, :] < observed[:, None]
    if not np.isfinite(curves[prefix_mask]).all():
        raise ValidationError(
            "partial_curves have NaN among the observed epochs; pass each configuration's "
            "scores for every epoch before the one to predict"
        )
    prefix = np.where(prefix_mask, curves, 0.0)
    fractions = np.stack([observed, next_epochs], axis=1) / max_epochs
    return np.concatenate([config_features, task_features, prefix, fractions], axis=1)


def metadataset_samples(
    metadataset: MetaDataset, scaler: TaskFeatureScaler
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The surrogate's training samples from every run: (inputs, targets, task index per
    sample). Each observed epoch e gives (y_1..y_{e-1} → y_e), as in Quick-Tune, and, for
    e > 1, (no epoch → y_e) too, so that a configuration's later scores can be predicted from
    meta-features alone. A partial run gives the samples of its observed epochs."""
    configs = config_features(metadataset.configs)
    tasks = scaler.transform(metadataset.meta)
    n_epochs = metadataset.max_epochs
    inputs, targets, task_ids = [], [], []
    for t in range(len(metadataset.tasks)):
        curves = metadataset.curves[t]
        # a run counts up to its first missing epoch
        observed = np.cumprod(np.isfinite(curves), axis=1).sum(axis=1)
        for e in range(1, n_epochs + 1):
            rows = np.nonzero(observed >= e)[0]
            for prefix in sorted({0, e - 1}):
                inputs.append(
                    curve_inputs(
                        configs[rows],
                        tasks[t],
                        curves[rows],
                        np.full(len(rows), e),
                        n_epochs,
                        np.full(len(rows), prefix),
                    )
                )
                targets.append(curves[rows, e - 1])
                task_ids.append(np.full(len(rows), t))
    if not sum(len(y) for y in targets):
        raise ValidationError("the meta-dataset has no observed epoch to learn from")
    return np.concatenate(inputs), np.concatenate(targets), np.concatenate(task_ids)


def last_observed(inputs: np.ndarray, max_epochs: int) -> np.ndarray:
    """The last observed score of each input's partial curve (0 when none is observed)."""
    curves = inputs[:, -2 - max_epochs : -2]
    observed = np.rint(inputs[:, -2] * max_epochs).astype(int)
    return np.where(observed > 0, curves[np.arange(len(inputs)), np.maximum(observed - 1, 0)], 0.0)


def _mlp(n_inputs: int, hidden: int, n_layers: int, n_outputs: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = n_inputs
    for _ in range(n_layers):
        layers += [nn.Linear(width, hidden), nn.GELU()]
        width = hidden
    layers.append(nn.Linear(width, n_outputs))
    return nn.Sequential(*layers)


class DeepKernelGP(gpytorch.models.ExactGP):
    """Exact GP with ConstantMean + ScaleKernel(RBF) on an MLP encoding of the inputs."""

    def __init__(self, n_inputs: int, hidden: int, n_layers: int, embedding_dim: int):
        likelihood = gpytorch.likelihoods.GaussianLikelihood(
            noise_constraint=gpytorch.constraints.GreaterThan(1e-5)
        )
        super().__init__(None, None, likelihood)
        self.encoder = _mlp(n_inputs, hidden, n_layers, embedding_dim)
        self.mean_module = gpytorch.means.ConstantMean()
        self.covar_module = gpytorch.kernels.ScaleKernel(gpytorch.kernels.RBFKernel())

    def forward(self, x: torch.Tensor) -> gpytorch.distributions.MultivariateNormal:
        z = self.encoder(x)
        return gpytorch.distributions.MultivariateNormal(self.mean_module(z), self.covar_module(z))


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """torch's global generator seeded inside the block and restored after it."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _tensor(values: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(values), dtype=DTYPE)


class PerformanceSurrogate(BaseEstimator):
    """Deep-kernel GP predicting a configuration's validation score at its next epoch.

    Meta-trained by `fit` on the samples of `metadataset_samples`; each step is one batch from
    `tasks_per_batch` random tasks, and the encoder and GP hyperparameters follow the exact
    marginal likelihood jointly (Adam), with early stopping on the L1 error of a held-out
    fraction of samples. Predictions condition the GP on a fixed random subset of at most
    `max_conditioning` meta-train samples, plus whatever `fit_extra` added.

    Two departures from Quick-Tune, each switchable back: with `residual` the GP models the
    change from the configuration's last observed score (its prior mean is that score, 0
    before any epoch) rather than the score around a constant; and batches mix
    `tasks_per_batch` tasks rather than 1. With the few tasks of a finetuning meta-dataset
    both made held-out-task predictions markedly better in leave-one-task-out checks on the
    simulated meta-dataset.
    """

    def __init__(
        self,
        hidden: int = 64,
        n_layers: int = 2,
        embedding_dim: int = 16,
        learning_rate: float = 1e-2,
        batch_size: int = 256,
        n_iterations: int = 300,
        max_conditioning: int = 1000,
        validation_fraction: float = 0.1,
        eval_every: int = 10,
        patience: int = 5,
        tasks_per_batch: int = 4,
        residual: bool = True,
        seed: int = 0,
    ):
        self.hidden = hidden
        self.n_layers = n_layers
        self.embedding_dim = embedding_dim
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.n_iterations = n_iterations
        self.max_conditioning = max_conditioning
        self.validation_fraction = validation_fraction
        self.eval_every = eval_every
        self.patience = patience
        self.tasks_per_batch = tasks_per_batch
        self.residual = residual
        self.seed = seed

    def fit(
        self, metadataset: MetaDataset, seed: int | None = None, n_iterations: int | None = None
    ) -> PerformanceSurrogate:
        """Meta-train on `metadataset` (the meta-train tasks only); `seed` and `n_iterations`
        override the constructor's values for this fit."""
        seed = self.seed if seed is None else seed
        n_iterations = self.n_iterations if n_iterations is None else n_iterations
        self.task_scaler_ = TaskFeatureScaler.fit(metadataset.meta)
        self.max_epochs_ = metadataset.max_epochs
        inputs, targets, task_ids = metadataset_samples(metadataset, self.task_scaler_)
        rng = np.random.default_rng(seed)
        n = len(targets)
        held_out = rng.random(n) < self.validation_fraction if n >= 20 else np.zeros(n, bool)
        train = np.nonzero(~held_out)[0]
        conditioning = rng.choice(train, min(self.max_conditioning, len(train)), replace=False)
        self.conditioning_inputs_ = inputs[np.sort(conditioning)]
        self.conditioning_targets_ = targets[np.sort(conditioning)]
        self.extra_inputs_ = np.zeros((0, inputs.shape[1]))
        self.extra_targets_ = np.zeros(0)
        with _seeded(seed):
            self.model_ = DeepKernelGP(
                inputs.shape[1], self.hidden, self.n_layers, self.embedding_dim
            ).to(DTYPE)
        residuals = targets[train] - self._offset(inputs[train])
        self.model_.mean_module.constant = float(residuals.mean())
        self.model_.covar_module.outputscale = max(float(residuals.var()), 1e-4)
        self.model_.likelihood.noise = max(0.1 * float(residuals.var()), 1e-4)
        self._posterior_cache = None

        batches = [train[task_ids[train] == t] for t in np.unique(task_ids[train])]
        optimizer = torch.optim.Adam(self.model_.parameters(), lr=self.learning_rate)
        best_error, best_state, stale, done = np.inf, None, 0, 0
        x_held, y_held = inputs[held_out], targets[held_out]
        for iteration in range(n_iterations):
            chosen = rng.choice(
                len(batches), min(self.tasks_per_batch, len(batches)), replace=False
            )
            rows = np.concatenate([batches[i] for i in chosen])
            if len(rows) > self.batch_size:
                rows = rng.choice(rows, self.batch_size, replace=False)
            self._step(optimizer, inputs[rows], targets[rows])
            done = iteration + 1
            if len(y_held) and done % self.eval_every == 0:
                error = float(np.abs(self._posterior(x_held)[0] - y_held).mean())
                if error < best_error - 1e-6:
                    best_error, stale = error, 0
                    best_state = copy.deepcopy(self.model_.state_dict())
                else:
                    stale += 1
                    if stale >= self.patience:
                        break
        if best_state is not None:
            self.model_.load_state_dict(best_state)
            self._posterior_cache = None
        self.training_ = {
            "n_samples": int(n),
            "n_held_out": int(held_out.sum()),
            "n_tasks": len(metadataset.tasks),
            "iterations": done,
            "held_out_l1": None if best_state is None else best_error,
            "seed": seed,
        }
        return self

    def _step(self, optimizer: torch.optim.Optimizer, inputs: np.ndarray, targets: np.ndarray):
        x, y = _tensor(inputs), _tensor(targets - self._offset(inputs))
        self.model_.train()
        self.model_.set_train_data(x, y, strict=False)
        mll = gpytorch.mlls.ExactMarginalLogLikelihood(self.model_.likelihood, self.model_)
        with gpytorch.settings.max_cholesky_size(CHOLESKY_LIMIT):
            loss = -mll(self.model_(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        self._posterior_cache = None

    def _offset(self, inputs: np.ndarray) -> np.ndarray:
        if not self.residual:
            return np.zeros(len(inputs))
        return last_observed(inputs, self.max_epochs_)

    def _posterior(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # the exact GP posterior, with the conditioning set's Cholesky factor kept between calls
        # (gpytorch's own prediction refactorises for every call's predictive variance)
        model = self.model_
        with torch.no_grad():
            if self._posterior_cache is None:
                known = np.concatenate([self.conditioning_inputs_, self.extra_inputs_])
                targets = np.concatenate([self.conditioning_targets_, self.extra_targets_])
                residuals = _tensor(targets - self._offset(known)) - model.mean_module.constant
                encoded = model.encoder(_tensor(known))
                covariance = model.covar_module(encoded).to_dense()
                covariance += model.likelihood.noise * torch.eye(len(known), dtype=DTYPE)
                factor = psd_safe_cholesky(covariance)
                weights = torch.cholesky_solve(residuals[:, None], factor)[:, 0]
                self._posterior_cache = (encoded, factor, weights)
            encoded, factor, weights = self._posterior_cache
            queries = model.encoder(_tensor(inputs))
            cross = model.covar_module(queries, encoded).to_dense()
            mean = model.mean_module.constant + cross @ weights
            projected = torch.linalg.solve_triangular(factor, cross.T, upper=False)
            prior = model.covar_module(queries, diag=True)
            variance = prior - (projected**2).sum(dim=0) + model.likelihood.noise
            std = variance.clamp_min(1e-12).sqrt()
        return mean.numpy() + self._offset(inputs), std.numpy()

    def _inputs(
        self, config_features, task_meta, partial_curves, next_epochs, observed_epochs=None
    ) -> np.ndarray:
        if not hasattr(self, "model_"):
            raise ValidationError("fit (or load) the performance surrogate before using it")
        config_features = np.atleast_2d(np.asarray(config_features, dtype=float))
        if config_features.shape[1] != len(FEATURE_NAMES):
            raise ValidationError(
                f"config_features must be [n, {len(FEATURE_NAMES)}] (space.config_features), "
                f"got {config_features.shape}"
            )
        tasks = self.task_scaler_.transform(task_meta)
        return curve_inputs(
            config_features, tasks, partial_curves, next_epochs, self.max_epochs_, observed_epochs
        )

    def predict(
        self,
        config_features: np.ndarray,
        task_meta: pd.DataFrame | pd.Series,
        partial_curves: np.ndarray,
        next_epochs: np.ndarray,
        observed_epochs: np.ndarray | int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) of the validation score at `next_epochs` (1-based) of each configuration.

        task_meta: raw meta-features of one task (a Series or one-row DataFrame, broadcast) or
        one row per configuration; partial_curves: [n, max_epochs] scores per epoch, of which
        the first `observed_epochs` are read (default next_epochs - 1, the next-epoch
        prediction of the search; 0 predicts from meta-features alone, as `portfolio` does).
        std is the predictive one (noise included)."""
        return self._posterior(
            self._inputs(config_features, task_meta, partial_curves, next_epochs, observed_epochs)
        )

    def fit_extra(
        self,
        config_features: np.ndarray,
        task_meta: pd.DataFrame | pd.Series,
        partial_curves: np.ndarray,
        next_epochs: np.ndarray,
        targets: np.ndarray,
        n_iterations: int = 50,
        seed: int = 0,
    ) -> PerformanceSurrogate:
        """Refit on a new task's observations (Quick-Tune's refit): add them to the
        conditioning set, then take `n_iterations` steps on batches of every added sample plus
        a random batch of meta-train samples. `n_iterations=0` only conditions."""
        inputs = self._inputs(config_features, task_meta, partial_curves, next_epochs)
        targets = np.asarray(targets, dtype=float).reshape(-1)
        if len(targets) != len(inputs) or not np.isfinite(targets).all():
            raise ValidationError("targets must be finite, one per configuration")
        self.extra_inputs_ = np.concatenate([self.extra_inputs_, inputs])
        self.extra_targets_ = np.concatenate([self.extra_targets_, targets])
        self._posterior_cache = None
        rng = np.random.default_rng(seed)
        optimizer = torch.optim.Adam(self.model_.parameters(), lr=self.learning_rate)
        n_meta = len(self.conditioning_targets_)
        for _ in range(n_iterations):
            rows = rng.choice(n_meta, min(self.batch_size, n_meta), replace=False)
            self._step(
                optimizer,
                np.concatenate([self.extra_inputs_, self.conditioning_inputs_[rows]]),
                np.concatenate([self.extra_targets_, self.conditioning_targets_[rows]]),
            )
        return self

    def save(self, path: str | os.PathLike) -> Path:
        """Write a checkpoint (safetensors + JSON, nothing pickled); return its stem."""
        if not hasattr(self, "model_"):
            raise ValidationError("fit the performance surrogate before saving it")
        tensors = {f"model.{k}": v for k, v in self.model_.state_dict().items()}
        for name in (
            "conditioning_inputs_",
            "conditioning_targets_",
            "extra_inputs_",
            "extra_targets_",
        ):
            tensors[name] = _tensor(getattr(self, name))
        model = {
            "params": self.get_params(),
            "n_inputs": int(self.conditioning_inputs_.shape[1]),
            "max_epochs": int(self.max_epochs_),
        }
        return save_checkpoint(
            path,
            tensors,
            kind=PERFORMANCE_KIND,
            model=model,
            training=self.training_,
            task_scaler=self.task_scaler_.to_dict(),
        )

    @classmethod
    def load(cls, path: str | os.PathLike) -> PerformanceSurrogate:
        """Rebuild a surrogate written by `save`."""
        tensors, meta = _load(path, PERFORMANCE_KIND)
        config = meta["model"]
        surrogate = cls(**config["params"])
        surrogate.model_ = DeepKernelGP(
            config["n_inputs"], surrogate.hidden, surrogate.n_layers, surrogate.embedding_dim
        ).to(DTYPE)
        load_state_into(
            surrogate.model_,
            {k[6:]: v.to(DTYPE) for k, v in tensors.items() if k.startswith("model.")},
        )
        for name in (
            "conditioning_inputs_",
            "conditioning_targets_",
            "extra_inputs_",
            "extra_targets_",
        ):
            setattr(surrogate, name, tensors[name].numpy())
        surrogate.max_epochs_ = config["max_epochs"]
        surrogate.task_scaler_ = TaskFeatureScaler.from_dict(meta["task_scaler"])
        surrogate.training_ = meta["training"]
        surrogate._posterior_cache = None
        return surrogate


class CostSurrogate(BaseEstimator):
    """MLP predicting seconds per epoch from configuration ⊕ task meta-features, trained with a
    Huber loss on standardised log seconds (full batch, Adam). With few meta-train tasks the
    level on a new task is uncertain; the order of configurations within a task is reliable."""

    def __init__(
        self,
        hidden: int = 64,
        n_layers: int = 2,
        learning_rate: float = 1e-2,
        n_iterations: int = 300,
        huber_delta: float = 1.0,
        weight_decay: float = 1e-4,
        seed: int = 0,
    ):
        self.hidden = hidden
        self.n_layers = n_layers
        self.learning_rate = learning_rate
        self.n_iterations = n_iterations
        self.huber_delta = huber_delta
        self.weight_decay = weight_decay
        self.seed = seed

    def fit(self, metadataset: MetaDataset) -> CostSurrogate:
        """Train on the mean observed seconds per epoch of every run of `metadataset`."""
        self.task_scaler_ = TaskFeatureScaler.fit(metadataset.meta)
        configs = config_features(metadataset.configs)
        tasks = self.task_scaler_.transform(metadataset.meta)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # runs with no epoch: NaN, dropped
            seconds = np.nanmean(metadataset.costs, axis=2)
        task_rows, config_rows = np.nonzero(np.isfinite(seconds) & (seconds > 0))
        if not len(task_rows):
            raise ValidationError("the meta-dataset has no run with a positive cost to learn from")
        inputs = np.concatenate([configs[config_rows], tasks[task_rows]], axis=1)
        log_seconds = np.log(seconds[task_rows, config_rows])
        self.target_mean_ = float(log_seconds.mean())
        self.target_scale_ = float(max(log_seconds.std(), 1e-6))
        with _seeded(self.seed):
            self.network_ = _mlp(inputs.shape[1], self.hidden, self.n_layers, 1).to(DTYPE)
        x = _tensor(inputs)
        y = _tensor((log_seconds - self.target_mean_) / self.target_scale_)
        optimizer = torch.optim.Adam(
            self.network_.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
        )
        loss_function = nn.HuberLoss(delta=self.huber_delta)
        self.network_.train()
        for _ in range(self.n_iterations):
            loss = loss_function(self.network_(x)[:, 0], y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        self.network_.eval()
        self.training_ = {"n_runs": int(len(y)), "final_huber": float(loss.detach())}
        return self

    def predict(
        self, config_features: np.ndarray, task_meta: pd.DataFrame | pd.Series
    ) -> np.ndarray:
        """Predicted seconds per epoch of each configuration on the task(s) in `task_meta`
        (one task, broadcast, or one row per configuration)."""
        if not hasattr(self, "network_"):
            raise ValidationError("fit (or load) the cost surrogate before using it")
        config_features = np.atleast_2d(np.asarray(config_features, dtype=float))
        tasks = self.task_scaler_.transform(task_meta)
        if len(tasks) == 1:
            tasks = np.repeat(tasks, len(config_features), axis=0)
        if len(tasks) != len(config_features):
            raise ValidationError("task_meta must have one row, or one row per configuration")
        with torch.no_grad():
            z = self.network_(_tensor(np.concatenate([config_features, tasks], axis=1)))[:, 0]
        return np.exp(z.numpy() * self.target_scale_ + self.target_mean_)

    def save(self, path: str | os.PathLike) -> Path:
        """Write a checkpoint (safetensors + JSON); return its stem."""
        if not hasattr(self, "network_"):
            raise ValidationError("fit the cost surrogate before saving it")
        model = {
            "params": self.get_params(),
            "n_inputs": int(self.network_[0].in_features),
            "target_mean": self.target_mean_,
            "target_scale": self.target_scale_,
        }
        return save_checkpoint(
            path,
            self.network_,
            kind=COST_KIND,
            model=model,
            training=self.training_,
            task_scaler=self.task_scaler_.to_dict(),
        )

    @classmethod
    def load(cls, path: str | os.PathLike) -> CostSurrogate:
        """Rebuild a surrogate written by `save`."""
        tensors, meta = _load(path, COST_KIND)
        config = meta["model"]
        surrogate = cls(**config["params"])
        network = _mlp(config["n_inputs"], surrogate.hidden, surrogate.n_layers, 1)
        surrogate.network_ = network.to(DTYPE).eval()
        load_state_into(surrogate.network_, {k: v.to(DTYPE) for k, v in tensors.items()})
        surrogate.target_mean_ = config["target_mean"]
        surrogate.target_scale_ = config["target_scale"]
        surrogate.task_scaler_ = TaskFeatureScaler.from_dict(meta["task_scaler"])
        surrogate.training_ = meta["training"]
        return surrogate


def _load(path: str | os.PathLike, kind: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors, meta = load_checkpoint(path)
    if meta["kind"] != kind:
        raise CheckpointError(f"{path} holds a {meta['kind']!r} checkpoint, not a {kind!r} one")
    return tensors, meta
