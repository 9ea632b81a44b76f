"""Turn a sub-network into a stand-alone dense GPT whose logits equal the sliced super-network's.

The extracted model is an `autofm.lm` GPT (per-layer heads and MLP widths where they differ), so
it saves, loads, trains and generates like any other; its checkpoint records the parent and the
sub-network it came from.
"""

from __future__ import annotations

import dataclasses

import torch

from autofm.compress.space import SubNetwork
from autofm.compress.supernet import SuperNetwork
from autofm.lm.model import GPT, GPTConfig


def sub_config(parent: GPTConfig, sub: SubNetwork) -> GPTConfig:
    """The GPTConfig of the dense model `sub` extracts to."""
    sub.check(parent)
    heads, mlp = tuple(sub.heads), tuple(sub.mlp)
    uniform = (
        len(set(heads)) == 1
        and heads[0] * parent.head_size == sub.embed
        and len(set(mlp)) == 1
        and mlp[0] == parent.mlp_ratio * sub.embed
    )
    changes = dict(width=sub.embed, depth=len(sub.layers), layer_heads=None, layer_mlp=None)
    if not uniform:
        changes.update(layer_heads=heads, layer_mlp=mlp)
    if parent.parametrization == "mup":
        # keep the parent's logit multiplier output_mult / width_mult at the narrower width
        changes["output_mult"] = parent.output_mult * sub.embed / parent.width
    return dataclasses.replace(parent, **changes)


@torch.no_grad()
def extract(supernet: SuperNetwork | GPT, sub: SubNetwork) -> GPT:
    """A dense GPT holding copies of the weight slices `sub` uses (the parent is untouched)."""
    gpt = supernet.gpt if isinstance(supernet, SuperNetwork) else supernet
    parent = gpt.config
    weight = gpt.wte.weight
    model = GPT(sub_config(parent, sub), seed=0).to(device=weight.device, dtype=weight.dtype)
    e, head_size = sub.embed, parent.head_size
    model.wte.weight.copy_(gpt.wte.weight[:, :e])
    model.wpe.weight.copy_(gpt.wpe.weight[:, :e])
    _copy_norm(model.norm_f, gpt.norm_f, e)
    if gpt.lm_head is not None:
        model.lm_head.weight.copy_(gpt.lm_head.weight[:, :e])
    for target, layer, heads, width in zip(model.blocks, sub.layers, sub.heads, sub.mlp):
        source = gpt.blocks[layer]
        _copy_norm(target.norm1, source.norm1, e)
        _copy_norm(target.norm2, source.norm2, e)
        inner, used = source.attn.n_head * head_size, heads * head_size
        rows = torch.cat([torch.arange(p * inner, p * inner + used) for p in range(3)])
        target.attn.qkv.weight.copy_(source.attn.qkv.weight[rows, :e])
        target.attn.proj.weight.copy_(source.attn.proj.weight[:e, :used])
        target.mlp.fc.weight.copy_(source.mlp.fc.weight[:width, :e])
        target.mlp.proj.weight.copy_(source.mlp.proj.weight[:e, :width])
        if parent.bias:
            target.attn.qkv.bias.copy_(source.attn.qkv.bias[rows])
            target.attn.proj.bias.copy_(source.attn.proj.bias[:e])
            target.mlp.fc.bias.copy_(source.mlp.fc.bias[:width])
            target.mlp.proj.bias.copy_(source.mlp.proj.bias[:e])
    return model.train(gpt.training)


def _copy_norm(target: torch.nn.Module, source: torch.nn.Module, e: int) -> None:
    target.weight.copy_(source.weight[:e])
    if source.bias is not None:
        target.bias.copy_(source.bias[:e])
