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
# docs/forecast.md); sequences up to CPU_ONE_CHUNK steps (yearly and quarterly contexts with
# their horizon) are one chunk, without chunk states: up to twice as fast
CPU_CHUNK_SIZE = 16
CPU_ONE_CHUNK = 72


def segment_sum(values: torch.Tensor) -> torch.Tensor:
    """[..., T] → [..., T, T] with out[i, j] = values[j+1] + … + values[i] for j ≤ i, else -inf."""
    length = values.shape[-1]
    lower = torch.ones(length, length, dtype=torch.bool, device=values.device).tril()
    return column_sums(values).masked_fill(~lower, -math.inf)


def column_sums(values: torch.Tensor) -> torch.Tensor:
    """`segment_sum` with zeros above the diagonal.

    Summed down each column, not taken as a difference of cumulative sums: cumulative
    log-decays reach −1000 within a chunk, where a difference keeps only 3 of float32's 7
    digits, while each entry summed on its own is as precise as its own size.
    """
    length = values.shape[-1]
    below = torch.ones(length, length, dtype=torch.bool, device=values.device).tril(-1)
    rows = values.unsqueeze(-1).expand(*values.shape, length)  # rows[i, j] = values[i]
    return rows.masked_fill(~below, 0.0).cumsum(-2)


# exp below this is slow on CPU (results under float32's normal range take a microcode assist,
# ~100× slower; the trained model's decays reach e^-1000 over a chunk) and no smaller decay
# changes a float32 sum it joins, so decays are floored here
MIN_LOG_DECAY = -80.0


def decay(log_decay: torch.Tensor) -> torch.Tensor:
    """exp(log_decay) for log_decay ≤ 0, floored at exp(MIN_LOG_DECAY)."""
    return log_decay.clamp(min=MIN_LOG_DECAY).exp_()


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
    # layout [b, g, k, c, l, ·] (k: head within its group); all but the last two are batch dims.
    # x is copied into it once (matmuls on the permuted view are several times slower)
    x = x.reshape(batch, chunks, chunk_size, groups, per_group, headdim)
    x = x.permute(0, 3, 4, 1, 2, 5).contiguous()
    B = B.reshape(batch, chunks, chunk_size, groups, 1, d_state).permute(0, 3, 4, 1, 2, 5)
    C = C.reshape(batch, chunks, chunk_size, groups, 1, d_state).permute(0, 3, 4, 1, 2, 5)
    a = log_decay.reshape(batch, chunks, chunk_size, groups, per_group).permute(0, 3, 4, 1, 2)

    # 1. outputs from inputs in the same chunk (the quadratic, attention-like form); the
    #    causal mask goes on C·Bᵀ, shared by a group's heads, not on each head's decays
    decay_within = decay(column_sums(a))  # b g k c l s (1 above the diagonal)
    y = ((C @ B.transpose(-1, -2)).tril() * decay_within) @ x  # b g k c l p
    if chunks > 1:
        a_cumsum = torch.cumsum(a, dim=-1)  # b g k c l
        # 2. state at the end of each chunk from that chunk's inputs
        decay_to_end = decay_within[..., -1, :]  # b g k c l
        states = x.transpose(-1, -2) @ (B * decay_to_end.unsqueeze(-1))  # b g k c p n
        # 3. carry states across chunks (a recurrence over chunks, written as one matmul):
        #    state entering chunk z = Σ_{j<z} exp(decay of chunks j+1 … z-1) · states[j]
        chunk_totals = F.pad(a_cumsum[..., -1], (1, 0))  # b g k c+1
        decay_chunks = decay(segment_sum(chunk_totals)).tril()[..., :-1, 1:]  # b g k c c
        states = (decay_chunks @ states.flatten(-2)).unflatten(-1, states.shape[-2:])
        # 4. outputs from the state entering each chunk
        y = y + (C @ states.transpose(-1, -2)) * decay(a_cumsum).unsqueeze(-1)
    y = y.permute(0, 3, 4, 1, 2, 5)
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
        self.conv_dim = conv_dim = self.d_inner + 2 * c.ngroups * c.d_state
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

    def chunk_length(self, length: int, on_gpu: bool = False) -> int:
        """The scan's chunk length for a sequence. On CPU: the whole sequence up to
        CPU_ONE_CHUNK steps (no chunk states), else chunks of at most CPU_CHUNK_SIZE evened out
        over the chunks they take, so that little end padding is scanned; on a GPU, the
        configured chunk size."""
        if on_gpu:
            return min(self.config.chunk_size, length)
        if length <= CPU_ONE_CHUNK:
            return length
        longest = min(self.config.chunk_size, CPU_CHUNK_SIZE)
        chunks = -(-length // longest)
        return -(-length // chunks)

    def forward(
        self, u: torch.Tensor, mask: torch.Tensor | None = None, last: int | None = None
    ) -> torch.Tensor:
        """[batch, length, d_model] → the outputs [batch, last, d_model] at the last `last`
        positions (None: all of them).

        `mask` [batch, length, 1] (1: a step, 0: left padding) keeps padded steps out of the
        state, so a left-padded row gives the outputs of the same row without its padding.
        """
        c = self.config
        batch, length, _ = u.shape
        last = length if last is None else min(last, length)
        # in_proj's three outputs (z, xBC, dt, as in mamba-ssm) computed apart: each comes out
        # contiguous, and z is only needed where outputs are
        w_z, w_xBC, w_dt = torch.split(
            self.in_proj.weight, [self.d_inner, self.conv_dim, self.nheads]
        )
        xBC = F.silu(causal_conv(F.linear(u, w_xBC), self.conv1d, c.d_conv - 1))
        x, B, C = torch.split(
            xBC, [self.d_inner, c.ngroups * c.d_state, c.ngroups * c.d_state], dim=-1
        )
        dt = F.softplus(F.linear(u, w_dt) + self.dt_bias)  # [b, l, h]
        if mask is not None:  # a padded step neither feeds nor decays the (zero) state
            dt = dt * mask
        A = -torch.exp(self.A_log.float())
        x = x.reshape(batch, length, self.nheads, c.headdim)
        B = B.reshape(batch, length, c.ngroups, c.d_state)
        C = C.reshape(batch, length, c.ngroups, c.d_state)
        if mamba_chunk_scan_combined is not None and u.is_cuda:  # pragma: no cover - GPU only
            y = mamba_chunk_scan_combined(x, dt, A, B, C, chunk_size=c.chunk_size, D=None)
        else:
            y = ssd_scan(x * dt.unsqueeze(-1), dt * A, B, C, self.chunk_length(length, u.is_cuda))
        y = torch.addcmul(y[:, length - last :], x[:, length - last :], self.D[:, None])
        z = F.linear(u[:, length - last :], w_z)
        y = self.norm(y.reshape(batch, last, self.d_inner), z)
        return self.out_proj(y)


def causal_conv(x: torch.Tensor, conv: nn.Conv1d, pad: int) -> torch.Tensor:
    """`conv`'s weights applied over time to x [b, l, c] after `pad` zero steps on the left
    (its own padding ignored); returns [b, l + pad − (kernel − 1)·dilation, out channels].

    Computed as a conv2d over a [b, c, 1, l] view of x: the channels-last layout x already has,
    so nothing is transposed or copied (2–3× faster than conv1d on CPU). conv2d pads both
    sides; the outputs that read the right padding are dropped.
    """
    weight = conv.weight.unsqueeze(2)
    dilation = (1, conv.dilation[0])
    out = F.conv2d(
        x.transpose(1, 2).unsqueeze(2), weight, conv.bias, 1, (0, pad), dilation, conv.groups
    )
    out = out.squeeze(2).transpose(1, 2)
    return out[:, : out.shape[1] - pad]
