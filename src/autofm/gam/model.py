"""GAMformer: a bi-attention transformer that turns a binned training set into shape functions.

Each (training row, feature) pair is one token: the embedding of the feature value's bin plus the
embedding of the row's label. There is no feature-identity embedding, so the model is equivariant
to the order of features and rows and takes any number of features. Bi-attention layers alternate
attention across the features of a row and across the rows of a feature. The head averages, per
feature and class, the final tokens of that class's rows and an MLP turns the average into one
shape value per bin. A prediction is a table look-up and a sum: logit_c(x) = Σ_j shape[j, bin_j(x), c].
Regression uses one average over all rows and predicts standardised y.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from autofm.core.config import ConfigMixin


@dataclass
class GAMformerConfig(ConfigMixin):
    """Architecture of a GAMformer (stored in checkpoints to rebuild the model)."""

    n_bins: int = 32
    d_model: int = 64
    n_layers: int = 3
    n_heads: int = 4
    d_hidden: int = 128
    max_classes: int = 10
    head_hidden: int = 128


class SelfAttention(nn.Module):
    """Multi-head self-attention over the second-to-last axis of [S, L, d]."""

    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sequences, length, d_model = x.shape
        q, k, v = self.qkv(x).split(d_model, dim=-1)
        heads = (sequences, length, self.n_heads, d_model // self.n_heads)
        q, k, v = (t.view(heads).transpose(1, 2) for t in (q, k, v))
        # softmax(q·k / sqrt(d_head)) v, the standard scaling
        attended = F.scaled_dot_product_attention(q, k, v)
        return self.out(attended.transpose(1, 2).reshape(sequences, length, d_model))


class BiAttentionLayer(nn.Module):
    """Pre-norm block: attention across features, then across rows, then an MLP."""

    def __init__(self, d_model: int, n_heads: int, d_hidden: int):
        super().__init__()
        self.norm_features = nn.LayerNorm(d_model)
        self.attend_features = SelfAttention(d_model, n_heads)
        self.norm_rows = nn.LayerNorm(d_model)
        self.attend_rows = SelfAttention(d_model, n_heads)
        self.norm_mlp = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, d_hidden), nn.GELU(), nn.Linear(d_hidden, d_model)
        )

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        batch, rows, features, d_model = h.shape
        across_features = self.norm_features(h).reshape(batch * rows, features, d_model)
        h = h + self.attend_features(across_features).view(batch, rows, features, d_model)
        across_rows = self.norm_rows(h).transpose(1, 2).reshape(batch * features, rows, d_model)
        attended = self.attend_rows(across_rows).view(batch, features, rows, d_model)
        h = h + attended.transpose(1, 2)
        return h + self.mlp(self.norm_mlp(h))


class GAMformer(nn.Module):
    """Training set in, shape functions out; `forward` also looks up the query rows."""

    checkpoint_kind = "gamformer"

    def __init__(self, config: GAMformerConfig | None = None):
        super().__init__()
        self.config = config = config or GAMformerConfig()
        n_values = config.n_bins + 1  # the last bin holds missing values
        self.bin_embedding = nn.Embedding(n_values, config.d_model)
        self.class_embedding = nn.Embedding(config.max_classes, config.d_model)
        self.target_embedding = nn.Linear(1, config.d_model)
        self.layers = nn.ModuleList(
            BiAttentionLayer(config.d_model, config.n_heads, config.d_hidden)
            for _ in range(config.n_layers)
        )
        self.final_norm = nn.LayerNorm(config.d_model)
        self.class_head = self._head(n_values)
        self.regression_head = self._head(n_values)
        self.apply(self._init_weights)

    def _head(self, n_values: int) -> nn.Sequential:
        config = self.config
        return nn.Sequential(
            nn.Linear(config.d_model, config.head_hidden),
            nn.GELU(),
            nn.Linear(config.head_hidden, n_values),
        )

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)

    def shape_functions(
        self, context_bins: torch.Tensor, y_context: torch.Tensor, regression: bool = False
    ) -> torch.Tensor:
        """Shape tables [B, F, n_bins + 1, C] (C = max_classes, or 1 for regression).

        `context_bins` [B, N, F] holds bin indices; `y_context` [B, N] class indices or
        standardised targets.
        """
        tokens = self.bin_embedding(context_bins)
        if regression:
            labels = self.target_embedding(y_context.float().unsqueeze(-1))
        else:
            labels = self.class_embedding(y_context.long())
        h = tokens + labels.unsqueeze(2)
        for layer in self.layers:
            h = layer(h)
        h = self.final_norm(h)
        if regression:
            return self.regression_head(h.mean(dim=1)).unsqueeze(-1)
        members = F.one_hot(y_context.long(), self.config.max_classes).to(h.dtype)  # [B, N, C]
        counts = members.sum(dim=1).clamp(min=1.0)  # [B, C]
        class_means = torch.einsum("bnfd,bnc->bfcd", h, members) / counts[:, None, :, None]
        return self.class_head(class_means).transpose(2, 3)

    @staticmethod
    def lookup(shapes: torch.Tensor, query_bins: torch.Tensor) -> torch.Tensor:
        """Σ_j shapes[b, j, bin_j, c] for every query row: [B, M, C]."""
        batch, features, _, outputs = shapes.shape
        index = query_bins.transpose(1, 2).unsqueeze(-1).expand(-1, -1, -1, outputs)
        return shapes.gather(2, index).sum(dim=1)

    def forward(
        self,
        context_bins: torch.Tensor,
        y_context: torch.Tensor,
        query_bins: torch.Tensor,
        regression: bool = False,
    ) -> torch.Tensor:
        """Logits [B, M, max_classes] (or standardised predictions [B, M, 1]) of the query rows."""
        return self.lookup(self.shape_functions(context_bins, y_context, regression), query_bins)


def build_gamformer(config: dict[str, Any], source: str) -> GAMformer:
    """An untrained GAMformer of the architecture in a checkpoint's `model` config."""
    return GAMformer(GAMformerConfig.from_dict(config, source=source))
