"""A byte-level decoder-only GPT with standard (SP) or maximal-update (μP) parametrisation.

Pre-norm blocks (LayerNorm or RMSNorm), causal self-attention with `width / head_size` heads,
a 4× GELU MLP, learned position embeddings, tied or untied input/output embeddings.
Everything width-dependent that μP changes is an explicit line below, marked "μP";
init std and Adam LR multipliers per tensor live in `autofm.lm.parametrization`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from autofm.core.config import ConfigMixin
from autofm.core.errors import ValidationError
from autofm.data.text import VOCAB_SIZE
from autofm.lm import parametrization as P


@dataclass(frozen=True)
class GPTConfig(ConfigMixin):
    """Shape and parametrisation of a GPT. `n_head = width // head_size`."""

    width: int = 128
    depth: int = 2
    head_size: int = 32
    block_size: int = 128
    vocab_size: int = VOCAB_SIZE
    mlp_ratio: int = 4
    bias: bool = True
    tie_embeddings: bool = False
    norm: str = "layernorm"  # or "rmsnorm" (zero-padding an RMSNorm model preserves its function)
    norm_eps: float = 1e-5
    parametrization: str = "mup"  # or "sp"
    base_width: int = 64  # μP's reference width: at this width SP and μP initialise the same
    init_std: float = 0.02
    attn_mult: float = 1.0
    output_mult: float = 1.0
    zero_readout: bool = False
    zero_query: bool = False
    # per-layer shapes of a non-uniform model (e.g. a sub-network extracted by autofm.compress):
    # heads per layer (attention inner width heads × head_size) and MLP hidden width per layer;
    # None: width // head_size heads and mlp_ratio × width in every layer
    layer_heads: tuple[int, ...] | None = None
    layer_mlp: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        for name in ("width", "depth", "head_size", "block_size", "vocab_size", "mlp_ratio"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValidationError(f"GPTConfig.{name} must be a positive integer, got {value!r}")
        if self.layer_heads is None and self.width % self.head_size:
            raise ValidationError(
                f"width {self.width} is not divisible by head_size {self.head_size}; "
                f"use a multiple of {self.head_size} (heads are width // head_size)"
            )
        for name in ("layer_heads", "layer_mlp"):
            values = getattr(self, name)
            if values is not None and (
                len(values) != self.depth or any(int(v) != v or v < 1 for v in values)
            ):
                raise ValidationError(
                    f"GPTConfig.{name} must hold one positive integer per layer ({self.depth}), "
                    f"got {values!r}"
                )
        if self.parametrization not in P.PARAMETRIZATIONS:
            raise ValidationError(
                f"parametrization must be one of {P.PARAMETRIZATIONS}, got {self.parametrization!r}"
            )
        if self.norm not in ("layernorm", "rmsnorm"):
            raise ValidationError(f"norm must be 'layernorm' or 'rmsnorm', got {self.norm!r}")
        if self.base_width < 1 or self.init_std < 0 or self.norm_eps <= 0:
            raise ValidationError("base_width must be ≥ 1, init_std ≥ 0 and norm_eps > 0")

    @property
    def n_head(self) -> int:
        return self.width // self.head_size

    @property
    def uniform(self) -> bool:
        """Every layer has width // head_size heads and an mlp_ratio × width MLP."""
        return self.layer_heads is None and self.layer_mlp is None

    def heads_in(self, layer: int) -> int:
        """Attention heads of block `layer`."""
        return self.n_head if self.layer_heads is None else int(self.layer_heads[layer])

    def mlp_in(self, layer: int) -> int:
        """MLP hidden width of block `layer`."""
        return self.mlp_ratio * self.width if self.layer_mlp is None else int(self.layer_mlp[layer])

    @property
    def width_mult(self) -> float:
        return self.width / self.base_width

    def replace(self, **changes: Any) -> GPTConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


class RMSNorm(nn.Module):
    """x / rms(x) · gain (+ bias): LayerNorm without centring."""

    def __init__(self, width: int, eps: float, bias: bool):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(width))
        self.bias = nn.Parameter(torch.zeros(width)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight
        return y + self.bias if self.bias is not None else y


def _norm(config: GPTConfig) -> nn.Module:
    if config.norm == "rmsnorm":
        return RMSNorm(config.width, config.norm_eps, config.bias)
    return nn.LayerNorm(config.width, eps=config.norm_eps, bias=config.bias)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig, layer: int = 0):
        super().__init__()
        self.config = config
        self.n_head = config.heads_in(layer)
        inner = self.n_head * config.head_size
        # rows of qkv.weight: [q for head 0..H-1 | k for heads | v for heads], head_size each
        self.qkv = nn.Linear(config.width, 3 * inner, bias=config.bias)
        self.proj = nn.Linear(inner, config.width, bias=config.bias)
        if config.parametrization == "mup":
            self.scale = config.attn_mult / config.head_size  # μP: 1/d_head, not 1/√d_head
        else:
            self.scale = config.attn_mult / math.sqrt(config.head_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, time, _ = x.shape
        inner = self.n_head * self.config.head_size
        q, k, v = self.qkv(x).split(inner, dim=2)
        shape = (batch, time, self.n_head, self.config.head_size)
        q, k, v = (t.view(shape).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.scale)
        return self.proj(y.transpose(1, 2).reshape(batch, time, inner))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig, layer: int = 0):
        super().__init__()
        self.fc = nn.Linear(config.width, config.mlp_in(layer), bias=config.bias)
        self.proj = nn.Linear(config.mlp_in(layer), config.width, bias=config.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.gelu(self.fc(x)))


class Block(nn.Module):
    def __init__(self, config: GPTConfig, layer: int = 0):
        super().__init__()
        self.norm1 = _norm(config)
        self.attn = CausalSelfAttention(config, layer)
        self.norm2 = _norm(config)
        self.mlp = MLP(config, layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class GPT(nn.Module):
    """Decoder-only transformer over bytes; `forward(idx, targets)` → (logits, loss or None)."""

    checkpoint_kind = "gpt"

    def __init__(self, config: GPTConfig, seed: int | None = None):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.width)
        self.wpe = nn.Embedding(config.block_size, config.width)
        self.blocks = nn.ModuleList(Block(config, layer) for layer in range(config.depth))
        self.norm_f = _norm(config)
        self.lm_head = (
            None
            if config.tie_embeddings
            else nn.Linear(config.width, config.vocab_size, bias=False)
        )
        self.reset_parameters(seed)

    @torch.no_grad()
    def reset_parameters(self, seed: int | None = None) -> None:
        """(Re-)initialise every tensor per the parametrisation; `seed` makes it reproducible."""
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        for name, parameter in self.named_parameters():
            kind = P.parameter_kind(name, parameter)
            if kind == "vector":
                parameter.fill_(1.0 if name.endswith("weight") else 0.0)  # norm gains 1, biases 0
                continue
            std = P.init_std(self.config, kind)
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * std)
        if self.config.zero_query:
            for block in self.blocks:  # the q rows: heads × head_size of them
                block.attn.qkv.weight[: block.attn.n_head * self.config.head_size].zero_()

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        config = self.config
        time = idx.shape[1]
        if time > config.block_size:
            raise ValidationError(
                f"sequence of length {time} is longer than block_size {config.block_size}"
            )
        positions = torch.arange(time, device=idx.device)
        x = self.wte(idx) + self.wpe(positions)
        for block in self.blocks:
            x = block(x)
        x = self.norm_f(x)
        readout = self.wte.weight if self.lm_head is None else self.lm_head.weight
        logits = F.linear(x, readout)
        if config.parametrization == "mup":
            logits = logits * (config.output_mult / config.width_mult)  # μP: readout ∝ 1/width
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        return logits, loss

    def parameter_groups(self, weight_decay: float = 0.0) -> list[dict]:
        """AdamW groups with μP/SP `lr_multiplier`s (see `autofm.lm.parametrization`)."""
        return P.parameter_groups(self, weight_decay)

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @torch.no_grad()
    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Sample `max_new_tokens` tokens after the prompt `idx` [batch, time]."""
        for _ in range(max_new_tokens):
            context = idx[:, -self.config.block_size :]
            logits = self(context)[0][:, -1, :] / max(temperature, 1e-6)
            if top_k is not None:
                cutoff = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, [-1]]
                logits = logits.masked_fill(logits < cutoff, float("-inf"))
            probs = torch.softmax(logits, dim=-1)
            idx = torch.cat([idx, torch.multinomial(probs, 1, generator=generator)], dim=1)
        return idx
