"""Hugging Face Llama-family models (`transformers.LlamaForCausalLM`: RMSNorm, RoPE, SwiGLU,
grouped-query attention) as weight-sharing super-networks.

`LlamaShape` is the parent shape a `SearchSpace` draws sub-networks from; a sub-network keeps
whole query groups (heads are a multiple of `num_attention_heads // num_key_value_heads`, with
one key/value head per kept group). `LlamaSuperNetwork` runs a sub-network as prefix slices of
the model's weights (views, no copies); `sort_llama` permutes the weights by importance on
calibration batches so that every sub-network is a slice of the most important units.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb, repeat_kv

from autofm.compress.importance import (
    AGGREGATIONS,
    ActivationMoments,
    Batches,
    UnitScores,
    as_batches,
    importance_order,
    permute_along,
)
from autofm.compress.space import SearchSpace, SubNetwork
from autofm.core.config import ConfigMixin
from autofm.core.errors import ValidationError
from autofm.core.progress import progress


@dataclass(frozen=True)
class LlamaShape(ConfigMixin):
    """The dimensions of a Llama parent, in the terms `SearchSpace` and `SubNetwork` use."""

    vocab_size: int
    width: int
    depth: int
    heads: int
    kv_heads: int
    head_size: int
    mlp: int
    block_size: int
    tie_embeddings: bool = False
    attention_bias: bool = False
    mlp_bias: bool = False

    @classmethod
    def from_config(cls, config: LlamaConfig) -> LlamaShape:
        return cls(
            vocab_size=config.vocab_size,
            width=config.hidden_size,
            depth=config.num_hidden_layers,
            heads=config.num_attention_heads,
            kv_heads=config.num_key_value_heads,
            head_size=config.head_dim,
            mlp=config.intermediate_size,
            block_size=config.max_position_embeddings,
            tie_embeddings=bool(config.tie_word_embeddings),
            attention_bias=bool(config.attention_bias),
            mlp_bias=bool(config.mlp_bias),
        )

    @property
    def head_group(self) -> int:
        """Query heads per key/value head: sub-networks keep multiples of it."""
        return self.heads // self.kv_heads

    def heads_in(self, layer: int) -> int:
        return self.heads

    def mlp_in(self, layer: int) -> int:
        return self.mlp

    def count_parameters(self, sub: SubNetwork) -> int:
        """Parameters of the model `sub` extracts to (its `num_parameters()`)."""
        e, head_size = sub.embed, self.head_size
        total = self.vocab_size * e + e  # embedding, final RMSNorm
        if not self.tie_embeddings:
            total += self.vocab_size * e
        for heads, mlp in zip(sub.heads, sub.mlp):
            query, key_value = heads * head_size, heads // self.head_group * head_size
            total += 2 * e  # the two RMSNorm gains
            total += e * (query + 2 * key_value) + query * e  # q, k, v, o
            total += 3 * e * mlp  # SwiGLU gate, up, down
            if self.attention_bias:
                total += query + 2 * key_value + e
            if self.mlp_bias:
                total += 2 * mlp + e
        return total

    def count_flops(self, sub: SubNetwork, seq_len: int | None = None) -> int:
        """Forward FLOPs per token at context `seq_len` (default max_position_embeddings),
        counted as `autofm.compress.count_flops` counts a GPT's."""
        seq_len = seq_len or self.block_size
        e, head_size = sub.embed, self.head_size
        flops = 2 * self.vocab_size * e  # readout
        for heads, mlp in zip(sub.heads, sub.mlp):
            query, key_value = heads * head_size, heads // self.head_group * head_size
            flops += 2 * (e * (query + 2 * key_value) + query * e + 3 * e * mlp)
            # q·k and attention × v: under the causal mask a token attends to (T + 1) / 2 on average
            flops += 2 * 2 * ((seq_len + 1) // 2) * query
        return flops


class LlamaSuperNetwork(nn.Module):
    """`forward(input_ids, sub, targets)` runs sub-network `sub` of `model` (all of it when None).

    `layer_order` ranks the model's layers by importance (most important first); it decides
    which layers a sub-network with fewer layers keeps (`space()`)."""

    def __init__(self, model: LlamaForCausalLM, layer_order: Sequence[int] | None = None):
        super().__init__()
        if not isinstance(model, LlamaForCausalLM):
            raise ValidationError(
                "only Llama-family (LlamaForCausalLM) models are supported: got "
                f"{type(model).__name__}"
            )
        self.model = model
        self.shape = LlamaShape.from_config(model.config)
        depth = self.shape.depth
        self.layer_order = tuple(layer_order) if layer_order else tuple(range(depth))
        if sorted(self.layer_order) != list(range(depth)):
            raise ValidationError(
                f"layer_order {list(self.layer_order)} is not a permutation of 0..{depth - 1}"
            )

    @property
    def config(self) -> LlamaShape:
        """The parent shape (what `SearchSpace` and `count_parameters` take)."""
        return self.shape

    def space(self, kind: str = "uniform", **options) -> SearchSpace:
        """The search space of this super-network's sub-networks."""
        return SearchSpace(self.shape, kind, self.layer_order, **options)

    def trainee(self) -> LlamaTrainee:
        """The model as `autofm.lm.training.train` trains it (at this shape's block size)."""
        return LlamaTrainee(self.model, self.shape)

    def forward(
        self,
        input_ids: torch.Tensor,
        sub: SubNetwork | None = None,
        targets: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if sub is None:
            logits = self.model(input_ids=input_ids, use_cache=False).logits
        else:
            logits = self._forward_sub(input_ids, sub.check(self.shape))
        loss = None
        if targets is not None:
            # in float32 as transformers' own loss, whatever the weights' precision
            loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())
        return logits, loss

    def _forward_sub(self, input_ids: torch.Tensor, sub: SubNetwork) -> torch.Tensor:
        llama, e = self.model.model, sub.embed
        embedding = llama.embed_tokens
        x = F.embedding(input_ids, embedding.weight[:, :e], embedding.padding_idx)
        positions = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
        # rotary embeddings depend on head_dim only, which sub-networks keep
        rotary = llama.rotary_emb(x, positions)
        for layer, heads, mlp in zip(sub.layers, sub.heads, sub.mlp):
            block = llama.layers[layer]
            normed = _rms_norm(block.input_layernorm, x, e)
            x = x + _attention(block.self_attn, normed, heads, self.shape.head_group, rotary)
            x = x + _mlp(block.mlp, _rms_norm(block.post_attention_layernorm, x, e), mlp)
        return F.linear(_rms_norm(llama.norm, x, e), self.model.lm_head.weight[:, :e])


class LlamaTrainee(nn.Module):
    """A `LlamaForCausalLM` as `autofm.lm.training.train` takes a model: `forward(idx,
    targets)` → (logits, loss), `config` with the `block_size` it trains at (a `LlamaShape`),
    `n_parameters()`, `parameter_groups()` and a `checkpoint_kind` for its run folder's state.
    The weights are the model's own (trained in place)."""

    checkpoint_kind = "hf-llama"

    def __init__(self, model: LlamaForCausalLM, shape: LlamaShape | None = None):
        super().__init__()
        self.model = model
        self.config = shape or LlamaShape.from_config(model.config)

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        logits = self.model(input_ids=idx, use_cache=False).logits
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())
        return logits, loss

    def n_parameters(self) -> int:
        return self.model.num_parameters()

    def parameter_groups(self, weight_decay: float = 0.0) -> list[dict]:
        """AdamW groups as a GPT's (standard parametrisation): decay on matrices only."""
        matrices = [p for p in self.parameters() if p.ndim >= 2]
        vectors = [p for p in self.parameters() if p.ndim < 2]
        return [
            {"params": vectors, "lr_multiplier": 1.0, "weight_decay": 0.0},
            {"params": matrices, "lr_multiplier": 1.0, "weight_decay": weight_decay},
        ]


def _rms_norm(norm: nn.Module, x: torch.Tensor, e: int) -> torch.Tensor:
    """RMSNorm over the first `e` channels (the kept ones) with their gains, in float32 as
    `LlamaRMSNorm`: the norm of a prefix, not a prefix of the norm."""
    h = x.float()
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + norm.variance_epsilon)
    return norm.weight[:e] * h.to(x.dtype)


def _rows(linear: nn.Linear, rows: int, columns: int):
    bias = linear.bias[:rows] if linear.bias is not None else None
    return linear.weight[:rows, :columns], bias


def _attention(attn: nn.Module, x, heads: int, group: int, rotary) -> torch.Tensor:
    """The first `heads` query heads (whole groups) and their `heads // group` key/value heads."""
    batch, time, e = x.shape
    head_size = attn.head_dim
    query, key_value = heads * head_size, heads // group * head_size
    q = F.linear(x, *_rows(attn.q_proj, query, e)).view(batch, time, -1, head_size)
    k = F.linear(x, *_rows(attn.k_proj, key_value, e)).view(batch, time, -1, head_size)
    v = F.linear(x, *_rows(attn.v_proj, key_value, e)).view(batch, time, -1, head_size)
    q, k, v = (t.transpose(1, 2) for t in (q, k, v))
    q, k = apply_rotary_pos_emb(q, k, *rotary)
    # key/value head i serves query heads i*group .. i*group + group - 1, as in the parent
    k, v = repeat_kv(k, group), repeat_kv(v, group)
    dropout = attn.attention_dropout if attn.training else 0.0
    y = F.scaled_dot_product_attention(
        q, k, v, dropout_p=dropout, is_causal=True, scale=attn.scaling
    )
    y = y.transpose(1, 2).reshape(batch, time, query)
    bias = attn.o_proj.bias[:e] if attn.o_proj.bias is not None else None
    return F.linear(y, attn.o_proj.weight[:e, :query], bias)


def _mlp(mlp: nn.Module, x: torch.Tensor, width: int) -> torch.Tensor:
    """The first `width` SwiGLU neurons, reading and writing the kept channels."""
    e = x.shape[-1]
    hidden = mlp.act_fn(F.linear(x, *_rows(mlp.gate_proj, width, e)))
    hidden = hidden * F.linear(x, *_rows(mlp.up_proj, width, e))
    bias = mlp.down_proj.bias[:e] if mlp.down_proj.bias is not None else None
    return F.linear(hidden, mlp.down_proj.weight[:e, :width], bias)


@torch.no_grad()
def llama_importance(
    model: LlamaForCausalLM, batches: Batches, aggregation: str = "mean"
) -> tuple[UnitScores, np.ndarray]:
    """Unit and block importance of a Llama model on calibration `batches` of token ids, as
    `autofm.compress.importance` measures a GPT's: channels by every RMSNorm's output (summed
    over the norms), query groups (`UnitScores.heads`, one score per key/value head) by the norm
    of the group's attention output before o_proj, neurons by act(gate)·up, aggregated over
    tokens by `aggregation`; blocks by 1 − cos(h_in, h_out). Returns (unit scores, blocks)."""
    if aggregation not in AGGREGATIONS:
        raise ValidationError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
    items = as_batches(batches, model.config.max_position_embeddings)
    llama, n_groups = model.model, model.config.num_key_value_heads
    depth = len(llama.layers)
    norms = [
        llama.norm,
        *(n for b in llama.layers for n in (b.input_layernorm, b.post_attention_layernorm)),
    ]
    norm_moments = [ActivationMoments() for _ in norms]
    group_moments = [ActivationMoments() for _ in range(depth)]
    neuron_moments = [ActivationMoments() for _ in range(depth)]
    influence, tokens = np.zeros(depth), 0

    def record_norm(moments):
        return lambda module, inputs, output: moments.add(output)

    def record_groups(moments):
        def hook(module, inputs):
            # [batch, time, heads · head_dim], a group's query heads contiguous
            groups = inputs[0].unflatten(-1, (n_groups, -1))
            moments.add(torch.linalg.vector_norm(groups.float(), dim=-1))

        return hook

    def record_neurons(moments):
        return lambda module, inputs: moments.add(inputs[0])

    def record_influence(layer):
        def hook(module, args, kwargs, output):
            h_in = args[0] if args else kwargs["hidden_states"]
            h_out = output[0] if isinstance(output, tuple) else output
            cosine = F.cosine_similarity(h_in.float(), h_out.float(), dim=-1)
            influence[layer] += float((1 - cosine).double().sum())

        return hook

    handles = [n.register_forward_hook(record_norm(m)) for n, m in zip(norms, norm_moments)]
    for layer, block in enumerate(llama.layers):
        handles += [
            block.self_attn.o_proj.register_forward_pre_hook(record_groups(group_moments[layer])),
            block.mlp.down_proj.register_forward_pre_hook(record_neurons(neuron_moments[layer])),
            block.register_forward_hook(record_influence(layer), with_kwargs=True),
        ]
    was_training = model.training
    model.eval()
    try:
        for ids in progress(items, desc="importance", total=len(items)):
            model(input_ids=ids.to(model.device), use_cache=False)
            tokens += ids.numel()
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    units = UnitScores(
        np.sum([m.aggregate(aggregation) for m in norm_moments], axis=0),
        tuple(m.aggregate(aggregation) for m in group_moments),
        tuple(m.aggregate(aggregation) for m in neuron_moments),
    )
    return units, influence / tokens


@torch.no_grad()
def sort_llama(
    model: LlamaForCausalLM | LlamaSuperNetwork, batches: Batches, aggregation: str = "mean"
) -> tuple[int, ...]:
    """Permute `model`'s weights in place so that channels, query groups (with their key/value
    heads) and neurons come in order of importance on `batches` (`llama_importance`); the model
    computes the same function. Returns the layer order, most important layer first."""
    model = model.model if isinstance(model, LlamaSuperNetwork) else model
    units, blocks = llama_importance(model, batches, aggregation)
    permute_llama(model, units)
    return tuple(int(i) for i in importance_order(blocks))


@torch.no_grad()
def permute_llama(model: LlamaForCausalLM, units: UnitScores) -> None:
    """Permute `model`'s weights in place so that channels, query groups (one score per
    key/value head, moving with their query heads) and MLP neurons come in order of `units`,
    highest first; the model computes the same function."""
    llama, config = model.model, model.config

    def order(scores: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(importance_order(scores))

    channels = order(units.embed)
    permute_along(llama.embed_tokens.weight, channels, dim=1)
    if model.lm_head.weight is not llama.embed_tokens.weight:  # tied: already reordered
        permute_along(model.lm_head.weight, channels, dim=1)
    permute_along(llama.norm.weight, channels, dim=0)
    head_size, group = config.head_dim, config.num_attention_heads // config.num_key_value_heads
    for block, group_scores, neuron_scores in zip(llama.layers, units.heads, units.mlp):
        attn, mlp = block.self_attn, block.mlp
        for norm in (block.input_layernorm, block.post_attention_layernorm):
            permute_along(norm.weight, channels, dim=0)
        groups = order(group_scores)
        # a group's query heads are contiguous rows of q_proj and move together, with the rows
        # of its key/value head and its o_proj columns
        query_rows = groups[:, None] * group * head_size + torch.arange(group * head_size)
        key_value_rows = groups[:, None] * head_size + torch.arange(head_size)
        query_rows, key_value_rows = query_rows.flatten(), key_value_rows.flatten()
        neurons = order(neuron_scores)
        for linear, rows in (
            (attn.q_proj, query_rows),
            (attn.k_proj, key_value_rows),
            (attn.v_proj, key_value_rows),
            (mlp.gate_proj, neurons),
            (mlp.up_proj, neurons),
        ):
            _reorder_linear(linear, rows, channels)
        _reorder_linear(attn.o_proj, channels, query_rows)
        _reorder_linear(mlp.down_proj, channels, neurons)


def _reorder_linear(linear: nn.Linear, rows: torch.Tensor, columns: torch.Tensor) -> None:
    permute_along(linear.weight, rows, dim=0)
    permute_along(linear.weight, columns, dim=1)
    permute_along(linear.bias, rows, dim=0)
