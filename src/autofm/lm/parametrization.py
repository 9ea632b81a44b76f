"""Standard (SP) and maximal-update (μP) parametrisation: per-parameter init std and LR multiplier.

Every tensor of the GPT falls in one of four kinds. Widths enter only through
`width_mult = width / base_width`, so at `width == base_width` SP and μP initialise identically
(attention scaling and the readout multiplier aside, see `GPTConfig`).

| kind      | tensors                              | init std, SP     | init std, μP     | Adam LR × (SP, μP) |
|-----------|--------------------------------------|------------------|------------------|--------------------|
| embedding | token and position embeddings        | σ                | σ                | 1, 1               |
| hidden    | attention qkv/proj, MLP fc/proj      | σ/√width_mult    | σ/√width_mult    | 1, 1/width_mult    |
| readout   | the untied output matrix             | σ/√width_mult    | σ (or 0)         | 1, 1               |
| vector    | LayerNorm gains (=1) and all biases (=0) | fixed        | fixed            | 1, 1               |

In μP the logits are multiplied by `output_mult / width_mult` and attention scores use
`attn_mult / head_size` instead of `1 / √head_size` (Yang et al., "Tensor Programs V", Table 8:
the MuReadout form). With Adam, hidden matrices then need an LR ∝ 1/width, everything else a
width-independent LR, which is what makes the best LR transfer across widths.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

import torch

if TYPE_CHECKING:
    from autofm.lm.model import GPT, GPTConfig

Kind = Literal["embedding", "hidden", "readout", "vector"]
PARAMETRIZATIONS = ("sp", "mup")


def parameter_kind(name: str, parameter: torch.Tensor) -> Kind:
    """The kind of a GPT parameter from its name: embedding, hidden, readout or vector."""
    if parameter.ndim < 2:
        return "vector"
    if name.startswith(("wte.", "wpe.")):
        return "embedding"
    if name.startswith("lm_head."):
        return "readout"
    return "hidden"


def init_std(config: GPTConfig, kind: Kind) -> float:
    """Initial standard deviation of a matrix of `kind` (vectors are initialised to 1 or 0)."""
    sigma = config.init_std
    if kind == "embedding":
        return sigma
    if kind == "hidden":
        return sigma / math.sqrt(config.width_mult)  # ∝ 1/√fan_in in both parametrisations
    if kind == "readout":
        if config.zero_readout:
            return 0.0
        # μP moves the 1/width of the readout into the logit multiplier (see GPT.forward)
        return sigma if config.parametrization == "mup" else sigma / math.sqrt(config.width_mult)
    raise ValueError(f"vectors have no random init (kind {kind!r})")


def lr_multiplier(config: GPTConfig, kind: Kind) -> float:
    """Adam learning-rate multiplier of a tensor of `kind` (the optimizer's LR is base LR × this)."""
    if config.parametrization == "mup" and kind == "hidden":
        return 1.0 / config.width_mult
    return 1.0


def parameter_groups(model: GPT, weight_decay: float = 0.0) -> list[dict]:
    """AdamW parameter groups, one per (LR multiplier, decayed?) pair, with an `lr_multiplier` key.

    Weight decay applies to matrices only (not to gains and biases). As in microsoft/mup's MuAdam,
    a group whose LR is divided by the width multiplier gets its weight decay multiplied by it,
    so the decoupled decay per step (LR × decay) does not depend on the width.
    """
    groups: dict[tuple[float, bool], list[torch.nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        kind = parameter_kind(name, parameter)
        key = (lr_multiplier(model.config, kind), kind != "vector")
        groups.setdefault(key, []).append(parameter)
    return [
        {
            "params": params,
            "lr_multiplier": multiplier,
            "weight_decay": weight_decay / multiplier if decayed else 0.0,
        }
        for (multiplier, decayed), params in sorted(groups.items())
    ]
