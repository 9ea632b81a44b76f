"""Coordinate check (Yang et al., Tensor Programs V): mean |activation| per layer over the first
Adam steps at several widths. Under μP the curves are flat in width; under SP they grow."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from autofm.core.errors import ValidationError
from autofm.core.runtime import setup_torch
from autofm.core.validation import check_number
from autofm.data.text import encode, sample_blocks, stdlib_corpus
from autofm.lm.model import GPT, GPTConfig


@dataclass
class CoordCheckResult:
    """Records `{parametrization, width, step, layer, mean_abs}`; `ratios` per parametrisation:
    the largest (over layers) max/min across widths of mean |activation| at the last step."""

    records: list[dict] = field(default_factory=list)
    widths: tuple[int, ...] = ()
    steps: int = 0

    def layers(self) -> list[str]:
        return list(dict.fromkeys(r["layer"] for r in self.records))

    def values(self, parametrization: str, layer: str, step: int) -> np.ndarray:
        """mean |activation| of `layer` at `step` for each width (in `widths` order)."""
        lookup = {
            r["width"]: r["mean_abs"]
            for r in self.records
            if r["parametrization"] == parametrization and r["layer"] == layer and r["step"] == step
        }
        return np.array([lookup[w] for w in self.widths])

    def layer_ratios(self, parametrization: str, step: int | None = None) -> dict[str, float]:
        """max/min across widths of each layer's mean |activation| at `step` (default: last)."""
        step = self.steps - 1 if step is None else step
        out = {}
        for layer in self.layers():
            values = self.values(parametrization, layer, step)
            out[layer] = float(values.max() / max(values.min(), 1e-12))
        return out

    @property
    def ratios(self) -> dict[str, float]:
        names = dict.fromkeys(r["parametrization"] for r in self.records)
        return {name: max(self.layer_ratios(name).values()) for name in names}


def _watched_modules(model: GPT) -> dict[str, torch.nn.Module]:
    modules: dict[str, torch.nn.Module] = {"embedding": model.wte}
    for index, block in enumerate(model.blocks):
        modules[f"block{index}.attn"] = block.attn
        modules[f"block{index}.mlp"] = block.mlp
        modules[f"block{index}.out"] = block
    modules["logits"] = model
    return modules


def coord_check(
    widths: tuple[int, ...] = (64, 128, 256, 512),
    parametrizations: tuple[str, ...] = ("sp", "mup"),
    steps: int = 5,
    lr: float = 1e-2,
    base_config: GPTConfig | None = None,
    batch_size: int = 8,
    tokens: np.ndarray | None = None,
    n_seeds: int = 3,
    seed: int = 0,
) -> CoordCheckResult:
    """Train each width for `steps` Adam steps on the same batches and record, at every step's
    forward pass, the mean |activation| of the embedding, each block's attention, MLP and output,
    and the logits. `base_config` fixes everything but width and parametrisation (default: depth
    2, head size 16, block 32, base width = the smallest width); `tokens` default to 200 kB of the
    standard library's source. Each value is averaged over `n_seeds` initialisations and batch
    streams, as finite-width noise otherwise dominates at small widths."""
    if len(widths) < 2 or steps < 1 or n_seeds < 1:
        raise ValidationError(
            f"need ≥ 2 widths, ≥ 1 step and ≥ 1 seed; got widths={widths}, steps={steps}, "
            f"n_seeds={n_seeds}"
        )
    check_number(lr, "lr", minimum=0, exclusive=True)
    setup_torch(device="cpu")
    base_config = base_config or GPTConfig(
        width=min(widths), depth=2, head_size=16, block_size=32, base_width=min(widths)
    )
    tokens = encode(stdlib_corpus(200_000)) if tokens is None else tokens
    result = CoordCheckResult(widths=tuple(sorted(widths)), steps=steps)
    for parametrization in parametrizations:
        for width in result.widths:
            config = base_config.replace(width=width, parametrization=parametrization)
            sums: dict[tuple[int, str], float] = {}
            for offset in range(n_seeds):
                rng = np.random.default_rng(seed + offset)
                for key, value in _run(config, tokens, steps, lr, batch_size, rng, seed + offset):
                    sums[key] = sums.get(key, 0.0) + value / n_seeds
            result.records.extend(
                {
                    "parametrization": parametrization,
                    "width": width,
                    "step": step,
                    "layer": layer,
                    "mean_abs": value,
                }
                for (step, layer), value in sums.items()
            )
    return result


def _run(
    config: GPTConfig,
    tokens: np.ndarray,
    steps: int,
    lr: float,
    batch_size: int,
    rng: np.random.Generator,
    seed: int,
) -> list[tuple[tuple[int, str], float]]:
    """((step, layer), mean |activation|) over `steps` Adam steps of one model."""
    model = GPT(config, seed=seed)
    optimizer = torch.optim.AdamW(model.parameter_groups(), lr=lr, betas=(0.9, 0.95))
    for group in optimizer.param_groups:
        group["lr"] = lr * group["lr_multiplier"]
    current: dict[str, float] = {}
    handles = [
        module.register_forward_hook(_recorder(current, name))
        for name, module in _watched_modules(model).items()
    ]
    out = []
    try:
        for step in range(steps):
            inputs, targets = sample_blocks(tokens, config.block_size, batch_size, rng)
            _, loss = model(torch.from_numpy(inputs), torch.from_numpy(targets))
            out.extend(((step, layer), value) for layer, value in current.items())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    finally:
        for handle in handles:
            handle.remove()
    return out


def _recorder(store: dict[str, float], name: str):
    def hook(module, inputs, output):
        tensor = output[0] if isinstance(output, tuple) else output
        store[name] = float(tensor.detach().abs().mean())

    return hook
