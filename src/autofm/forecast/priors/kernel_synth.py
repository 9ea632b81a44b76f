"""`KernelSynthPrior`: KernelSynth-like Gaussian-process series (Chronos' synthetic data).

Each series draws a kernel composed of up to three base kernels (periodic, RBF, Matérn-1/2 and
3/2, rational quadratic, linear, white noise) joined by + or ×; the covariance matrices of a
whole batch are built with tensor ops and factorised with one batched Cholesky. As in
KernelSynth, periodic kernels mostly take a period tied to the series' frequency (its season
length, half or twice it, or another typical period such as a week of hours), some a random one.
"""

from __future__ import annotations

import math

import torch

KERNELS = ("periodic", "rbf", "matern12", "matern32", "rational", "linear", "white")
KERNEL_WEIGHTS = torch.tensor([0.30, 0.16, 0.10, 0.14, 0.10, 0.14, 0.06])


def sample_period(
    periods: tuple[float, ...], n_steps: int, random_prob: float, generator: torch.Generator
) -> float:
    """A periodic kernel's period: with probability `random_prob` (or when `periods` is empty)
    log-uniform in [2, n_steps / 2], else one of `periods`, the first one half of those times."""
    draw = torch.rand(2, generator=generator, dtype=torch.float64)
    if periods and float(draw[0]) >= random_prob:
        if float(draw[1]) < 0.5 or len(periods) == 1:
            return periods[0]
        return periods[1 + int(torch.randint(len(periods) - 1, (1,), generator=generator))]
    high = max(3.0, n_steps / 2.0)
    return math.exp(math.log(2.0) + float(draw[1]) * (math.log(high) - math.log(2.0)))


def kernel_matrix(
    kind: str, t: torch.Tensor, n: int, params: dict[str, torch.Tensor]
) -> torch.Tensor:
    """[b, T, T] covariance of kernel `kind` on steps t [T] with per-series params [b]."""
    diff = (t[:, None] - t[None, :]).abs().unsqueeze(0)  # [1, T, T]
    scale = float(n)
    if kind == "periodic":
        period = params["period"][:, None, None]
        length = params["length"][:, None, None]
        return torch.exp(-2.0 * torch.sin(math.pi * diff / period) ** 2 / length**2)
    if kind == "rbf":
        length = params["length"][:, None, None] * scale
        return torch.exp(-0.5 * (diff / length) ** 2)
    if kind == "matern12":
        length = params["length"][:, None, None] * scale
        return torch.exp(-diff / length)
    if kind == "matern32":
        r = math.sqrt(3.0) * diff / (params["length"][:, None, None] * scale)
        return (1.0 + r) * torch.exp(-r)
    if kind == "rational":
        length = params["length"][:, None, None] * scale
        alpha = params["alpha"][:, None, None]
        return (1.0 + diff**2 / (2.0 * alpha * length**2)) ** (-alpha)
    if kind == "linear":
        centred = t / scale - params["offset"][:, None]  # [b, T]
        return 0.1 + centred[:, :, None] * centred[:, None, :]
    if kind == "white":
        eye = torch.eye(len(t), dtype=t.dtype)
        return params["noise"][:, None, None] * eye
    raise ValueError(kind)


class KernelSynthPrior:
    """KernelSynth-like Gaussian-process series [B, T], vectorised over the batch.

    `kernel_weights` ({kernel name: weight}) restricts or reweights the kernel bank (for tests
    and ablations); the default mixes all of KERNELS. `random_period_prob`: the share of
    periodic kernels whose period ignores the given (frequency-tied) periods.
    """

    def __init__(
        self,
        max_kernels: int = 3,
        kernel_weights: dict[str, float] | None = None,
        random_period_prob: float = 0.2,
    ):
        self.max_kernels = max_kernels
        self.kernel_weights = kernel_weights
        self.random_period_prob = random_period_prob

    def __repr__(self) -> str:
        return f"KernelSynthPrior(max_kernels={self.max_kernels}, random_period_prob={self.random_period_prob})"

    def _weights(self) -> torch.Tensor:
        if self.kernel_weights is None:
            return KERNEL_WEIGHTS
        unknown = set(self.kernel_weights) - set(KERNELS)
        if unknown:
            raise ValueError(f"unknown kernels {sorted(unknown)}; known: {KERNELS}")
        return torch.tensor([float(self.kernel_weights.get(k, 0.0)) for k in KERNELS])

    def _kernel_params(
        self, batch_size: int, periods: torch.Tensor, generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        def uniform(low, high):
            return low + (high - low) * torch.rand(
                batch_size, generator=generator, dtype=periods.dtype
            )

        return {
            "period": periods,
            "length": torch.exp(uniform(math.log(0.05), math.log(1.5))),
            "alpha": torch.exp(uniform(math.log(0.1), math.log(10.0))),
            "offset": uniform(-0.5, 1.5),
            "noise": torch.exp(uniform(math.log(1e-3), math.log(0.3))),
        }

    def sample_kernels(
        self, batch_size: int, n_steps: int, periods: list[tuple[float, ...]], generator
    ) -> tuple[torch.Tensor, list[list[str]]]:
        """Covariances [B, T, T] (float64) and the kernel names composing each."""
        t = torch.arange(n_steps, dtype=torch.float64)
        covariance = torch.zeros(batch_size, n_steps, n_steps, dtype=torch.float64)
        names: list[list[str]] = [[] for _ in range(batch_size)]
        n_kernels = torch.randint(1, self.max_kernels + 1, (batch_size,), generator=generator)
        for slot in range(self.max_kernels):
            kinds = torch.multinomial(self._weights(), batch_size, True, generator=generator)
            if slot == 0 and self.kernel_weights is None:  # start with a smooth/periodic part
                kinds = torch.where(kinds == KERNELS.index("white"), 1, kinds)
            period_choice = torch.tensor(
                [sample_period(p, n_steps, self.random_period_prob, generator) for p in periods],
                dtype=torch.float64,
            )
            params = self._kernel_params(batch_size, period_choice, generator)
            active = n_kernels > slot
            multiply = torch.rand(batch_size, generator=generator) < 0.4
            for index, kind in enumerate(KERNELS):
                rows = torch.nonzero(active & (kinds == index)).flatten()
                if len(rows) == 0:
                    continue
                sub = {k: v[rows] for k, v in params.items()}
                matrix = kernel_matrix(kind, t, n_steps, sub)
                if slot == 0:
                    covariance[rows] = matrix
                else:
                    product = multiply[rows][:, None, None]
                    covariance[rows] = torch.where(
                        product, covariance[rows] * matrix, covariance[rows] + matrix
                    )
                for row in rows.tolist():
                    names[row].append(kind)
        return covariance, names

    def sample(
        self, batch_size: int, n_steps: int, periods: list[tuple[float, ...]], generator
    ) -> torch.Tensor:
        """Series [B, T] drawn from GPs whose seasonal periods come from `periods` (per series)."""
        covariance, _ = self.sample_kernels(batch_size, n_steps, periods, generator)
        jitter = 1e-6 * covariance.diagonal(dim1=1, dim2=2).mean(-1).clamp(min=1e-3)
        eye = torch.eye(n_steps, dtype=torch.float64)
        for _ in range(6):
            factor, info = torch.linalg.cholesky_ex(covariance + jitter[:, None, None] * eye)
            if not bool((info > 0).any()):
                break
            jitter = torch.where(info > 0, jitter * 100.0, jitter)
        noise = torch.randn(batch_size, n_steps, 1, generator=generator, dtype=torch.float64)
        series = (factor @ noise).squeeze(-1)
        return torch.nan_to_num(series).float()
