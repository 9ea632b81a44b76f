"""Mamba2 in pure PyTorch: the selective state-space layer with the SSD chunked scan.

The official mamba-ssm kernels are CUDA/Triton only; this module runs anywhere and keeps
mamba-ssm's `Mamba2` parameter names (`in_proj`, `conv1d`, `dt_bias`, `A_log`, `D`, `norm.weight`,
`out_proj`) and initialisation, so weights move between the two unchanged. When mamba-ssm is
installed and the input is on a GPU, the scan uses its fused kernel instead.

The recurrence per head h, with state S [headdim, d_state]:
    S_t = exp(dt_t · A_h) · S_{t-1} + dt_t · x_t ⊗ B_t,     y_t = S_t · C_t + D_h · x_t
`ssd_scan` computes it in chunks (quadratic inside a chunk, a short recurrence between chunks);
`sequential_scan` is the plain loop it is tested against.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

try:  # optional fused GPU kernel
    from mamba_ssm.ops.triton.ssd_combined import mamba_chunk_scan_combined
except ImportError:  # pragma: no cover - depends on the environment
    mamba_chunk_scan_combined = None


# the scan's chunk length on CPU: the result does not depend on it, the time does (measured in
# docs/forecast.md)
CPU_CHUNK_SIZE = 16


def segment_sum(values: torch.Tensor, cumsum: torch.Tensor | None = None) -> torch.Tensor:
    """[..., T] → [..., T, T] with out[i, j] = values[j+1] + … + values[i] for j ≤ i, else -inf.

    Computed as a difference of cumulative sums (fine in float32 for the chunk lengths used).
    """
    length = values.shape[-1]
    cumsum = torch.cumsum(values, dim=-1) if cumsum is None else cumsum
    sums = cumsum.unsqueeze(-1) - cumsum.unsqueeze(-2)
    lower = torch.tril(torch.ones(length, length, dtype=torch.bool, device=values.device))
    return sums.masked_fill(~lower, -math.inf)


def ssd_scan(
    x: torch.Tensor,
    log_decay: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    chunk_size: int,
) -> torch.Tensor:
    """The SSD chunked scan; y_t = Σ_{s≤t} C_t·B_s · exp(Σ_{s<r≤t} log_decay_r) · x_s.

    x [b, l, h, p] (already multiplied by dt), log_decay [b, l, h] (= dt·A, ≤ 0),
    B and C [b, l, g, n] with g dividing h (head i reads group i // (h / g), as in mamba-ssm;
    C·Bᵀ is computed once per group, not per head). Returns y [b, l, h, p].
    """
    batch, length, heads, headdim = x.shape
    groups, d_state = B.shape[2], B.shape[3]
    if heads % groups:
        raise ValueError(f"{heads} heads cannot share {groups} groups of B and C")
    pad = (-length) % chunk_size
    if pad:  # zero input and zero log-decay at the end change no earlier output
        x = F.pad(x, (0, 0, 0, 0, 0, pad))
        log_decay = F.pad(log_decay, (0, 0, 0, pad))
        B = F.pad(B, (0, 0, 0, 0, 0, pad))
        C = F.pad(C, (0, 0, 0, 0, 0, pad))
    chunks, per_group = x.shape[1] // chunk_size, heads // groups
    # layout [b, g, k, c, l, ·] (k: head within its group); all but the last two are batch dims
    x = x.reshape(batch, chunks, chunk_size, groups, per_group, headdim).permute(0, 3, 4, 1, 2, 5)
    B = B.reshape(batch, chunks, chunk_size, groups, 1, d_state).permute(0, 3, 4, 1, 2, 5)
    C = C.reshape(batch, chunks, chunk_size, groups, 1, d_state).permute(0, 3, 4, 1, 2, 5)
    a = log_decay.reshape(batch, chunks, chunk_size, groups, per_group).permute(0, 3, 4, 1, 2)
    a_cumsum = torch.cumsum(a, dim=-1)  # b g k c l

    # 1. outputs from inputs in the same chunk (the quadratic, attention-like form)
    decay_within = torch.exp(segment_sum(a, a_cumsum))  # b g k c l s
    y_diag = ((C @ B.transpose(-1, -2)) * decay_within) @ x  # b g k c l p
    # 2. state at the end of each chunk from that chunk's inputs
    decay_to_end = torch.exp(a_cumsum[..., -1:] - a_cumsum)  # b g k c l
    states = x.transpose(-1, -2) @ (B * decay_to_end.unsqueeze(-1))  # b g k c p n
    # 3. carry states across chunks (a recurrence over chunks, written as one matmul):
    #    state entering chunk z = Σ_{j<z} exp(decay of chunks j+1 … z-1) · states[j]
    chunk_totals = F.pad(a_cumsum[..., -1], (1, 0))  # b g k c+1
    decay_chunks = torch.exp(segment_sum(chunk_totals))[..., :-1, 1:]  # b g k c c
    states = (decay_chunks @ states.flatten(-2)).unflatten(-1, states.shape[-2:])
    # 4. outputs from the state entering each chunk
    y_off = (C @ states.transpose(-1, -2)) * torch.exp(a_cumsum).unsqueeze(-1)  # b g k c l p
    y = (y_diag + y_off).permute(0, 3, 4, 1, 2, 5)
    return y.reshape(batch, chunks * chunk_size, heads, headdim)[:, :length]


def sequential_scan(
    x: torch.Tensor, log_decay: torch.Tensor, B: torch.Tensor, C: torch.Tensor
) -> torch.Tensor:
    """The same recurrence as `ssd_scan`, one time step at a time (the reference)."""
    batch, length, heads, headdim = x.shape
    B = B.repeat_interleave(heads // B.shape[2], dim=2)  # groups → heads
    C = C.repeat_interleave(heads // C.shape[2], dim=2)
    state = x.new_zeros(batch, heads, headdim, B.shape[-1])
    outputs = []
    for t in range(length):
        decay = torch.exp(log_decay[:, t])[:, :, None, None]
        state = decay * state + x[:, t, :, :, None] * B[:, t, :, None, :]
        outputs.append(torch.einsum("bhpn,bhn->bhp", state, C[:, t]))
    return torch.stack(outputs, dim=1)


class RMSNormGated(nn.Module):
    """RMSNorm of x·silu(z) (mamba-ssm's `RMSNormGated` with norm_before_gate=False)."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        x = x * F.silu(z)
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


@dataclass
class Mamba2Config:
    """Sizes of one Mamba2 layer; names and defaults as in mamba-ssm's `Mamba2`."""

    d_model: int
    d_state: int = 128
    d_conv: int = 4
    expand: int = 2
    headdim: int = 64
    ngroups: int = 1
    chunk_size: int = 256
    dt_min: float = 0.001
    dt_max: float = 0.1
    dt_init_floor: float = 1e-4
    A_init_range: tuple[float, float] = (1.0, 16.0)


class Mamba2(nn.Module):
    """One Mamba2 mixer: [batch, length, d_model] → [batch, length, d_model], causal."""

    def __init__(self, config: Mamba2Config):
        super().__init__()
        self.config = config
        c = config
        self.d_inner = c.expand * c.d_model
        if self.d_inner % c.headdim:
            raise ValueError(f"expand·d_model={self.d_inner} must be a multiple of headdim")
        self.nheads = self.d_inner // c.headdim
        conv_dim = self.d_inner + 2 * c.ngroups * c.d_state
        # in_proj output order, as in mamba-ssm: z, xBC, dt
        self.in_proj = nn.Linear(c.d_model, self.d_inner + conv_dim + self.nheads, bias=False)
        self.conv1d = nn.Conv1d(
            conv_dim, conv_dim, c.d_conv, groups=conv_dim, padding=c.d_conv - 1, bias=True
        )
        # dt initialised log-uniform in [dt_min, dt_max]; dt_bias is softplus⁻¹ of it
        dt = torch.exp(
            torch.rand(self.nheads) * (math.log(c.dt_max) - math.log(c.dt_min)) + math.log(c.dt_min)
        ).clamp(min=c.dt_init_floor)
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))
        self.A_log = nn.Parameter(torch.log(torch.empty(self.nheads).uniform_(*c.A_init_range)))
        self.D = nn.Parameter(torch.ones(self.nheads))
        self.norm = RMSNormGated(self.d_inner)
        self.out_proj = nn.Linear(self.d_inner, c.d_model, bias=False)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        c = self.config
        batch, length, _ = u.shape
        z, xBC, dt = torch.split(
            self.in_proj(u), [self.d_inner, self.d_inner + 2 * c.ngroups * c.d_state, self.nheads],
            dim=-1,
        )  # fmt: skip
        xBC = F.silu(self.conv1d(xBC.transpose(1, 2))[..., :length].transpose(1, 2))
        x, B, C = torch.split(
            xBC, [self.d_inner, c.ngroups * c.d_state, c.ngroups * c.d_state], dim=-1
        )
        dt = F.softplus(dt + self.dt_bias)  # [b, l, h]
        A = -torch.exp(self.A_log.float())
        x = x.reshape(batch, length, self.nheads, c.headdim)
        B = B.reshape(batch, length, c.ngroups, c.d_state)
        C = C.reshape(batch, length, c.ngroups, c.d_state)
        if mamba_chunk_scan_combined is not None and u.is_cuda:  # pragma: no cover - GPU only
            y = mamba_chunk_scan_combined(x, dt, A, B, C, chunk_size=c.chunk_size, D=None)
        else:
            chunk = c.chunk_size if u.is_cuda else min(c.chunk_size, CPU_CHUNK_SIZE)
            y = ssd_scan(x * dt.unsqueeze(-1), dt * A, B, C, min(chunk, length))
        y = y + x * self.D[:, None]
        y = self.norm(y.reshape(batch, length, self.d_inner), z)
        return self.out_proj(y)
