"""Warm-starting a wider GPT from a trained narrower one (Mallik et al., arXiv:2411.07340).

    θ_large = λ · zero_pad(θ_small) + s · θ_init(large)

`θ_init` is a fresh initialisation of the large model in its own parametrisation (μP: the large
model's μP-scaled init), so λ = 0, s = 1 is exactly training from scratch with the same seed.

Width grows by adding attention heads at a fixed head size and widening the MLP; new heads,
hidden units and residual coordinates are appended after the old ones, so every tensor's old
block sits in its top-left corner (the fused qkv matrix is padded per q/k/v part). Handling of the
tensors that are not plain matrices:

- norm gains have no random init (they start at 1) and shrinking them towards 0 would silence
  the layer, so they are interpolated towards their init instead: λ·pad(g) + (1 − λ)·1;
- biases start at 0, so the formula gives λ·pad(b);
- with `preserve_function` (default), the padded tensors are rescaled so that λ = 1, s = 0
  computes the small model's function: norm gains × √(w/W) (the mean square over W coordinates of
  which w − W are zero is w/W of that over w) and, in μP with an untied readout, the readout ×
  W/w (the logit multiplier base/width shrinks by w/W). This is exact for RMSNorm and bias-free
  or zero-bias layers; LayerNorm also subtracts the mean over all W coordinates, so it is only
  approximate there; a tied μP readout cannot be compensated without changing the input
  embedding, so it is not preserved either.

The optimizer state is not carried over: `train` always starts a fresh AdamW, as the paper does.
Growing across parametrisations is refused: SP weights have no μP meaning (their readout and
hidden-layer scales differ by powers of the width), so a μP perturbation of an SP model would mix
two incompatible scales and μTransfer's learning rates would not apply.
"""

from __future__ import annotations

import torch

from autofm.core.errors import ValidationError
from autofm.lm.model import GPT, GPTConfig
from autofm.lm.parametrization import parameter_kind

_MUST_MATCH = (
    "depth",
    "head_size",
    "block_size",
    "vocab_size",
    "mlp_ratio",
    "bias",
    "tie_embeddings",
    "norm",
    "norm_eps",
    "parametrization",
    "base_width",
    "init_std",
    "attn_mult",
    "output_mult",
)


_NAMES = {"sp": "SP", "mup": "μP"}


def _check_target(source: GPTConfig, target: GPTConfig) -> None:
    if not (source.uniform and target.uniform):
        raise ValidationError(
            "grow widens uniform models only (the same heads and MLP width in every layer); "
            "this one has per-layer shapes (layer_heads/layer_mlp)"
        )
    if target.parametrization != source.parametrization:
        trained, wanted = (_NAMES[source.parametrization], _NAMES[target.parametrization])
        raise ValidationError(
            f"cannot grow a model trained in {trained} into {wanted}: its weights are scaled for "
            f"{trained} (readout and hidden-layer scales differ by powers of the width), so a "
            f"{wanted} perturbation would mix incompatible scales and the transferred learning "
            f"rate would not apply; grow in {trained}, or retrain the small model in {wanted}"
        )
    if target.width < source.width:
        raise ValidationError(
            f"target width {target.width} is smaller than the source width {source.width}; "
            "grow only widens (use a width ≥ the source's)"
        )
    different = [
        f"{name} ({getattr(source, name)!r} → {getattr(target, name)!r})"
        for name in _MUST_MATCH
        if getattr(source, name) != getattr(target, name)
    ]
    if different:
        raise ValidationError(
            "grow changes only the width; these fields differ between source and target: "
            + ", ".join(different)
        )


def zero_pad(tensor: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """`tensor` in the leading corner of a zero tensor of `shape`."""
    out = torch.zeros(shape, dtype=tensor.dtype)
    out[tuple(slice(0, n) for n in tensor.shape)] = tensor
    return out


def _pad_qkv(tensor: torch.Tensor, source: GPTConfig, target: GPTConfig) -> torch.Tensor:
    # rows are [q heads | k heads | v heads]: pad the heads of each part, then the input columns
    parts = tensor.reshape(3, source.n_head, source.head_size, *tensor.shape[1:])
    shape = (3, target.n_head, target.head_size) + ((target.width,) if tensor.ndim == 2 else ())
    return zero_pad(parts, shape).reshape(3 * target.width, *shape[3:])


def pad_state(small: GPT, large: GPT, preserve_function: bool = True) -> dict:
    """The small model's tensors zero-padded to the shapes of `large`'s (see the module doc)."""
    source, target = small.config, large.config
    template = large.state_dict()
    padded = {}
    for name, tensor in small.state_dict().items():
        tensor = tensor.detach().cpu()
        if ".attn.qkv." in name:
            out = _pad_qkv(tensor, source, target)
        else:
            out = zero_pad(tensor, tuple(template[name].shape))
        if preserve_function and name.endswith("weight") and tensor.ndim == 1:
            out = out * (source.width / target.width) ** 0.5  # norm gain
        if preserve_function and name == "lm_head.weight" and target.parametrization == "mup":
            out = out * (target.width / source.width)  # undo the smaller logit multiplier
        padded[name] = out
    return padded


@torch.no_grad()
def grow(
    small_model: GPT,
    target_config: GPTConfig | int,
    shrink: float = 0.4,
    perturb: float = 1.0,
    seed: int = 0,
    preserve_function: bool = True,
) -> GPT:
    """A wider GPT warm-started from `small_model`: shrink · zero_pad(small) + perturb · init.

    `target_config` is a GPTConfig or just the new width; `seed` seeds the fresh initialisation
    (the same seed as a scratch run makes shrink=0, perturb=1 identical to it).
    """
    source = small_model.config
    if isinstance(target_config, int) and not isinstance(target_config, bool):
        target_config = source.replace(width=target_config)
    if not isinstance(target_config, GPTConfig):
        raise ValidationError(
            f"target_config must be a GPTConfig or a width, got {target_config!r}"
        )
    _check_target(source, target_config)
    if not (0.0 <= shrink and 0.0 <= perturb):
        raise ValidationError(f"shrink and perturb must be ≥ 0, got {shrink}, {perturb}")
    large = GPT(target_config, seed=seed)
    padded = pad_state(small_model, large, preserve_function)
    for name, parameter in large.named_parameters():
        if parameter_kind(name, parameter) == "vector" and name.endswith("weight"):
            # a norm gain: interpolate towards its init 1 (shrinking it would silence the layer)
            parameter.copy_(shrink * padded[name] + (1.0 - shrink) * parameter)
        else:  # matrices and biases (whose init is 0)
            parameter.copy_(shrink * padded[name] + perturb * parameter)
    return large
