"""What a compression search measures for a sub-network: its quality (KL divergence to the parent
on calibration text, or validation loss) and its size (parameters, FLOPs, measured CPU latency).

Quality is computed on the super-network's slice (no copy of weights); latency on the dense model
the sub-network extracts to, since that is the model a user deploys. `Evaluator` computes each
value once per sub-network.
"""

from __future__ import annotations

import contextlib
import hashlib
import statistics
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from autofm.compress.extraction import extract
from autofm.compress.space import SubNetwork, count_flops, count_parameters
from autofm.compress.supernet import SuperNetwork
from autofm.core.errors import ValidationError
from autofm.lm.training import validation_starts

QUALITY_OBJECTIVES = ("kl", "val_loss")
SIZE_OBJECTIVES = ("params", "flops", "latency_ms")
OBJECTIVES = QUALITY_OBJECTIVES + SIZE_OBJECTIVES
LATENCY_OPTIONS = ("batch_size", "seq_len", "repeats", "warmup", "threads")


@contextlib.contextmanager
def _evaluating(module: nn.Module) -> Iterator[None]:
    """Eval mode without gradients inside the block; the module's mode is restored after."""
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        module.train(was_training)


def _device(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


def _blocks(tokens, block_size: int, n_blocks: int, length: int) -> torch.Tensor:
    """`n_blocks` evenly spaced windows of `length` tokens (the lm validation blocks)."""
    tokens = np.asarray(tokens)
    if tokens.ndim != 1:
        raise ValidationError(f"tokens must be a 1-D stream of byte ids, got shape {tokens.shape}")
    starts = validation_starts(len(tokens), block_size, n_blocks)
    return torch.from_numpy(tokens[starts[:, None] + np.arange(length)].astype(np.int64))


def tensors_sha256(tensors: Iterable[torch.Tensor]) -> str:
    """SHA-256 of the shapes and bytes of `tensors`, in order."""
    digest = hashlib.sha256()
    for tensor in tensors:
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


@dataclass(frozen=True, eq=False)
class Calibration:
    """Calibration batches (token ids, batch × time) and the parent's next-byte log-probabilities
    on them, computed once by the full super-network (its largest slice)."""

    batches: tuple[torch.Tensor, ...]
    parent_log_probs: tuple[torch.Tensor, ...]

    @classmethod
    def from_batches(cls, supernet: nn.Module, batches: Iterable[torch.Tensor]) -> Calibration:
        """Calibration on these batches of token ids."""
        device = _device(supernet)
        batches = tuple(torch.as_tensor(b, dtype=torch.long).to(device) for b in batches)
        if not batches or any(b.ndim != 2 or b.numel() == 0 for b in batches):
            raise ValidationError("calibration needs at least one non-empty batch × time batch")
        full = SubNetwork.full(supernet.config)
        with _evaluating(supernet):
            log_probs = tuple(F.log_softmax(supernet(b, full)[0].float(), -1) for b in batches)
        return cls(batches, log_probs)

    @classmethod
    def from_tokens(
        cls,
        supernet: nn.Module,
        tokens,
        n_blocks: int = 32,
        batch_size: int = 8,
        block_size: int | None = None,
    ) -> Calibration:
        """Calibration on `n_blocks` evenly spaced blocks of a token stream (deterministic)."""
        block_size = block_size or supernet.config.block_size
        blocks = _blocks(tokens, block_size, n_blocks, block_size)
        return cls.from_batches(supernet, blocks.split(batch_size))

    def fingerprint(self) -> str:
        """SHA-256 of the calibration tokens (a resumed search must use the same ones)."""
        return tensors_sha256(self.batches)


def kl_to_parent(
    supernet: nn.Module, sub: SubNetwork, calibration: Calibration | Sequence[torch.Tensor]
) -> float:
    """Mean KL(parent ‖ sub) in nats per position of the next-byte distributions on the
    calibration batches (a sequence of batches is turned into a `Calibration` first)."""
    if not isinstance(calibration, Calibration):
        calibration = Calibration.from_batches(supernet, calibration)
    total, positions = 0.0, 0
    with _evaluating(supernet):
        for batch, parent in zip(calibration.batches, calibration.parent_log_probs):
            log_probs = F.log_softmax(supernet(batch, sub)[0].float(), -1)
            total += float(F.kl_div(log_probs, parent, log_target=True, reduction="sum"))
            positions += batch.numel()
    return max(total / positions, 0.0)  # rounding can make an exact 0 slightly negative


def _mean_loss(supernet: nn.Module, sub: SubNetwork, blocks: torch.Tensor, batch_size: int):
    total, count = 0.0, 0
    blocks = blocks.to(_device(supernet))
    with _evaluating(supernet):
        for batch in blocks.split(batch_size):
            logits, _ = supernet(batch[:, :-1], sub)
            targets = batch[:, 1:].reshape(-1)
            total += float(
                F.cross_entropy(logits.reshape(len(targets), -1).float(), targets, reduction="sum")
            )
            count += len(targets)
    return total / count


def validation_loss(
    supernet: nn.Module, sub: SubNetwork, tokens, n_blocks: int = 64, batch_size: int = 32
) -> float:
    """Mean next-byte cross-entropy (nats per byte) of `sub` on `n_blocks` fixed blocks of
    `tokens`, the blocks `autofm.lm.evaluate` uses."""
    block_size = supernet.config.block_size
    return _mean_loss(
        supernet, sub, _blocks(tokens, block_size, n_blocks, block_size + 1), batch_size
    )


def measure_latency(
    model: nn.Module,
    batch_size: int = 1,
    seq_len: int | None = None,
    repeats: int = 20,
    warmup: int = 3,
    threads: int | None = None,
) -> float:
    """Median milliseconds of `repeats` timed forward passes of `model` under `torch.no_grad()`,
    after `warmup` untimed ones, on `batch_size` × `seq_len` tokens (default: the model's
    block_size, else 128).
    `threads` sets torch's thread count for the measurement (default: leave it as it is)."""
    if repeats < 1 or warmup < 0 or batch_size < 1:
        raise ValidationError(
            f"latency needs repeats ≥ 1, warmup ≥ 0 and batch_size ≥ 1, got {repeats}, "
            f"{warmup}, {batch_size}"
        )
    config = model.config
    seq_len = seq_len or getattr(config, "block_size", 128)
    device = _device(model)
    generator = torch.Generator().manual_seed(0)
    idx = torch.randint(0, config.vocab_size, (batch_size, seq_len), generator=generator)
    idx = idx.to(device)
    threads_before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(max(1, int(threads)))
    times = []
    try:
        with _evaluating(model):
            for _ in range(warmup):
                model(idx)
            for _ in range(repeats):
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                start = time.perf_counter()
                model(idx)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads_before)
    return 1000 * statistics.median(times)


def _default_extractor(supernet: nn.Module) -> Callable[[nn.Module, SubNetwork], nn.Module]:
    if isinstance(supernet, SuperNetwork):
        return extract
    from autofm.compress.hf_extract import extract_llama  # transformers only when needed

    return extract_llama


class Evaluator:
    """Objective values of a super-network's sub-networks, each computed once per sub-network.

    'params' and 'flops' are counted from the shapes; `calibration` enables 'kl',
    `validation_tokens` 'val_loss' (on `n_blocks` blocks); 'latency_ms' is measured on the
    extracted dense model with `measure_latency(**latency)`. `extractor(supernet, sub)` makes
    that model (default: `extract` for a GPT super-network, `extract_llama` for a Llama one)."""

    def __init__(
        self,
        supernet: nn.Module,
        calibration: Calibration | None = None,
        validation_tokens=None,
        *,
        n_blocks: int = 64,
        latency: Mapping[str, Any] | None = None,
        extractor: Callable[[nn.Module, SubNetwork], nn.Module] | None = None,
    ):
        unknown = sorted(set(latency or {}) - set(LATENCY_OPTIONS))
        if unknown:
            raise ValidationError(f"unknown latency option(s) {unknown}; known: {LATENCY_OPTIONS}")
        self.supernet, self.calibration = supernet, calibration
        self.latency, self.extractor = dict(latency or {}), extractor
        self.validation_blocks = None
        if validation_tokens is not None:
            block_size = supernet.config.block_size
            self.validation_blocks = _blocks(
                validation_tokens, block_size, n_blocks, block_size + 1
            )
        self._cache: dict[tuple[SubNetwork, str], float] = {}

    @property
    def available(self) -> tuple[str, ...]:
        """The objectives this evaluator can compute."""
        quality = (("kl",) if self.calibration is not None else ()) + (
            ("val_loss",) if self.validation_blocks is not None else ()
        )
        return quality + SIZE_OBJECTIVES

    def fingerprint(self) -> dict[str, str | None]:
        """SHA-256 of the calibration and validation tokens (None where not given)."""
        return {
            "calibration_sha256": self.calibration.fingerprint() if self.calibration else None,
            "validation_sha256": None
            if self.validation_blocks is None
            else tensors_sha256([self.validation_blocks]),
        }

    def _compute(self, sub: SubNetwork, name: str) -> float:
        parent = self.supernet.config
        if name == "params":
            return int(count_parameters(parent, sub))
        if name == "flops":
            return int(count_flops(parent, sub))
        if name == "kl":
            return kl_to_parent(self.supernet, sub, self.calibration)
        if name == "val_loss":
            return _mean_loss(self.supernet, sub, self.validation_blocks, batch_size=32)
        extractor = self.extractor or _default_extractor(self.supernet)
        return measure_latency(extractor(self.supernet, sub), **self.latency)

    def value(self, sub: SubNetwork, name: str) -> float:
        """Objective `name` of `sub` (computed on first use, then cached)."""
        if name not in self.available:
            hint = {"kl": "pass calibration", "val_loss": "pass validation tokens"}.get(name)
            raise ValidationError(
                f"objective {name!r} is not available here"
                + (f" ({hint})" if hint else f"; known: {OBJECTIVES}")
            )
        key = (sub, name)
        if key not in self._cache:
            self._cache[key] = self._compute(sub, name)
        return self._cache[key]

    def values(self, sub: SubNetwork, names: Iterable[str]) -> dict[str, float]:
        """Objectives `names` of `sub`, in that order."""
        return {name: self.value(sub, name) for name in names}
