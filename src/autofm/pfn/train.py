"""One training loop for every in-context model trained on a prior (PFNs, GAMformer, Mamba4Cast).

AdamW with linear warmup and cosine decay, gradient clipping, a fresh prior batch every step,
periodic checkpoints (model + optimizer + RNG state, safetensors + JSON) with resume, a progress
bar, a loss curve in the run folder, and data-parallel training under `torchrun` (DDP; gloo on CPU,
NCCL on GPU). Only rank 0 writes files.

The loss is `loss_fn(model, batch)`; it must call `model(...)` (not a method of it) so that DDP
synchronises gradients. The default calls `model(batch)` and passes the output to the
underlying module's `loss(output, batch)`.
"""

from __future__ import annotations

import csv
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from autofm.core.checkpoint import (
    load_checkpoint,
    model_tensors,
    optimizer_tensors,
    restore_optimizer,
    save_checkpoint,
)
from autofm.core.config import ConfigMixin
from autofm.core.errors import CheckpointError, ValidationError
from autofm.core.progress import progress
from autofm.core.provenance import default_provenance
from autofm.core.runtime import init_distributed, setup_torch
from autofm.core.validation import check_number
from autofm.pfn.prior import Prior, TaskBatch

LossFn = Callable[[torch.nn.Module, TaskBatch], torch.Tensor]


@dataclass
class PriorTrainConfig(ConfigMixin):
    """Hyperparameters of `train`; `n_context` may be a (min, max) range sampled every step.

    The learning rate warms up linearly over the first `warmup_steps` of `steps`, then follows a
    cosine to lr·min_lr_ratio. With `max_seconds`, the run also stops after that much wall-clock
    time and the schedule follows whichever budget is further along (`schedule_progress`), so a
    run cut short by its time budget still ends annealed; a run bounded by time alone gives a
    large `steps` (its warmup then is the same fraction `warmup_steps / steps` of the time).
    """

    steps: int = 1000
    batch_size: int = 32
    n_context: int | tuple[int, int] = 50
    n_query: int = 50
    n_features: int = 1
    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 100
    min_lr_ratio: float = 0.0
    grad_clip: float = 1.0
    seed: int = 0
    checkpoint_every: int = 500
    max_seconds: float | None = None
    device: str = "auto"
    threads: int | None = None

    def __post_init__(self) -> None:
        # refused here, before a run folder or a model is made (torch's own errors come later)
        check_number(self.steps, "steps", minimum=1, integer=True)
        check_number(self.batch_size, "batch_size", minimum=1, integer=True)
        check_number(self.lr, "lr", minimum=0, exclusive=True)
        check_number(self.warmup_steps, "warmup_steps", minimum=0, integer=True)
        if self.max_seconds is not None:
            check_number(self.max_seconds, "max_seconds", minimum=0)
        if self.threads is not None:
            check_number(self.threads, "threads", minimum=1, integer=True)

    def schedule_progress(self, step: int, elapsed: float = 0.0) -> float:
        """Fraction of the run done before `step` (0-based), `elapsed` seconds into this process:
        the larger of the step and the time fractions (a resumed run starts its clock anew)."""
        progress_ = step / max(1, self.steps)
        if self.max_seconds:
            progress_ = max(progress_, elapsed / self.max_seconds)
        return min(1.0, progress_)

    def lr_at(self, step: int, elapsed: float = 0.0) -> float:
        """Learning rate at `step`: linear warmup, then cosine to lr·min_lr_ratio."""
        progress_ = self.schedule_progress(step, elapsed)
        warmup = min(1.0, self.warmup_steps / max(1, self.steps))
        if progress_ < warmup:
            # (step + 1) / warmup_steps when the steps lead
            return self.lr * min(1.0, (progress_ + 1.0 / max(1, self.steps)) / warmup)
        cosine = 0.5 * (1.0 + math.cos(math.pi * (progress_ - warmup) / max(1e-12, 1.0 - warmup)))
        return self.lr * (self.min_lr_ratio + (1.0 - self.min_lr_ratio) * cosine)


@dataclass
class PriorTrainResult:
    """What `train` returns: the trained model (unwrapped), per-step losses and timings."""

    model: torch.nn.Module
    losses: list[float] = field(default_factory=list)
    steps_done: int = 0
    seconds: float = 0.0
    run_dir: Path | None = None


def default_loss(model: torch.nn.Module, batch: TaskBatch) -> torch.Tensor:
    """`unwrap(model).loss(model(batch), batch)`."""
    return unwrap(model).loss(model(batch), batch)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside a DDP wrapper (or the module itself)."""
    return model.module if hasattr(model, "module") else model


def save_training_state(
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    step: int,
    config: PriorTrainConfig,
    model_kind: str,
    model_config: dict[str, Any],
    prior: Prior,
) -> None:
    """Model, optimizer and RNG state at `step`, resumable by `train` (a "training-state"
    checkpoint: `load_model` also reads the model from it)."""
    opt_tensors, param_groups = optimizer_tensors(optimizer)
    tensors = {f"model.{k}": v for k, v in unwrap(model).state_dict().items()}
    tensors.update(opt_tensors)
    tensors["rng.state"] = generator.get_state()
    training = {
        "config": config.to_dict(),
        "step": step,
        "optimizer_param_groups": param_groups,
    }
    save_checkpoint(
        path,
        tensors,
        kind=model_kind,
        model=model_config,
        training=training,
        provenance=default_provenance(prior=repr(prior)),
        contents="training-state",
    )


def _write_loss_curve(
    run_dir: Path, rows: list[tuple[int, float, float, float]], new: bool
) -> None:
    path = run_dir / "loss.csv"
    with open(path, "w" if new else "a", newline="") as handle:
        writer = csv.writer(handle)
        if new:
            writer.writerow(["step", "loss", "lr", "seconds"])
        writer.writerows(rows)


def plot_loss_curve(run_dir: str | os.PathLike) -> Path:
    """Plot `loss.csv` of a run folder to `loss.png` (log-scaled steps, smoothed)."""
    import matplotlib.pyplot as plt
    import pandas as pd

    run_dir = Path(run_dir)
    frame = pd.read_csv(run_dir / "loss.csv")
    fig, axis = plt.subplots(figsize=(6, 3.5))
    axis.plot(frame["step"], frame["loss"], lw=0.5, alpha=0.4, label="per step")
    window = max(1, len(frame) // 50)
    axis.plot(frame["step"], frame["loss"].rolling(window, min_periods=1).mean(), label="smoothed")
    axis.set_xlabel("step")
    axis.set_ylabel("training loss")
    axis.legend()
    fig.tight_layout()
    out = run_dir / "loss.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def train(
    model: torch.nn.Module,
    prior: Prior,
    config: PriorTrainConfig,
    *,
    run_dir: str | os.PathLike | None = None,
    loss_fn: LossFn = default_loss,
    model_kind: str = "model",
    model_config: dict[str, Any] | None = None,
    resume: bool = True,
) -> PriorTrainResult:
    """Train `model` on fresh batches from `prior`; return the unwrapped model and its losses.

    With `run_dir`, writes `last.safetensors/json` every `checkpoint_every` steps and at the end,
    `loss.csv` and `loss.png`, and resumes from `last` when it exists (and `resume`).
    `model_kind` and `model_config` (JSON) are stored with checkpoints so the model can be
    rebuilt (`autofm.core.checkpoint.load_model` reads it from `last`).
    """
    if config.steps < 1 or config.batch_size < 1:
        raise ValidationError(
            f"steps and batch_size must be ≥ 1, got {config.steps}, {config.batch_size}"
        )
    rank, world_size = init_distributed()
    device = setup_torch(config.threads, config.device)
    if device.type == "cuda" and world_size > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    model = model.to(device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay
    )
    generator = torch.Generator().manual_seed(config.seed + 1000 * rank)
    model_config = model_config or {}
    run_path = Path(run_dir) if run_dir is not None else None
    start_step = 0
    if run_path is not None and resume and (run_path / "last.json").exists():
        tensors, meta = load_checkpoint(run_path / "last")
        stored = (meta["contents"], meta["kind"], meta["model"])
        if stored != ("training-state", model_kind, model_config):
            raise CheckpointError(
                f"{run_path}/last was trained with a different model config; use a new run folder "
                "or resume=False"
            )
        model.load_state_dict(model_tensors(tensors, meta))
        restore_optimizer(optimizer, tensors, meta["training"]["optimizer_param_groups"])
        generator.set_state(tensors["rng.state"])
        start_step = int(meta["training"]["step"])
    if world_size > 1:
        for parameter in model.parameters():  # every rank starts from rank 0's weights
            dist.broadcast(parameter.data, src=0)
        model = torch.nn.parallel.DistributedDataParallel(model)
    writes = run_path is not None and rank == 0
    if writes:
        run_path.mkdir(parents=True, exist_ok=True)
        if start_step == 0:
            _write_loss_curve(run_path, [], new=True)

    model.train()
    losses: list[float] = []
    pending_rows: list[tuple[int, float, float, float]] = []
    started = time.perf_counter()
    step = start_step
    quiet_rank = {"disable": True} if rank else {}
    with progress(total=config.steps, initial=start_step, desc="train", **quiet_rank) as bar:
        while step < config.steps:
            lr = config.lr_at(step, time.perf_counter() - started)
            for group in optimizer.param_groups:
                group["lr"] = lr * group.get("lr_multiplier", 1.0)
            if isinstance(config.n_context, tuple):
                low, high = config.n_context
                n_context = int(torch.randint(low, high + 1, (1,), generator=generator))
            else:
                n_context = config.n_context
            batch = prior.sample(
                config.batch_size, n_context, config.n_query, config.n_features, generator
            )
            loss = loss_fn(model, batch.to(device))
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"non-finite training loss at step {step}; lower the learning rate"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            step += 1
            value = float(loss.detach())
            losses.append(value)
            pending_rows.append((step, value, lr, time.perf_counter() - started))
            bar.update(1)
            bar.set_postfix(loss=f"{value:.4f}")
            out_of_time = (
                config.max_seconds is not None
                and time.perf_counter() - started > config.max_seconds
            )
            if writes and (
                step % config.checkpoint_every == 0 or step == config.steps or out_of_time
            ):
                _write_loss_curve(run_path, pending_rows, new=False)
                pending_rows = []
                save_training_state(
                    run_path / "last",
                    model,
                    optimizer,
                    generator,
                    step,
                    config,
                    model_kind,
                    model_config,
                    prior,
                )
            if out_of_time:
                break
    if writes:
        plot_loss_curve(run_path)
    if world_size > 1:
        dist.barrier()
    return PriorTrainResult(unwrap(model), losses, step, time.perf_counter() - started, run_path)
