"""A parent GPT run as a weight-sharing super-network: any sub-network is a forward pass over
prefix slices of the parent's weights (views, no copies), so training a sub-network trains the
parent's weights it shares.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from autofm.compress.space import SearchSpace, SubNetwork
from autofm.core.errors import ValidationError
from autofm.lm.model import GPT


class SuperNetwork(nn.Module):
    """`forward(idx, sub, targets)` runs sub-network `sub` of `gpt` (the whole GPT when None).

    `layer_order` ranks the parent's blocks by importance (most important first); it decides
    which blocks a sub-network with fewer layers keeps (`space()`)."""

    def __init__(self, gpt: GPT, layer_order: Sequence[int] | None = None):
        super().__init__()
        self.gpt = gpt
        if layer_order is None:
            layer_order = range(gpt.config.depth)
        self.layer_order = tuple(int(i) for i in layer_order)
        SearchSpace(gpt.config, layer_order=self.layer_order)  # checks it is a permutation

    @property
    def config(self):
        return self.gpt.config

    def space(self, kind: str = "uniform", **options) -> SearchSpace:
        """The search space of this super-network's sub-networks."""
        return SearchSpace(self.config, kind, self.layer_order, **options)

    def trainee(self) -> GPT:
        """The model `autofm.lm.training.train` trains: the parent GPT itself."""
        return self.gpt

    def forward(
        self,
        idx: torch.Tensor,
        sub: SubNetwork | None = None,
        targets: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if sub is None:
            return self.gpt(idx, targets)
        gpt, config = self.gpt, self.gpt.config
        sub.check(config)  # cheap, and a slice past the parent's sizes would read other weights
        time = idx.shape[1]
        if time > config.block_size:
            raise ValidationError(
                f"sequence of length {time} is longer than block_size {config.block_size}"
            )
        e = sub.embed
        x = F.embedding(idx, gpt.wte.weight[:, :e]) + gpt.wpe.weight[:time, :e]
        for layer, heads, mlp in zip(sub.layers, sub.heads, sub.mlp):
            block = gpt.blocks[layer]
            x = x + _attention(block.attn, _norm(block.norm1, x, e), heads, e)
            x = x + _mlp(block.mlp, _norm(block.norm2, x, e), mlp, e)
        x = _norm(gpt.norm_f, x, e)
        readout = gpt.wte.weight if gpt.lm_head is None else gpt.lm_head.weight
        logits = F.linear(x, readout[:, :e])
        if config.parametrization == "mup":
            # the parent's multiplier: a sub-network computes the parent's function, narrowed
            logits = logits * (config.output_mult / config.width_mult)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        return logits, loss


def _norm(module: nn.Module, x: torch.Tensor, e: int) -> torch.Tensor:
    """LayerNorm / RMSNorm over the first `e` channels with the first `e` gains and biases."""
    bias = module.bias[:e] if module.bias is not None else None
    if isinstance(module, nn.LayerNorm):
        return F.layer_norm(x, (e,), module.weight[:e], bias, module.eps)
    y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + module.eps) * module.weight[:e]
    return y + bias if bias is not None else y


def _rows(linear: nn.Linear, start: int, stop: int, columns: int):
    bias = linear.bias[start:stop] if linear.bias is not None else None
    return linear.weight[start:stop, :columns], bias


def _attention(attn: nn.Module, x: torch.Tensor, heads: int, e: int) -> torch.Tensor:
    """The first `heads` heads of a block's attention, reading the first `e` channels."""
    batch, time, _ = x.shape
    head_size = attn.config.head_size
    inner, used = attn.n_head * head_size, heads * head_size
    # q, k and v rows of the fused qkv matrix: three slices, each a view
    q, k, v = (
        F.linear(x, *_rows(attn.qkv, part * inner, part * inner + used, e)) for part in range(3)
    )
    shape = (batch, time, heads, head_size)
    q, k, v = (t.view(shape).transpose(1, 2) for t in (q, k, v))
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=attn.scale)
    y = y.transpose(1, 2).reshape(batch, time, used)
    bias = attn.proj.bias[:e] if attn.proj.bias is not None else None
    return F.linear(y, attn.proj.weight[:e, :used], bias)


def _mlp(mlp: nn.Module, x: torch.Tensor, width: int, e: int) -> torch.Tensor:
    """The first `width` neurons of a block's MLP, reading and writing the first `e` channels."""
    hidden = F.gelu(F.linear(x, *_rows(mlp.fc, 0, width, e)))
    bias = mlp.proj.bias[:e] if mlp.proj.bias is not None else None
    return F.linear(hidden, mlp.proj.weight[:e, :width], bias)
