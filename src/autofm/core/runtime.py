"""Seeding, devices and threads."""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator

import numpy as np
import torch

from autofm.core.errors import ValidationError


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, NumPy and torch; return a NumPy Generator seeded with `seed`."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """'auto' → CUDA if available, else MPS, else CPU; otherwise the named device (checked)."""
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValidationError("device 'cuda' requested but CUDA is not available; use --device cpu")
    return device


def setup_torch(
    threads: int | None = None, device: str | torch.device | None = "auto"
) -> torch.device:
    """Configure torch for speed on this host and return the device to use.

    On CPU, flushing denormals roughly doubles small-model training speed.
    `threads` defaults to $AUTOFM_THREADS or torch's own choice.
    """
    resolved = resolve_device(device)
    if threads is None and os.environ.get("AUTOFM_THREADS"):
        threads = int(os.environ["AUTOFM_THREADS"])
    if threads is not None:
        torch.set_num_threads(max(1, threads))
    if resolved.type == "cpu":
        torch.set_flush_denormal(True)
    return resolved


def device_summary() -> dict[str, object]:
    """Devices and threads as seen by torch, for `autofm doctor`."""
    cuda = torch.cuda.is_available()
    return {
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda_available": cuda,
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if cuda
        else [],
        "default_device": str(resolve_device("auto")),
    }


def init_distributed() -> tuple[int, int]:
    """(rank, world_size): joins the process group when launched by `torchrun` (WORLD_SIZE > 1).

    NCCL on GPU, gloo on CPU; a single process returns (0, 1) and starts nothing.
    """
    import torch.distributed as dist

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Run torch and BLAS on one thread inside the block (restored after): for many small
    operations, waking a second thread costs more than it saves, and on a busy machine the
    waiting thread spins."""
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(before)
