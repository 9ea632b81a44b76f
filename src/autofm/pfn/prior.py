"""The prior protocol: a prior is an object that returns batches of synthetic tasks.

Every in-context model in autofm (PFNs, GAMformer, Mamba4Cast) trains on `TaskBatch`es:
context inputs and targets, query inputs and the targets to predict at them.

Shapes (B = batch size, N = context points, M = query points, F = features):
  x_context [B, N, F], y_context [B, N], x_query [B, M, F], y_query [B, M]
A forecasting prior uses time features as x (F calendar/position features), the observed values
as y_context and the horizon as y_query. Per-task extras (true latent parameters, class counts,
ground-truth shape functions, masks) go in `metadata`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Protocol, runtime_checkable

import torch


@dataclass
class TaskBatch:
    """A batch of B tasks, each with N context points and M query points."""

    x_context: torch.Tensor
    y_context: torch.Tensor
    x_query: torch.Tensor
    y_query: torch.Tensor
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def batch_size(self) -> int:
        return self.x_context.shape[0]

    @property
    def n_context(self) -> int:
        return self.x_context.shape[1]

    @property
    def n_query(self) -> int:
        return self.x_query.shape[1]

    def to(self, device: torch.device | str) -> TaskBatch:
        """The same batch with every tensor (also in metadata) moved to `device`."""
        moved = {
            f.name: getattr(self, f.name).to(device)
            for f in fields(self)
            if isinstance(getattr(self, f.name), torch.Tensor)
        }
        metadata = {
            key: value.to(device) if isinstance(value, torch.Tensor) else value
            for key, value in self.metadata.items()
        }
        return TaskBatch(**moved, metadata=metadata)


@runtime_checkable
class Prior(Protocol):
    """Anything with `sample(...) -> TaskBatch` is a prior.

    `n_context` and `n_query` are the numbers of points the training loop asks for (a prior with
    its own length distribution, such as a forecasting prior, may treat them as maxima);
    `n_features` is ignored by priors whose input dimension is fixed.
    """

    def sample(
        self,
        batch_size: int,
        n_context: int,
        n_query: int,
        n_features: int,
        generator: torch.Generator,
    ) -> TaskBatch: ...
