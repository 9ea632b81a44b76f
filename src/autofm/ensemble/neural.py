"""Regularised neural ensemblers (Arango et al., arXiv:2410.04520), with base-model dropout.

A small network shared across classes reads, for each class c, the M-vector of the base models'
probabilities for c (DeepSets over classes, so it works for any number of classes):

* stacking mode: a per-class logit, softmax over classes;
* model-averaging mode: class embeddings are mean-pooled and mapped to M logits, a softmax over
  models gives per-sample weights, and the output is the convex mixture of the base predictions,
  computed in log space (logsumexp) for stability.

Base-model dropout draws one Bernoulli mask over models per minibatch (drop rate p): dropped
models are zeroed in the input and, in model averaging, get zero weight; at least one model is
always kept. Beyond the paper: a part of the validation predictions is held out for early stopping
and the best state is kept, and p can be chosen by cross-validation on the validation split.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from autofm.core.checkpoint import load_model, save_checkpoint
from autofm.core.errors import ValidationError
from autofm.core.runtime import single_threaded
from autofm.ensemble.base import BaseEnsembler
from autofm.ensemble.metrics import PROBABILITY_FLOOR

MODES = ("model_averaging", "stacking")
CHECKPOINT_KIND = "neural-ensembler"


class ClassSetNetwork(nn.Module):
    """φ: R^M → R^hidden applied to each class's M-vector; then a stacking or weighting head."""

    def __init__(
        self, n_models: int, hidden: int = 32, n_layers: int = 3, mode: str = "model_averaging"
    ):
        super().__init__()
        self.mode = mode
        layers: list[nn.Module] = []
        width = n_models
        for _ in range(n_layers):
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        self.class_encoder = nn.Sequential(*layers)
        self.head = nn.Linear(hidden, 1 if mode == "stacking" else n_models)

    def forward(
        self, proba: torch.Tensor, log_proba: torch.Tensor, keep: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """proba, log_proba: [B, M, C]; keep: [M] bool mask. Returns (log p [B, C], log w [B, M])."""
        inputs = proba.transpose(1, 2)  # [B, C, M]: one M-vector per class
        if keep is not None:
            inputs = inputs * keep.to(inputs.dtype)
        embedded = self.class_encoder(inputs)  # [B, C, hidden]
        if self.mode == "stacking":
            return F.log_softmax(self.head(embedded).squeeze(-1), dim=1), None
        weight_logits = self.head(embedded.mean(dim=1))  # [B, M]
        if keep is not None:
            weight_logits = weight_logits.masked_fill(~keep, float("-inf"))
        log_weights = F.log_softmax(weight_logits, dim=1)
        # log Σ_m w_m p_mc, with -inf weights of dropped models contributing exactly zero
        log_mixture = torch.logsumexp(log_weights.unsqueeze(2) + log_proba, dim=1)
        return log_mixture, log_weights


class NeuralEnsembler(BaseEnsembler):
    """Neural ensembler over base predictions, trained on validation NLL with model dropout.

    Parameters: `mode` 'model_averaging' (per-sample convex weights) or 'stacking';
    `dropout_rate` p of dropping each base model per minibatch, or 'cv' to choose it from
    `dropout_grid` by `cv_folds`-fold cross-validation on the validation split; `hidden`,
    `n_layers`; Adam with `learning_rate`, gradient norm clipped to `grad_clip`; at most
    `max_epochs` epochs, stopping after `patience` epochs without improvement of the NLL on a
    held-out `holdout_fraction` of the validation samples (the best state is kept).
    """

    def __init__(
        self,
        mode: str = "model_averaging",
        dropout_rate: float | str = 0.75,
        hidden: int = 32,
        n_layers: int = 3,
        learning_rate: float = 5e-3,
        batch_size: int = 128,
        max_epochs: int = 300,
        patience: int = 30,
        holdout_fraction: float = 0.2,
        grad_clip: float = 1.0,
        dropout_grid: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75),
        cv_folds: int = 3,
        random_state: int | None = None,
    ):
        self.mode = mode
        self.dropout_rate = dropout_rate
        self.hidden = hidden
        self.n_layers = n_layers
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.holdout_fraction = holdout_fraction
        self.grad_clip = grad_clip
        self.dropout_grid = dropout_grid
        self.cv_folds = cv_folds
        self.random_state = random_state

    def _check_params(self) -> None:
        if self.mode not in MODES:
            raise ValidationError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        rates = list(self.dropout_grid) if self.dropout_rate == "cv" else [self.dropout_rate]
        for rate in rates:
            if isinstance(rate, str) or not 0 <= float(rate) < 1:
                raise ValidationError(f"dropout rates must be in [0, 1) or 'cv', got {rate!r}")
        if not 0 <= float(self.holdout_fraction) < 1:
            raise ValidationError(
                f"holdout_fraction must be in [0, 1), got {self.holdout_fraction}"
            )

    def fit(self, P, y) -> NeuralEnsembler:
        """Train on validation predictions P [N, M, C] and labels y [N] (on one CPU thread)."""
        with single_threaded():
            return super().fit(P, y)

    def predict_proba(self, P) -> np.ndarray:
        with single_threaded():
            return super().predict_proba(P)

    def weights(self, P) -> np.ndarray:
        with single_threaded():
            return super().weights(P)

    def _fit(self, predictions, labels):
        self._check_params()
        rng = np.random.default_rng(self.random_state)
        rate = self.dropout_rate
        if rate == "cv":
            self.cv_scores_ = self._cross_validate(predictions, labels, rng)
            rate = min(self.cv_scores_, key=self.cv_scores_.get)
        self.dropout_rate_ = float(rate)
        self.network_, self.history_ = self._train(predictions, labels, float(rate), rng)

    def _cross_validate(self, predictions, labels, rng) -> dict[float, float]:
        folds = np.array_split(rng.permutation(len(labels)), int(self.cv_folds))
        scores = {}
        for rate in self.dropout_grid:
            losses = []
            for fold in folds:
                train = np.setdiff1d(np.arange(len(labels)), fold)
                network, _ = self._train(predictions[train], labels[train], float(rate), rng)
                log_p = self._forward(network, predictions[fold])[0]
                losses.append(-np.mean(log_p[np.arange(len(fold)), labels[fold]]))
            scores[float(rate)] = float(np.mean(losses))
        return scores

    def _train(self, predictions, labels, rate, rng) -> tuple[ClassSetNetwork, dict]:
        n, m, _ = predictions.shape
        torch_rng = torch.Generator().manual_seed(int(rng.integers(2**31)))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(rng.integers(2**31)))
            network = ClassSetNetwork(m, int(self.hidden), int(self.n_layers), self.mode)
        order = rng.permutation(n)
        n_holdout = int(round(float(self.holdout_fraction) * n))
        if n - n_holdout < 2:
            n_holdout = 0
        holdout, train = order[:n_holdout], order[n_holdout:]
        proba, log_proba = _tensors(predictions)
        targets = torch.as_tensor(labels, dtype=torch.long)
        optimiser = torch.optim.Adam(network.parameters(), lr=float(self.learning_rate))
        history: dict[str, list[float]] = {"train_nll": [], "holdout_nll": []}
        best_state, best_loss, since_best = None, float("inf"), 0
        batch = int(self.batch_size)
        for _ in range(int(self.max_epochs)):
            network.train()
            shuffled = torch.as_tensor(train[rng.permutation(len(train))])
            epoch_loss = 0.0
            for start in range(0, len(shuffled), batch):
                index = shuffled[start : start + batch]
                keep = _dropout_mask(m, rate, torch_rng)
                log_p, _ = network(proba[index], log_proba[index], keep)
                loss = F.nll_loss(log_p, targets[index])
                optimiser.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(network.parameters(), float(self.grad_clip))
                optimiser.step()
                epoch_loss += float(loss.detach()) * len(index)
            history["train_nll"].append(epoch_loss / len(train))
            if n_holdout == 0:
                continue
            network.eval()
            with torch.no_grad():
                log_p, _ = network(proba[holdout], log_proba[holdout])
                holdout_loss = float(F.nll_loss(log_p, targets[holdout]))
            history["holdout_nll"].append(holdout_loss)
            if holdout_loss < best_loss - 1e-6:
                best_state, best_loss, since_best = (
                    copy.deepcopy(network.state_dict()),
                    holdout_loss,
                    0,
                )
            else:
                since_best += 1
                if since_best >= int(self.patience):
                    break
        if best_state is not None:
            network.load_state_dict(best_state)
        network.eval()
        return network, history

    @staticmethod
    def _forward(network: ClassSetNetwork, predictions: np.ndarray):
        proba, log_proba = _tensors(predictions)
        with torch.no_grad():
            log_p, log_w = network(proba, log_proba)
        return log_p.double().numpy(), None if log_w is None else log_w.double().numpy()

    def _predict_proba(self, predictions):
        proba = np.exp(self._forward(self.network_, predictions)[0])
        return proba / proba.sum(axis=1, keepdims=True)

    def _weights(self, predictions):
        if self.mode == "model_averaging":
            return np.exp(self._forward(self.network_, predictions)[1])
        # stacking has no mixture weights: report |gradient × input| saliency of the predicted
        # class's log-probability with respect to each model's probabilities, normalised per sample
        proba, log_proba = _tensors(predictions)
        proba.requires_grad_(True)
        log_p, _ = self.network_(proba, log_proba)
        chosen = log_p.gather(1, log_p.argmax(dim=1, keepdim=True)).sum()
        (gradient,) = torch.autograd.grad(chosen, proba)
        saliency = (gradient * proba).detach().abs().sum(dim=2).double().numpy()
        totals = saliency.sum(axis=1, keepdims=True)
        uniform = np.full_like(saliency, 1.0 / saliency.shape[1])
        return np.where(totals > 0, saliency / np.where(totals > 0, totals, 1.0), uniform)

    def save(self, path: str | Path) -> Path:
        """Write the fitted network as a checkpoint (safetensors + JSON); return its stem."""
        if not hasattr(self, "network_"):
            raise ValidationError("fit the ensembler before saving it")
        config = {
            "params": {k: v for k, v in self.get_params().items() if k != "dropout_grid"},
            "dropout_grid": list(self.dropout_grid),
            "dropout_rate_": self.dropout_rate_,
            "n_models": self.n_models_,
            "n_classes": self.n_classes_,
        }
        return save_checkpoint(path, self.network_, kind=CHECKPOINT_KIND, model=config)

    @classmethod
    def load(cls, path: str | Path) -> NeuralEnsembler:
        """Rebuild a fitted NeuralEnsembler from a checkpoint written by `save`."""

        def build(config: dict, source: str) -> ClassSetNetwork:
            params = cls(**config["params"]).get_params()
            return ClassSetNetwork(
                config["n_models"], params["hidden"], params["n_layers"], params["mode"]
            )

        network, meta = load_model(path, kind=CHECKPOINT_KIND, build=build)
        config = meta["model"]
        ensembler = cls(**config["params"], dropout_grid=tuple(config["dropout_grid"]))
        ensembler.network_ = network
        ensembler.n_models_, ensembler.n_classes_ = config["n_models"], config["n_classes"]
        ensembler.classes_ = np.arange(ensembler.n_classes_)
        ensembler.dropout_rate_ = config["dropout_rate_"]
        return ensembler


def _tensors(predictions: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    proba = torch.as_tensor(predictions, dtype=torch.float32)
    return proba, torch.log(proba.clamp_min(PROBABILITY_FLOOR))


def _dropout_mask(n_models: int, rate: float, generator: torch.Generator) -> torch.Tensor | None:
    """One Bernoulli keep-mask over models; never drops all of them (one survivor is drawn)."""
    if rate <= 0:
        return None
    keep = torch.rand(n_models, generator=generator) >= rate
    if not keep.any():
        keep[torch.randint(n_models, (1,), generator=generator)] = True
    return keep
