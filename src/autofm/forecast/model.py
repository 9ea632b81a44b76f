"""The Mamba4Cast network: one forward pass maps a context to a whole horizon.

Tokens are the context steps (scaled value, observed flag, time features) followed by H target
tokens (time features only). A causal dilated-convolution input block embeds them, Mamba2 blocks
each followed by a causal dilated-convolution block mix them along time, and a linear head reads
the last H positions: a point forecast (trained with MSE on scaled targets, as in the paper) and
quantiles (trained with the pinball loss; our addition, for intervals).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Self

import torch
import torch.nn.functional as F
from torch import nn

from autofm.core.config import ConfigMixin
from autofm.core.errors import ValidationError
from autofm.forecast.features import N_TIME_FEATURES, fit_scaler
from autofm.forecast.mamba2 import Mamba2, Mamba2Config, causal_conv
from autofm.pfn.prior import TaskBatch

TARGET_CLIP = 10.0  # scaled targets beyond ±this are clipped in the loss (exploding trends)
ANCHORS = ("none", "last", "seasonal")


@dataclass
class Mamba4CastConfig(ConfigMixin):
    """Architecture of the forecaster; `preset("paper")` gives the published sizes."""

    d_model: int = 128
    n_layers: int = 3
    d_state: int = 32
    headdim: int = 32
    expand: int = 2
    d_conv: int = 4
    chunk_size: int = 64
    input_dilations: tuple[int, ...] = (1, 2, 4, 8)
    input_kernel: int = 3
    block_kernel: int = 3
    n_time_features: int = N_TIME_FEATURES
    scaler: str = "minmax"
    quantiles: tuple[float, ...] = field(default=(0.1, 0.5, 0.9))
    # what the head's output is added to (our addition for short CPU training; the paper's
    # "none" predicts levels): "last" = the last observed scaled value (a zero head is the naive
    # forecast), "seasonal" = the seasonal-naive value of each horizon step (a zero head is
    # seasonal naive; the target tokens also carry it in their value channel)
    anchor: str = "none"

    @classmethod
    def preset(cls, name: str) -> Mamba4CastConfig:
        """'cpu' (about 0.5M parameters) or 'paper' (d_model 1024, 2 layers, state 128)."""
        if name == "cpu":
            return cls(anchor="seasonal")
        if name == "paper":
            return cls(d_model=1024, n_layers=2, d_state=128, headdim=64, chunk_size=256)
        raise ValidationError(f"unknown preset {name!r}; choose 'cpu' or 'paper'")

    def __post_init__(self) -> None:
        if self.anchor not in ANCHORS:
            raise ValidationError(
                f"unknown anchor {self.anchor!r}; choose one of {', '.join(ANCHORS)}"
            )

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, source: str = "the given dict") -> Self:
        """The config saved by `to_dict` (also the older `residual_to_last` flag → anchor)."""
        values = dict(values)
        if "residual_to_last" in values:  # checkpoints written before `anchor` existed
            values.setdefault("anchor", "last" if values.pop("residual_to_last") else "none")
        return super().from_dict(values, source=source)


def build_mamba4cast(config: dict[str, Any], source: str) -> Mamba4Cast:
    """An untrained Mamba4Cast of the architecture in a checkpoint's `model` config."""
    return Mamba4Cast(Mamba4CastConfig.from_dict(config, source=source))


def seasonal_anchor(
    scaled: torch.Tensor,
    observed: torch.Tensor,
    horizon: int,
    season_length: torch.Tensor | None = None,
) -> torch.Tensor:
    """Seasonal-naive forecast [B, horizon] of each context [B, N] (in whatever units it has).

    Missing values are forward-filled first; step h repeats the value at the same phase of the
    last full season before the end of the context. A season length ≤ 1, None, or longer than
    the observed part of the context gives the last observed value (the naive forecast).
    """
    batch_size, n_context = scaled.shape
    positions = torch.arange(n_context, device=scaled.device)
    latest = torch.where(observed, positions, -1).cummax(dim=1).values  # forward fill
    filled = scaled.gather(1, latest.clamp(min=0))
    first = (observed * (n_context - positions)).argmax(dim=1)  # first observed index
    if season_length is None:
        season = torch.ones(batch_size, dtype=torch.long, device=scaled.device)
    else:
        season = season_length.to(scaled.device).long().clamp(min=1)
    season = torch.where(n_context - season >= first, season, 1)
    steps = torch.arange(horizon, device=scaled.device)
    index = n_context - season[:, None] + steps[None, :] % season[:, None]
    return filled.gather(1, index)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class CausalConv(nn.Module):
    """Conv1d over time on [B, L, C] that sees only the current and earlier steps."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, dilation: int):
        super().__init__()
        self.left_pad = (kernel - 1) * dilation
        self.conv = nn.Conv1d(in_channels, out_channels, kernel, dilation=dilation)

    def forward(self, x: torch.Tensor, last: int | None = None) -> torch.Tensor:
        """The outputs at the last `last` steps (None: all); earlier steps read zeros."""
        length = x.shape[1]
        needed = (length if last is None else min(last, length)) + self.left_pad
        return causal_conv(x[:, -needed:], self.conv, max(0, needed - length))


class InputBlock(nn.Module):
    """A linear value/time embedding plus parallel causal dilated convolutions, concatenated."""

    def __init__(self, in_channels: int, config: Mamba4CastConfig):
        super().__init__()
        branches = len(config.input_dilations)
        if config.d_model % branches:
            raise ValidationError("d_model must be divisible by the number of input dilations")
        self.embed = nn.Linear(in_channels, config.d_model)
        self.convs = nn.ModuleList(
            CausalConv(in_channels, config.d_model // branches, config.input_kernel, d)
            for d in config.input_dilations
        )

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.embed(tokens) + torch.cat([conv(tokens) for conv in self.convs], dim=-1)


class Block(nn.Module):
    """Mamba2 mixer then a causal dilated convolution, each pre-normed and residual."""

    def __init__(self, config: Mamba4CastConfig, dilation: int):
        super().__init__()
        self.mixer_norm = RMSNorm(config.d_model)
        self.mixer = Mamba2(
            Mamba2Config(
                d_model=config.d_model,
                d_state=config.d_state,
                d_conv=config.d_conv,
                expand=config.expand,
                headdim=config.headdim,
                chunk_size=config.chunk_size,
            )
        )
        self.conv_norm = RMSNorm(config.d_model)
        self.conv = CausalConv(config.d_model, config.d_model, config.block_kernel, dilation)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, last: int | None = None
    ) -> torch.Tensor:
        """x [B, L, d] → [B, last, d], the outputs at the last `last` steps (None: all).

        With `mask` [B, L, 1] (0: left padding; x must be zero there) padded steps reach no
        output, and the outputs at padded steps are zero.
        """
        length = x.shape[1]
        last = length if last is None else min(last, length)
        needed = min(length, last + self.conv.left_pad)  # the steps the convolution reads
        # zero steps stay zero through the mixer: its projections have no bias, its gate is 0
        x = x[:, length - needed :] + self.mixer(self.mixer_norm(x), mask, needed)
        x = x[:, needed - last :] + F.gelu(self.conv(self.conv_norm(x), last))
        return x if mask is None else x * mask[:, length - last :]


class Mamba4Cast(nn.Module):
    """Context values + time features → point forecast and quantiles for H steps, in one pass."""

    checkpoint_kind = "mamba4cast"

    def __init__(self, config: Mamba4CastConfig | None = None):
        super().__init__()
        self.config = config or Mamba4CastConfig()
        c = self.config
        self.input = InputBlock(2 + c.n_time_features, c)
        self.blocks = nn.ModuleList(Block(c, dilation=2 ** (i % 4)) for i in range(c.n_layers))
        self.norm = RMSNorm(c.d_model)
        self.head = nn.Linear(c.d_model, 1 + len(c.quantiles))

    def forward(
        self,
        x_context: torch.Tensor,
        y_context: torch.Tensor,
        x_query: torch.Tensor,
        season_length: torch.Tensor | None = None,
        start: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Scaled predictions for the H query steps.

        x_context [B, N, F], y_context [B, N] (NaN = missing or left padding), x_query [B, H, F],
        season_length [B] (integer steps; None = 1, only used by the "seasonal" anchor).
        `start` [B] (inference): row b's context begins at step start[b]; the steps before it are
        masked out exactly, so the row's predictions are those of its unpadded context (NaN left
        padding, as in training, is seen by the network).
        Returns point [B, H], quantiles [B, H, Q] (scaled units), loc and scale [B, 1].
        """
        loc, scale = fit_scaler(y_context, self.config.scaler)
        observed = ~torch.isnan(y_context)
        scaled = torch.where(observed, (y_context - loc) / scale, torch.zeros_like(y_context))
        context_tokens = torch.cat(
            [scaled.unsqueeze(-1), observed.unsqueeze(-1).to(scaled.dtype), x_context], dim=-1
        )
        horizon = x_query.shape[1]
        anchor = None
        if self.config.anchor == "last":
            anchor = seasonal_anchor(scaled, observed, horizon, None)
        elif self.config.anchor == "seasonal":
            anchor = seasonal_anchor(scaled, observed, horizon, season_length)
        query_value = (
            anchor if self.config.anchor == "seasonal" else x_query.new_zeros(x_query.shape[:2])
        )
        query_tokens = torch.cat(
            [query_value.unsqueeze(-1), x_query.new_zeros(*x_query.shape[:2], 1), x_query], dim=-1
        )
        tokens = torch.cat([context_tokens, query_tokens], dim=1)
        mask = None
        if start is not None:  # padded steps: zero tokens, and zero hidden states after each layer
            steps = torch.arange(tokens.shape[1], device=tokens.device)
            mask = (steps >= start.to(tokens.device)[:, None]).unsqueeze(-1).to(tokens.dtype)
            tokens = tokens * mask
        hidden = self.input(tokens)
        if mask is not None:
            hidden = hidden * mask
        for index, block in enumerate(self.blocks):
            last = horizon if index == len(self.blocks) - 1 else None  # the head reads H steps
            hidden = block(hidden, mask, last)
        out = self.head(self.norm(hidden))
        if anchor is not None:
            out = out + anchor.unsqueeze(-1)
        return {"point": out[..., 0], "quantiles": out[..., 1:], "loc": loc, "scale": scale}

    def loss(self, output: dict[str, torch.Tensor], batch: TaskBatch) -> torch.Tensor:
        """MSE of the point forecast plus the pinball loss of the quantiles, on scaled targets."""
        target = (batch.y_query - output["loc"]) / output["scale"]
        target = target.clamp(-TARGET_CLIP, TARGET_CLIP)
        mask = batch.metadata.get("target_mask")
        if mask is None:
            mask = torch.ones_like(target, dtype=torch.bool)
        mask = mask & ~torch.isnan(target)
        target = torch.where(mask, target, torch.zeros_like(target))
        weight = mask.to(target.dtype)
        total = weight.sum().clamp(min=1.0)
        mse = (((output["point"] - target) ** 2) * weight).sum() / total
        levels = torch.tensor(self.config.quantiles, dtype=target.dtype, device=target.device)
        error = target.unsqueeze(-1) - output["quantiles"]
        pinball = torch.maximum(levels * error, (levels - 1.0) * error).mean(-1)
        return mse + 2.0 * (pinball * weight).sum() / total

    @torch.no_grad()
    def predict(
        self,
        x_context: torch.Tensor,
        y_context: torch.Tensor,
        x_query: torch.Tensor,
        season_length: torch.Tensor | None = None,
        start: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Point forecast [B, H] and sorted quantiles [B, H, Q] in the series' own units
        (`start`: as in `forward`)."""
        output = self(x_context, y_context, x_query, season_length, start)
        point = output["loc"] + output["scale"] * output["point"]
        quantiles = (
            output["loc"].unsqueeze(-1)
            + output["scale"].unsqueeze(-1) * torch.sort(output["quantiles"], dim=-1).values
        )
        return point, quantiles


def forecast_loss(model: nn.Module, batch: TaskBatch) -> torch.Tensor:
    """Loss for `autofm.pfn.train`: calls `model(...)` itself so DDP synchronises gradients."""
    output = model(
        batch.x_context, batch.y_context, batch.x_query, batch.metadata.get("season_length")
    )
    inner = model.module if hasattr(model, "module") else model
    return inner.loss(output, batch)
