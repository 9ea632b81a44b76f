"""The pruning baselines of `autofm.compress.baselines` for a Hugging Face Llama: structured
magnitude pruning (L1 of each unit's weights), activation-importance pruning without
super-network training, and the model's leading units as they are, each cut to the uniform-shrink
shape closest to a parameter budget (whole query groups, as every Llama sub-network keeps).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from transformers import LlamaForCausalLM

from autofm.compress.baselines import PRUNE_METHODS, check_params_fraction, shrunk_sub
from autofm.compress.hf_extract import extract_llama
from autofm.compress.hf_supernet import LlamaSuperNetwork, permute_llama, sort_llama
from autofm.compress.importance import Batches, UnitScores, importance_order
from autofm.core.errors import ValidationError


@torch.no_grad()
def llama_magnitude_scores(model: LlamaForCausalLM) -> tuple[UnitScores, np.ndarray]:
    """L1 norm of each unit's weights (the matrix entries it reads or writes; norm gains and
    biases left out) and of each block's parameters, as `magnitude_scores` measures a GPT's:
    (unit scores with one score per query group, block scores)."""
    llama, config = model.model, model.config
    group = config.num_attention_heads // config.num_key_value_heads
    head_size = config.head_dim

    def l1(weight: torch.Tensor, dim: int) -> torch.Tensor:
        """Sum of |w| over every axis but `dim`."""
        return weight.detach().abs().double().sum(dim=1 - dim)

    embed = l1(llama.embed_tokens.weight, 1)
    if model.lm_head.weight is not llama.embed_tokens.weight:
        embed = embed + l1(model.lm_head.weight, 1)
    heads, neurons, blocks = [], [], []
    for block in llama.layers:
        attn, mlp = block.self_attn, block.mlp
        for reader in (attn.q_proj, attn.k_proj, attn.v_proj, mlp.gate_proj, mlp.up_proj):
            embed = embed + l1(reader.weight, 1)
        embed = embed + l1(attn.o_proj.weight, 0) + l1(mlp.down_proj.weight, 0)
        # a query group: its query heads' q rows and o columns, its key/value head's k, v rows
        query = l1(attn.q_proj.weight, 0) + l1(attn.o_proj.weight, 1)
        query = query.reshape(-1, group * head_size).sum(dim=1)
        key_value = l1(attn.k_proj.weight, 0) + l1(attn.v_proj.weight, 0)
        heads.append((query + key_value.reshape(-1, head_size).sum(dim=1)).cpu().numpy())
        neuron = l1(mlp.gate_proj.weight, 0) + l1(mlp.up_proj.weight, 0)
        neurons.append((neuron + l1(mlp.down_proj.weight, 1)).cpu().numpy())
        blocks.append(sum(float(p.detach().abs().double().sum()) for p in block.parameters()))
    return UnitScores(embed.cpu().numpy(), tuple(heads), tuple(neurons)), np.array(blocks)


def prune_llama(
    supernet: LlamaSuperNetwork,
    method: str,
    params_fraction: float,
    batches: Batches | None = None,
    aggregation: str = "mean",
) -> tuple[LlamaForCausalLM, dict]:
    """The pruning baseline `method` (one of PRUNE_METHODS) of `supernet`'s model at
    `params_fraction` of its parameters, as a stand-alone `LlamaForCausalLM` (the parent is
    untouched); 'importance' needs calibration `batches`. Returns (model, description)."""
    if method not in PRUNE_METHODS:
        raise ValidationError(f"pruning method must be one of {PRUNE_METHODS}, got {method!r}")
    check_params_fraction(params_fraction)
    if method == "importance" and batches is None:
        raise ValidationError(
            "importance pruning needs calibration batches: pass batches (calibration_batches)"
        )
    parent = supernet.model
    if method == "leading":
        sorted_model, layer_order = parent, tuple(range(supernet.shape.depth))
    elif method == "magnitude":
        sorted_model = copy.deepcopy(parent)
        units, blocks = llama_magnitude_scores(sorted_model)
        permute_llama(sorted_model, units)
        layer_order = tuple(int(i) for i in importance_order(blocks))
    else:
        sorted_model = copy.deepcopy(parent)
        layer_order = sort_llama(sorted_model, batches, aggregation)
        method = f"importance-{aggregation}"
    sub, info = shrunk_sub(supernet.shape, layer_order, params_fraction, method, {})
    return extract_llama(sorted_model, sub), info
