"""Sub-networks of a parent GPT and the search spaces they are drawn from.

A sub-network keeps the first `embed` embedding channels, a subset of the parent's blocks (in
their original order), and in each kept block its first `heads` attention heads and first `mlp`
MLP neurons. After importance sorting (`autofm.compress.importance`) the first units are the most
important ones, so every sub-network is a prefix slice of the parent's weights, and the blocks
kept for `n` layers are the `n` most important ones (`layer_order[:n]`, re-sorted).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from autofm.core.config import ConfigMixin
from autofm.core.errors import ValidationError

if TYPE_CHECKING:
    import optuna

    from autofm.lm.model import GPTConfig

SPACES = ("uniform", "layerwise")


@dataclass(frozen=True)
class SubNetwork(ConfigMixin):
    """Embedding width, the parent blocks kept (ascending) and heads / MLP width per kept block."""

    embed: int
    layers: tuple[int, ...]
    heads: tuple[int, ...]
    mlp: tuple[int, ...]

    def check(self, parent: GPTConfig) -> SubNetwork:
        """Raise ValidationError unless this is a sub-network of `parent`; return self."""
        problems = []
        if not 1 <= self.embed <= parent.width:
            problems.append(f"embed {self.embed} is not in 1..{parent.width}")
        if not self.layers:
            problems.append("it keeps no layer (at least one is needed)")
        if list(self.layers) != sorted(set(self.layers)) or not all(
            0 <= layer < parent.depth for layer in self.layers
        ):
            problems.append(
                f"layers {list(self.layers)} must be distinct, ascending indices in "
                f"0..{parent.depth - 1}"
            )
        if not len(self.heads) == len(self.mlp) == len(self.layers):
            problems.append("heads and mlp need one entry per kept layer")
        else:
            for layer, heads, mlp in zip(self.layers, self.heads, self.mlp):
                if 0 <= layer < parent.depth and not 1 <= heads <= parent.heads_in(layer):
                    problems.append(
                        f"layer {layer}: {heads} heads, the parent has {parent.heads_in(layer)}"
                    )
                group = getattr(parent, "head_group", 1)
                if heads % group:
                    problems.append(
                        f"layer {layer}: {heads} heads is not a multiple of the query-group size "
                        f"{group} (grouped-query attention keeps whole groups)"
                    )
                if 0 <= layer < parent.depth and not 1 <= mlp <= parent.mlp_in(layer):
                    problems.append(
                        f"layer {layer}: MLP width {mlp}, the parent has {parent.mlp_in(layer)}"
                    )
        if problems:
            raise ValidationError(
                "not a sub-network of the parent: " + "; ".join(problems) + " (pick values "
                "within the parent's dimensions)"
            )
        return self

    @classmethod
    def full(cls, parent: GPTConfig) -> SubNetwork:
        """The parent itself."""
        layers = tuple(range(parent.depth))
        return cls(
            parent.width,
            layers,
            tuple(parent.heads_in(i) for i in layers),
            tuple(parent.mlp_in(i) for i in layers),
        )


def count_parameters(parent: GPTConfig, sub: SubNetwork) -> int:
    """Parameters of the dense model `sub` extracts to (what `GPT.n_parameters()` would say).

    A parent shape of another model family (e.g. `autofm.compress.hf_supernet.LlamaShape`) counts its
    own with a `count_parameters(sub)` method."""
    if hasattr(parent, "count_parameters"):
        return parent.count_parameters(sub)
    e, head_size = sub.embed, parent.head_size
    norm = 2 * e if parent.bias else e  # gain (and bias) of a LayerNorm or RMSNorm
    total = parent.vocab_size * e + parent.block_size * e + norm  # wte, wpe, final norm
    if not parent.tie_embeddings:
        total += parent.vocab_size * e
    bias = 1 if parent.bias else 0
    for heads, mlp in zip(sub.heads, sub.mlp):
        inner = heads * head_size
        total += 2 * norm
        total += e * 3 * inner + bias * 3 * inner + inner * e + bias * e  # qkv, attention proj
        total += e * mlp + bias * mlp + mlp * e + bias * e  # MLP fc, proj
    return total


def count_flops(parent: GPTConfig, sub: SubNetwork, seq_len: int | None = None) -> int:
    """Forward FLOPs per token at context `seq_len` (default block_size): 2 per multiply-add of
    every matrix (embeddings are look-ups) plus the attention scores and weighted sums. Other
    model families count their own (`count_flops(sub, seq_len)` on the parent shape)."""
    if hasattr(parent, "count_flops"):
        return parent.count_flops(sub, seq_len)
    seq_len = seq_len or parent.block_size
    e, head_size = sub.embed, parent.head_size
    flops = 2 * parent.vocab_size * e  # readout
    for heads, mlp in zip(sub.heads, sub.mlp):
        inner = heads * head_size
        flops += 2 * (e * 3 * inner + inner * e + 2 * e * mlp)
        # q·k and attention × v: under the causal mask a token attends to (T + 1) / 2 on average
        flops += 2 * 2 * ((seq_len + 1) // 2) * inner
    return flops


@dataclass(frozen=True)
class SearchSpace:
    """Sub-networks of `parent`: 'uniform' (one heads and MLP choice for all kept layers) or
    'layerwise' (one per kept layer). `layer_order` ranks the parent's blocks, most important
    first; widths are multiples of `embed_step` / `mlp_step` (and the parent's own width)."""

    parent: GPTConfig
    kind: str = "uniform"
    layer_order: tuple[int, ...] | None = None
    min_embed: int = 16
    embed_step: int = 16
    mlp_step: int = 16

    def __post_init__(self) -> None:
        if self.kind not in SPACES:
            raise ValidationError(f"search space must be one of {SPACES}, got {self.kind!r}")
        order = self.layer_order
        if order is not None and sorted(order) != list(range(self.parent.depth)):
            raise ValidationError(
                f"layer_order {list(order)} is not a permutation of 0..{self.parent.depth - 1}"
            )

    @property
    def ranking(self) -> tuple[int, ...]:
        return tuple(self.layer_order) if self.layer_order else tuple(range(self.parent.depth))

    def embed_choices(self) -> list[int]:
        width = self.parent.width
        choices = list(range(min(self.min_embed, width), width, self.embed_step))
        return sorted(set(choices) | {width})

    def mlp_choices(self, layer: int) -> list[int]:
        width = self.parent.mlp_in(layer)
        return sorted(set(range(self.mlp_step, width, self.mlp_step)) | {width})

    def head_choices(self, layer: int) -> list[int]:
        # grouped-query attention keeps whole query groups: multiples of the group size
        group = getattr(self.parent, "head_group", 1)
        return list(range(group, self.parent.heads_in(layer) + 1, group))

    def layers_for(self, n_layers: int) -> tuple[int, ...]:
        """The `n_layers` most important blocks, in their original order."""
        if not 1 <= n_layers <= self.parent.depth:
            raise ValidationError(f"n_layers must be in 1..{self.parent.depth}, got {n_layers}")
        return tuple(sorted(self.ranking[:n_layers]))

    def build(
        self, embed: int, n_layers: int, heads: int | Sequence[int], mlp: int | Sequence[int]
    ) -> SubNetwork:
        """The sub-network with these choices (a number applies to every kept layer)."""
        layers = self.layers_for(n_layers)
        heads = [heads] * n_layers if isinstance(heads, int | np.integer) else list(heads)
        mlp = [mlp] * n_layers if isinstance(mlp, int | np.integer) else list(mlp)
        # a uniform choice larger than a layer's own size is capped to it (non-uniform parents)
        heads = [min(int(h), self.parent.heads_in(i)) for h, i in zip(heads, layers)]
        mlp = [min(int(m), self.parent.mlp_in(i)) for m, i in zip(mlp, layers)]
        return SubNetwork(int(embed), layers, tuple(heads), tuple(mlp)).check(self.parent)

    def largest(self) -> SubNetwork:
        return SubNetwork.full(self.parent)

    def smallest(self) -> SubNetwork:
        first = self.ranking[0]
        return self.build(
            self.embed_choices()[0], 1, self.head_choices(first)[0], self.mlp_choices(first)[0]
        )

    def sample(self, rng: np.random.Generator) -> SubNetwork:
        """A sub-network drawn uniformly over the choices (per layer in a layerwise space)."""
        n_layers = int(rng.integers(1, self.parent.depth + 1))
        embed = int(rng.choice(self.embed_choices()))
        layers = self.layers_for(n_layers)
        if self.kind == "uniform":
            first = self.ranking[0]  # as in `suggest`: the most important layer's choices
            return self.build(
                embed,
                n_layers,
                int(rng.choice(self.head_choices(first))),
                int(rng.choice(self.mlp_choices(first))),
            )
        heads = [int(rng.choice(self.head_choices(i))) for i in layers]
        mlp = [int(rng.choice(self.mlp_choices(i))) for i in layers]
        return self.build(embed, n_layers, heads, mlp)

    def suggest(self, trial: optuna.Trial) -> SubNetwork:
        """The sub-network an Optuna trial proposes (categorical choices, so any sampler works)."""
        n_layers = trial.suggest_int("n_layers", 1, self.parent.depth)
        embed = trial.suggest_categorical("embed", self.embed_choices())
        if self.kind == "uniform":
            first = self.ranking[0]
            heads = trial.suggest_categorical("heads", self.head_choices(first))
            mlp = trial.suggest_categorical("mlp", self.mlp_choices(first))
            return self.build(embed, n_layers, heads, mlp)
        # one parameter per *rank* of layer, so that trials with different depths share them
        heads, mlp = [], []
        for rank in range(self.parent.depth):
            layer = self.ranking[rank]
            heads.append(trial.suggest_categorical(f"heads_{rank}", self.head_choices(layer)))
            mlp.append(trial.suggest_categorical(f"mlp_{rank}", self.mlp_choices(layer)))
        kept = self.layers_for(n_layers)
        by_layer = {self.ranking[r]: (heads[r], mlp[r]) for r in range(n_layers)}
        return self.build(
            embed, n_layers, [by_layer[i][0] for i in kept], [by_layer[i][1] for i in kept]
        )

    def calibrated_sampler(self, n_bins: int = 10, candidates: int = 2000) -> CalibratedSampler:
        """A sampler that fills parameter-count bins evenly (the paper's calibrated sampling)."""
        return CalibratedSampler(self, n_bins, candidates)


class CalibratedSampler:
    """Draws sub-networks so that each of `n_bins` equal-width bins of the parameter count
    (smallest to largest sub-network) is equally likely: a bin is drawn uniformly, then filled
    by rejection among uniform draws (whittle's stratified `ParamBins` sampling). It keeps no
    random state of its own: every draw uses the caller's generator (so a training run that
    saves its generator resumes exactly)."""

    def __init__(self, space: SearchSpace, n_bins: int, candidates: int):
        self.space, self.candidates = space, candidates
        low = count_parameters(space.parent, space.smallest())
        high = count_parameters(space.parent, space.largest())
        self.edges = np.linspace(low, high, n_bins + 1)

    def bin_of(self, sub: SubNetwork) -> int:
        n = count_parameters(self.space.parent, sub)
        return int(
            np.clip(np.searchsorted(self.edges, n, side="right") - 1, 0, len(self.edges) - 2)
        )

    def sample(self, rng: np.random.Generator) -> SubNetwork:
        target = int(rng.integers(len(self.edges) - 1))
        best, best_gap = None, np.inf
        for _ in range(self.candidates):
            sub = self.space.sample(rng)
            gap = abs(self.bin_of(sub) - target)
            if gap == 0:
                return sub
            if gap < best_gap:
                best, best_gap = sub, gap
        return best  # the bin is unreachable in this space: the nearest one drawn
