"""The prior-fitted network (PFN): a transformer that maps a context set to a predictive distribution.

One token per context point (embedding of x plus embedding of y) and one token per query point
(embedding of x only). No positional encoding: the model is invariant to the order of the
context and treats query points independently. Attention is restricted so that every token
(context or query) attends only to the context tokens and to one learned "empty" token that is
always present; with an empty context the queries therefore still have something to attend to,
and the network returns its prior predictive.

Regression PFNs output logits over the buckets of a `BarDistribution`; classification PFNs output
class logits. Pre-LayerNorm blocks as in nanoGPT.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from autofm.core.config import ConfigMixin
from autofm.core.errors import ValidationError
from autofm.pfn.bar_distribution import BarDistribution, classification_loss
from autofm.pfn.prior import TaskBatch


@dataclass
class PFNConfig(ConfigMixin):
    """Architecture of a PFN; stored in its checkpoint so the model can be rebuilt."""

    n_features: int = 1
    task: str = "regression"  # or "classification"
    n_outputs: int = 100  # buckets (regression) or classes (classification)
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    d_hidden: int = 256
    max_context: int = 100  # the longest context trained for; longer inputs are refused
    full_support: bool = True


class Attention(nn.Module):
    """Multi-head attention from `queries` to `keys` (the context tokens)."""

    def __init__(self, config: PFNConfig):
        super().__init__()
        self.n_heads = config.n_heads
        self.query = nn.Linear(config.d_model, config.d_model)
        self.key_value = nn.Linear(config.d_model, 2 * config.d_model)
        self.out = nn.Linear(config.d_model, config.d_model)

    def forward(self, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        batch, n_q, width = queries.shape
        heads = lambda t: t.view(batch, t.shape[1], self.n_heads, -1).transpose(1, 2)  # noqa: E731
        q = heads(self.query(queries))
        k, v = (heads(t) for t in self.key_value(keys).split(width, dim=-1))
        mixed = F.scaled_dot_product_attention(q, k, v)  # softmax(q·kᵀ/√d_head)·v
        return self.out(mixed.transpose(1, 2).reshape(batch, n_q, width))


class Block(nn.Module):
    """Pre-LN transformer block; all tokens attend to the first `n_keys` tokens only."""

    def __init__(self, config: PFNConfig):
        super().__init__()
        self.norm_attention = nn.LayerNorm(config.d_model)
        self.attention = Attention(config)
        self.norm_mlp = nn.LayerNorm(config.d_model)
        self.mlp = nn.Sequential(
            nn.Linear(config.d_model, config.d_hidden),
            nn.GELU(),
            nn.Linear(config.d_hidden, config.d_model),
        )

    def forward(self, tokens: torch.Tensor, n_keys: int) -> torch.Tensor:
        normed = self.norm_attention(tokens)
        tokens = tokens + self.attention(normed, normed[:, :n_keys])
        return tokens + self.mlp(self.norm_mlp(tokens))


class PFN(nn.Module):
    """Prior-fitted network: `forward(x_context, y_context, x_query)` → logits [B, M, n_outputs]."""

    checkpoint_kind = "pfn"

    def __init__(self, config: PFNConfig, borders: torch.Tensor | None = None):
        super().__init__()
        if config.task not in ("regression", "classification"):
            raise ValidationError(
                f"task must be 'regression' or 'classification', got {config.task}"
            )
        if config.d_model % config.n_heads:
            raise ValidationError("d_model must be a multiple of n_heads")
        self.config = config
        self.x_encoder = nn.Linear(config.n_features, config.d_model)
        if config.task == "regression":
            self.y_encoder: nn.Module = nn.Linear(1, config.d_model)
            if borders is None:  # placeholder, overwritten when a checkpoint is loaded
                borders = torch.linspace(-1.0, 1.0, config.n_outputs + 1)
            if len(borders) != config.n_outputs + 1:
                raise ValidationError(
                    f"{len(borders)} borders given for {config.n_outputs} buckets; need n_outputs+1"
                )
            self.distribution: BarDistribution | None = BarDistribution(
                borders, config.full_support
            )
        else:
            self.y_encoder = nn.Embedding(config.n_outputs, config.d_model)
            self.distribution = None
        self.empty_token = nn.Parameter(torch.zeros(1, 1, config.d_model))
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.norm_out = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.n_outputs)
        self.apply(self._init_weights)
        nn.init.normal_(self.empty_token, std=0.02)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)

    def _encode_y(self, y: torch.Tensor) -> torch.Tensor:
        if self.config.task == "regression":
            return self.y_encoder(y.unsqueeze(-1))
        return self.y_encoder(y.long())

    def forward(
        self, x_context: torch.Tensor, y_context: torch.Tensor, x_query: torch.Tensor
    ) -> torch.Tensor:
        batch, n_context = y_context.shape
        context = self.x_encoder(x_context) + self._encode_y(y_context)
        queries = self.x_encoder(x_query)
        empty = self.empty_token.expand(batch, 1, -1)
        tokens = torch.cat([empty, context, queries], dim=1)
        n_keys = 1 + n_context
        for block in self.blocks:
            tokens = block(tokens, n_keys)
        return self.head(self.norm_out(tokens[:, n_keys:]))

    def loss(self, logits: torch.Tensor, batch: TaskBatch) -> torch.Tensor:
        """Training loss: bar-distribution NLL (regression) or cross-entropy (classification)."""
        if self.distribution is not None:
            return self.distribution.loss(logits, batch.y_query)
        return classification_loss(logits, batch.y_query)

    def check_inputs(
        self, x_context: torch.Tensor, y_context: torch.Tensor, x_query: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Validate shapes and values; accept unbatched [N, F]/[N]/[M, F] inputs (batch of one)."""
        x_context = torch.as_tensor(x_context, dtype=torch.float32)
        y_context = torch.as_tensor(y_context, dtype=torch.float32)
        x_query = torch.as_tensor(x_query, dtype=torch.float32)
        if x_query.ndim == 2:
            x_context, y_context, x_query = x_context[None], y_context[None], x_query[None]
        if x_context.ndim != 3 or x_query.ndim != 3 or y_context.ndim != 2:
            raise ValidationError(
                "expected x_context [B, N, F], y_context [B, N], x_query [B, M, F]; got "
                f"{tuple(x_context.shape)}, {tuple(y_context.shape)}, {tuple(x_query.shape)}"
            )
        if y_context.shape != x_context.shape[:2] or x_query.shape[0] != x_context.shape[0]:
            raise ValidationError(
                f"y_context {tuple(y_context.shape)} must match x_context {tuple(x_context.shape)}"
                f" in batch and points, and x_query {tuple(x_query.shape)} in batch"
            )
        if x_context.shape[-1] != x_query.shape[-1]:
            raise ValidationError(
                f"context has {x_context.shape[-1]} features but the query has "
                f"{x_query.shape[-1]}; both must have the same features"
            )
        if x_query.shape[-1] != self.config.n_features:
            raise ValidationError(
                f"this PFN was trained on {self.config.n_features} feature(s), "
                f"got {x_query.shape[-1]}"
            )
        if x_context.shape[1] > self.config.max_context:
            raise ValidationError(
                f"context has {x_context.shape[1]} points but this PFN was trained on at most "
                f"{self.config.max_context}; subsample the context or retrain with a longer one"
            )
        for name, tensor in (
            ("x_context", x_context),
            ("y_context", y_context),
            ("x_query", x_query),
        ):
            if not bool(torch.isfinite(tensor).all()):
                raise ValidationError(
                    f"{name} contains NaN or infinite values; remove those points"
                )
        if self.config.task == "classification":
            if not bool(((y_context >= 0) & (y_context < self.config.n_outputs)).all()) or not bool(
                (y_context == y_context.round()).all()
            ):
                raise ValidationError(
                    f"y_context must hold class labels 0..{self.config.n_outputs - 1}"
                )
        return x_context, y_context, x_query

    @torch.no_grad()
    def predict_logits(
        self, x_context: torch.Tensor, y_context: torch.Tensor, x_query: torch.Tensor
    ) -> torch.Tensor:
        """Validated, eval-mode logits at the query points ([B, M, n_outputs], or [M, ...])."""
        unbatched = torch.as_tensor(x_query).ndim == 2
        inputs = self.check_inputs(x_context, y_context, x_query)
        device = next(self.parameters()).device
        was_training = self.training
        self.eval()
        logits = self(*(t.to(device) for t in inputs))
        self.train(was_training)
        return logits[0] if unbatched else logits

    def predict(self, x_context, y_context, x_query) -> PFNPrediction:
        """The PFN's posterior predictive at the query points (see `PFNPrediction`)."""
        return PFNPrediction(self.predict_logits(x_context, y_context, x_query), self.distribution)

    def predict_mean(self, x_context, y_context, x_query) -> torch.Tensor:
        """Predictive mean (regression) or P(class 1) (binary classification)."""
        return self.predict(x_context, y_context, x_query).mean


@dataclass
class PFNPrediction:
    """A PFN's predictive distribution at each query point, with the interface of the exact ones.

    Regression: `mean`, `variance`, `log_density(y)`, `quantile(q)`, `sample(n)` of the bar
    distribution. Classification: `probabilities` [..., C]; `mean` is P(class 1) for two classes.
    """

    logits: torch.Tensor
    distribution: BarDistribution | None

    @property
    def probabilities(self) -> torch.Tensor:
        return F.softmax(self.logits, dim=-1)

    @property
    def mean(self) -> torch.Tensor:
        if self.distribution is not None:
            return self.distribution.mean(self.logits)
        return self.probabilities[..., 1]

    @property
    def variance(self) -> torch.Tensor:
        if self.distribution is not None:
            return self.distribution.variance(self.logits)
        return self.mean * (1 - self.mean)

    def log_density(self, y: torch.Tensor) -> torch.Tensor:
        y = torch.as_tensor(y).to(self.logits.dtype)
        if self.distribution is not None:
            return self.distribution.log_density(self.logits, y)
        log_probs = F.log_softmax(self.logits, dim=-1)
        return log_probs.gather(-1, y.long().unsqueeze(-1)).squeeze(-1)

    def quantile(self, q: float | torch.Tensor) -> torch.Tensor:
        if self.distribution is None:
            raise ValidationError("quantiles are defined for regression PFNs only")
        return self.distribution.quantile(self.logits, q)

    def sample(self, n_samples: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.distribution is not None:
            return self.distribution.sample(self.logits, n_samples, generator)
        flat = self.probabilities.reshape(-1, self.logits.shape[-1])
        draws = torch.multinomial(flat, n_samples, replacement=True, generator=generator)
        return draws.T.reshape(n_samples, *self.logits.shape[:-1])
