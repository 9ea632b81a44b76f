"""Importance sorting: measure how much each unit of a GPT matters on calibration text and
permute the weights so that every sub-network is a first-k slice of the most important units.

Units are embedding channels (|activation| of every LayerNorm/RMSNorm output, summed over the
norms), attention heads (the norm of each head's output before the output projection) and MLP
neurons (hidden activations after GELU), aggregated over calibration tokens by mean |a|, root
mean square ("l2") or variance. Blocks are ranked by ShortGPT's block influence
1 − cos(h_in, h_out); blocks are not moved, their ranking is the `layer_order` a
`SuperNetwork` takes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from autofm.core.errors import ValidationError
from autofm.core.progress import progress
from autofm.data.text import sample_blocks
from autofm.lm.model import GPT

AGGREGATIONS = ("mean", "l2", "variance")

Batches = torch.Tensor | Iterable[torch.Tensor]


@dataclass(frozen=True, eq=False)  # arrays: compare fields with numpy, not ==
class UnitScores:
    """Importance of every unit of a GPT, higher is more important: one score per embedding
    channel, and per block one per attention head and one per MLP neuron."""

    embed: np.ndarray
    heads: tuple[np.ndarray, ...]
    mlp: tuple[np.ndarray, ...]

    def sorted(self) -> UnitScores:
        """The scores in importance order: those of the model `permute_by_importance` returns."""
        return UnitScores(
            np.sort(self.embed)[::-1].copy(),
            tuple(np.sort(h)[::-1].copy() for h in self.heads),
            tuple(np.sort(m)[::-1].copy() for m in self.mlp),
        )


def importance_order(scores: np.ndarray) -> np.ndarray:
    """Indices of `scores`, most important first (ties keep their original order)."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")


def calibration_batches(
    tokens: np.ndarray, block_size: int, n_batches: int = 10, batch_size: int = 8, seed: int = 0
) -> list[torch.Tensor]:
    """`n_batches` random blocks [batch_size, block_size] of `tokens` as LongTensors."""
    if n_batches < 1 or batch_size < 1:
        raise ValidationError(
            f"n_batches and batch_size must be ≥ 1, got {n_batches}, {batch_size}"
        )
    rng = np.random.default_rng(seed)
    return [
        torch.from_numpy(sample_blocks(tokens, block_size, batch_size, rng)[0])
        for _ in range(n_batches)
    ]


def unit_importance(gpt: GPT, batches: Batches, aggregation: str = "mean") -> UnitScores:
    """Importance of every embedding channel, head and MLP neuron of `gpt` on `batches` (token
    ids [batch, time], one LongTensor or an iterable of them)."""
    return _measure(gpt, batches).unit_scores(aggregation)


def block_importance(gpt: GPT, batches: Batches) -> np.ndarray:
    """Per block, 1 − cos(h_in, h_out) averaged over the tokens of `batches` (ShortGPT's block
    influence: a block that leaves the residual stream unchanged scores 0)."""
    return _measure(gpt, batches).block_scores()


@torch.no_grad()
def permute_by_importance(gpt: GPT, scores: UnitScores) -> GPT:
    """Permute `gpt`'s weights in place (and return it) so that its most important embedding
    channels, heads and MLP neurons come first; the function it computes does not change.
    Blocks stay where they are."""
    _check_scores(gpt, scores)
    head_size = gpt.config.head_size
    channels = torch.from_numpy(importance_order(scores.embed))
    permute_along(gpt.wte.weight, channels, dim=1)
    permute_along(gpt.wpe.weight, channels, dim=1)
    if gpt.lm_head is not None:
        permute_along(gpt.lm_head.weight, channels, dim=1)
    for norm in [gpt.norm_f, *(n for b in gpt.blocks for n in (b.norm1, b.norm2))]:
        permute_along(norm.weight, channels, dim=0)
        permute_along(norm.bias, channels, dim=0)
    for block, head_scores, mlp_scores in zip(gpt.blocks, scores.heads, scores.mlp):
        attn, mlp = block.attn, block.mlp
        # the residual stream's channels: read by qkv and fc, written by both projections
        permute_along(attn.qkv.weight, channels, dim=1)
        permute_along(mlp.fc.weight, channels, dim=1)
        for linear in (attn.proj, mlp.proj):
            permute_along(linear.weight, channels, dim=0)
            permute_along(linear.bias, channels, dim=0)
        # a head is head_size rows in each of the q, k and v parts and head_size proj columns
        heads = torch.from_numpy(importance_order(head_scores))
        columns = (heads[:, None] * head_size + torch.arange(head_size)).reshape(-1)
        inner = attn.n_head * head_size
        rows = torch.cat([part * inner + columns for part in range(3)])
        permute_along(attn.qkv.weight, rows, dim=0)
        permute_along(attn.qkv.bias, rows, dim=0)
        permute_along(attn.proj.weight, columns, dim=1)
        neurons = torch.from_numpy(importance_order(mlp_scores))
        permute_along(mlp.fc.weight, neurons, dim=0)
        permute_along(mlp.fc.bias, neurons, dim=0)
        permute_along(mlp.proj.weight, neurons, dim=1)
    return gpt


def sort_parent(
    gpt: GPT, batches: Batches, aggregation: str = "mean"
) -> tuple[GPT, tuple[int, ...], UnitScores]:
    """Measure unit and block importance on `batches` (one pass), permute `gpt` in place;
    return it, its layer order (most important block first) and its scores in the new order."""
    statistics = _measure(gpt, batches)
    scores = statistics.unit_scores(aggregation)
    layer_order = tuple(int(i) for i in importance_order(statistics.block_scores()))
    return permute_by_importance(gpt, scores), layer_order, scores.sorted()


def permute_along(tensor: torch.Tensor | None, index: torch.Tensor, dim: int) -> None:
    """Reorder `tensor` in place along `dim` by `index` (None: nothing to do)."""
    if tensor is not None:
        tensor.copy_(tensor.index_select(dim, index.to(tensor.device)))


def _check_scores(gpt: GPT, scores: UnitScores) -> None:
    expected = (
        gpt.config.width,
        [b.attn.n_head for b in gpt.blocks],
        [b.mlp.fc.out_features for b in gpt.blocks],
    )
    found = (len(scores.embed), [len(h) for h in scores.heads], [len(m) for m in scores.mlp])
    if found != expected:
        raise ValidationError(
            f"scores with (embed, heads, mlp) sizes {found} do not fit this model {expected}; "
            "measure them on this model (unit_importance)"
        )


def as_batches(batches: Batches, block_size: int) -> list[torch.Tensor]:
    """Calibration batches as a list of [B, T] LongTensors (T ≤ block_size), checked."""
    items = [batches] if isinstance(batches, torch.Tensor | np.ndarray) else list(batches)
    if not items:
        raise ValidationError(
            "no calibration batches: give token ids [batch, time] (e.g. calibration_batches)"
        )
    checked = []
    for item in items:
        item = torch.as_tensor(item)
        if item.ndim != 2 or item.dtype.is_floating_point or item.shape[1] > block_size:
            raise ValidationError(
                f"a calibration batch must be integer token ids [batch, time ≤ {block_size}], "
                f"got {item.dtype} of shape {tuple(item.shape)}"
            )
        checked.append(item.long())
    return checked


class ActivationMoments:
    """Running sums of |a|, a and a² per unit over tokens (float64)."""

    def __init__(self) -> None:
        self.absolute = self.first = self.second = None
        self.count = 0

    def add(self, values: torch.Tensor) -> None:
        values = values.reshape(-1, values.shape[-1]).double()
        sums = (values.abs().sum(0), values.sum(0), values.pow(2).sum(0))
        if self.absolute is None:
            self.absolute, self.first, self.second = sums
        else:
            self.absolute += sums[0]
            self.first += sums[1]
            self.second += sums[2]
        self.count += values.shape[0]

    def aggregate(self, aggregation: str) -> np.ndarray:
        if aggregation == "mean":
            result = self.absolute / self.count
        elif aggregation == "l2":
            result = (self.second / self.count).sqrt()
        else:
            result = (self.second / self.count - (self.first / self.count) ** 2).clamp_min(0)
        return result.cpu().numpy()


class _Statistics:
    """What one instrumented pass over the calibration batches gathers."""

    def __init__(self, depth: int) -> None:
        self.norms = [ActivationMoments() for _ in range(2 * depth + 1)]
        self.heads = [ActivationMoments() for _ in range(depth)]
        self.mlp = [ActivationMoments() for _ in range(depth)]
        self.influence = np.zeros(depth)
        self.tokens = 0

    def unit_scores(self, aggregation: str) -> UnitScores:
        if aggregation not in AGGREGATIONS:
            raise ValidationError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
        return UnitScores(
            np.sum([n.aggregate(aggregation) for n in self.norms], axis=0),
            tuple(h.aggregate(aggregation) for h in self.heads),
            tuple(m.aggregate(aggregation) for m in self.mlp),
        )

    def block_scores(self) -> np.ndarray:
        return self.influence / self.tokens


@torch.no_grad()
def _measure(gpt: GPT, batches: Batches) -> _Statistics:
    """Run `gpt` on the batches with hooks that record every unit's activations and every
    block's input and output."""
    items = as_batches(batches, gpt.config.block_size)
    statistics = _Statistics(len(gpt.blocks))
    head_size = gpt.config.head_size
    norms = [gpt.norm_f, *(n for b in gpt.blocks for n in (b.norm1, b.norm2))]

    def record_norm(moments):
        return lambda module, inputs, output: moments.add(output)

    def record_heads(moments):
        def hook(module, inputs):
            heads = inputs[0].unflatten(-1, (-1, head_size))  # [batch, time, heads, head_size]
            moments.add(torch.linalg.vector_norm(heads, dim=-1))

        return hook

    def record_mlp(moments):
        return lambda module, inputs: moments.add(inputs[0])

    def record_influence(layer):
        def hook(module, inputs, output):
            cosine = F.cosine_similarity(inputs[0], output, dim=-1)
            statistics.influence[layer] += float((1 - cosine).double().sum())

        return hook

    handles = [n.register_forward_hook(record_norm(m)) for n, m in zip(norms, statistics.norms)]
    for layer, block in enumerate(gpt.blocks):
        handles += [
            block.attn.proj.register_forward_pre_hook(record_heads(statistics.heads[layer])),
            block.mlp.proj.register_forward_pre_hook(record_mlp(statistics.mlp[layer])),
            block.register_forward_hook(record_influence(layer)),
        ]
    device = next(gpt.parameters()).device
    was_training = gpt.training
    gpt.eval()
    try:
        for idx in progress(items, desc="importance", total=len(items)):
            gpt(idx.to(device))
            statistics.tokens += idx.numel()
    finally:
        for handle in handles:
            handle.remove()
        gpt.train(was_training)
    return statistics
