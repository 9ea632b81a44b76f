"""The paper's comparison points at a matched parameter count: structured magnitude pruning,
activation-importance pruning without super-network training, the parent's leading units as
they are, and the same architecture trained from scratch; plus the recovery fine-tuning that
every baseline and the searched model get alike.

The pruning baselines share one shape rule, the uniform shrink: every dimension (embedding
width, number of layers, heads, MLP width) is scaled by the same factor, chosen so that the
parameter count is closest to the target.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import torch

from autofm.compress.extraction import extract
from autofm.compress.importance import (
    Batches,
    UnitScores,
    importance_order,
    permute_by_importance,
    sort_parent,
)
from autofm.compress.space import SearchSpace, SubNetwork, count_parameters
from autofm.core.errors import ValidationError
from autofm.lm.model import GPT, GPTConfig
from autofm.lm.training import TrainConfig, evaluate, train

PRUNE_METHODS = ("magnitude", "importance", "leading")


def uniform_shrink(space: SearchSpace, factor: float) -> SubNetwork:
    """The sub-network of `space` with every dimension scaled by `factor` ∈ [0, 1], each
    rounded to the nearest choice the space offers (at least one layer and one head)."""
    if not 0 <= factor <= 1:
        raise ValidationError(f"shrink factor must be in [0, 1], got {factor}")
    parent = space.parent
    n_layers = min(parent.depth, max(1, math.floor(factor * parent.depth + 0.5)))
    layers = space.layers_for(n_layers)
    return space.build(
        _nearest(space.embed_choices(), factor * parent.width),
        n_layers,
        [_nearest(space.head_choices(i), factor * parent.heads_in(i)) for i in layers],
        [_nearest(space.mlp_choices(i), factor * parent.mlp_in(i)) for i in layers],
    )


def shrink_factor_for(space: SearchSpace, params_fraction: float) -> float:
    """A factor whose `uniform_shrink` has the parameter count closest to `params_fraction` ×
    the parent's (bisection: the count grows with the factor in steps; the factor returned is
    at the edge of its step)."""
    check_params_fraction(params_fraction)
    total = count_parameters(space.parent, space.largest())
    target = params_fraction * total
    smallest = count_parameters(space.parent, uniform_shrink(space, 0.0))
    if smallest > target:
        least = math.ceil(smallest / total * 1e4) / 1e4  # rounded up: asking for it is accepted
        raise ValidationError(
            f"params_fraction {params_fraction:g} is below the smallest uniform shrink of this "
            f"parent ({smallest:,} of {total:,} parameters); ask for at least {least:g}"
        )

    def count(factor: float) -> int:
        return count_parameters(space.parent, uniform_shrink(space, factor))

    low, high = 0.0, 1.0  # count(high) ≥ target, and count(low) < target unless low is 0
    for _ in range(60):
        middle = (low + high) / 2
        if count(middle) >= target:
            high = middle
        else:
            low = middle
    # the two factors straddle the last step of the count: keep the nearer (the larger on a tie)
    return min((high, low), key=lambda factor: abs(count(factor) - target))


def magnitude_scores(gpt: GPT) -> tuple[UnitScores, np.ndarray]:
    """L1 norm of each unit's weights (the matrix entries it reads or writes; biases and norm
    gains left out) and of each block's parameters: (unit scores, block scores)."""
    head_size = gpt.config.head_size

    def l1(tensor: torch.Tensor, dim: int) -> torch.Tensor:
        """Sum of |w| over every axis but `dim`."""
        return tensor.detach().abs().double().sum(dim=1 - dim)

    readouts = [gpt.wte.weight, gpt.wpe.weight]
    if gpt.lm_head is not None:
        readouts.append(gpt.lm_head.weight)
    embed = sum(l1(w, dim=1) for w in readouts)
    heads, neurons, blocks = [], [], []
    for block in gpt.blocks:
        attn, mlp = block.attn, block.mlp
        embed = embed + l1(attn.qkv.weight, 1) + l1(mlp.fc.weight, 1)
        embed = embed + l1(attn.proj.weight, 0) + l1(mlp.proj.weight, 0)
        rows = l1(attn.qkv.weight, 0).reshape(3, attn.n_head, head_size).sum(dim=(0, 2))
        columns = l1(attn.proj.weight, 1).reshape(attn.n_head, head_size).sum(dim=1)
        heads.append((rows + columns).cpu().numpy())
        neurons.append((l1(mlp.fc.weight, 0) + l1(mlp.proj.weight, 1)).cpu().numpy())
        blocks.append(sum(float(p.detach().abs().double().sum()) for p in block.parameters()))
    return UnitScores(embed.cpu().numpy(), tuple(heads), tuple(neurons)), np.array(blocks)


def magnitude_prune(gpt: GPT, params_fraction: float, **space_options: Any) -> tuple[GPT, dict]:
    """Structured magnitude pruning: keep the units and blocks with the largest L1 weights, in
    the uniform-shrink shape closest to `params_fraction` of the parameters (`gpt` untouched).
    `space_options` (min_embed, embed_step, mlp_step) set the grid the shape is rounded to."""
    check_params_fraction(params_fraction)
    scores, block_scores = magnitude_scores(gpt)
    permuted = permute_by_importance(copy.deepcopy(gpt), scores)
    layer_order = tuple(int(i) for i in importance_order(block_scores))
    return _shrunk(permuted, layer_order, params_fraction, "magnitude", space_options)


def importance_prune(
    gpt: GPT,
    batches: Batches,
    params_fraction: float,
    aggregation: str = "mean",
    **space_options: Any,
) -> tuple[GPT, dict]:
    """Activation-importance pruning without super-network training: sort `gpt` (a copy) on
    the calibration `batches`, keep the uniform-shrink shape closest to `params_fraction`."""
    check_params_fraction(params_fraction)
    permuted, layer_order, _ = sort_parent(copy.deepcopy(gpt), batches, aggregation)
    method = f"importance-{aggregation}"
    return _shrunk(permuted, layer_order, params_fraction, method, space_options)


def leading_prune(gpt: GPT, params_fraction: float, **space_options: Any) -> tuple[GPT, dict]:
    """The uniform-shrink shape closest to `params_fraction` cut from `gpt` as it is (its first
    units and blocks, no ranking): what sorting is measured against."""
    check_params_fraction(params_fraction)
    layer_order = tuple(range(gpt.config.depth))
    return _shrunk(gpt, layer_order, params_fraction, "leading", space_options)


def prune(
    gpt: GPT,
    method: str,
    params_fraction: float,
    batches: Batches | None = None,
    **space_options: Any,
) -> tuple[GPT, dict]:
    """The pruning baseline `method` (one of PRUNE_METHODS); 'importance' needs `batches`."""
    if method not in PRUNE_METHODS:
        raise ValidationError(f"pruning method must be one of {PRUNE_METHODS}, got {method!r}")
    if method == "magnitude":
        return magnitude_prune(gpt, params_fraction, **space_options)
    if method == "leading":
        return leading_prune(gpt, params_fraction, **space_options)
    if batches is None:
        raise ValidationError(
            "importance pruning needs calibration batches: pass batches (calibration_batches)"
        )
    return importance_prune(gpt, batches, params_fraction, **space_options)


def from_scratch(config: GPTConfig, seed: int = 0) -> tuple[GPT, dict]:
    """The architecture `config` (e.g. `sub_config(parent, sub)` of a searched sub-network)
    freshly initialised, to be trained with the same tokens as the other candidates."""
    model = GPT(config, seed=seed)
    return model, {"method": "scratch", "params": model.n_parameters(), "seed": seed}


def recover(
    model: GPT,
    train_tokens: np.ndarray,
    valid_tokens: np.ndarray,
    tokens: int,
    lr: float = 3e-4,
    seed: int = 0,
    batch_size: int = 16,
) -> tuple[GPT, float]:
    """Recovery fine-tuning with a fixed budget of `tokens` (0: none), the same for every
    baseline and the searched model; returns the model (trained in place) and its validation
    loss (nats per byte) afterwards."""
    if tokens < 0:
        raise ValidationError(f"recovery tokens must be ≥ 0, got {tokens}")
    if tokens == 0:
        return model, evaluate(model, valid_tokens)
    config = TrainConfig(tokens=int(tokens), lr=lr, seed=seed, batch_size=batch_size)
    result = train(model, train_tokens, valid_tokens, config)
    if result.diverged:
        raise ValidationError(f"recovery fine-tuning diverged at lr {lr}; use a smaller lr")
    return model, result.final_val_loss


def _shrunk(
    sorted_gpt: GPT,
    layer_order: tuple[int, ...],
    params_fraction: float,
    method: str,
    space_options: dict[str, Any],
) -> tuple[GPT, dict]:
    """Extract the uniform-shrink sub-network closest to `params_fraction` of a sorted parent."""
    sub, info = shrunk_sub(sorted_gpt.config, layer_order, params_fraction, method, space_options)
    return extract(sorted_gpt, sub), info


def shrunk_sub(
    parent,
    layer_order: tuple[int, ...],
    params_fraction: float,
    method: str,
    space_options: dict[str, Any],
) -> tuple[SubNetwork, dict]:
    """The uniform-shrink sub-network of a sorted `parent` shape (a GPTConfig or LlamaShape)
    closest to `params_fraction` of its parameters, and the pruned model's description."""
    space = SearchSpace(parent, "uniform", layer_order, **space_options)
    factor = shrink_factor_for(space, params_fraction)
    sub = uniform_shrink(space, factor)
    params = count_parameters(parent, sub)
    info = {
        "method": method,
        "params": params,
        "params_fraction": params / count_parameters(parent, space.largest()),
        "target_fraction": params_fraction,
        "shrink_factor": factor,
        "sub_network": sub.to_dict(),
        "layer_order": list(layer_order),
    }
    return sub, info


def _nearest(choices: list[int], value: float) -> int:
    """The choice nearest to `value` (the smaller one on a tie)."""
    return min(choices, key=lambda choice: (abs(choice - value), choice))


def check_params_fraction(params_fraction: float) -> None:
    """Refuse a parameter budget outside (0, 1] in one line that says what it means."""
    try:
        value = float(params_fraction)
    except (TypeError, ValueError):
        value = math.nan
    if not 0 < value <= 1:
        raise ValidationError(
            f"params_fraction must be in (0, 1], got {params_fraction!r} "
            "(e.g. 0.5 keeps half of the parent's parameters)"
        )
