"""A plain training loop for the GPT: AdamW (β = 0.9, 0.95) with μP/SP LR multipliers,
constant or warmup-stable-decay schedule, a budget in tokens or tokens per parameter,
periodic validation loss, and data parallelism under `torchrun` (DDP; gloo on CPU).

With a run folder, training is resumable: every `checkpoint_every` steps (and when `max_seconds`
runs out) the model, optimizer, data-sampling RNG, step and history go to `run_dir/last` (a
"training-state" checkpoint), and a later call with the same run folder and settings continues
from there. The schedule is laid out over the whole token budget, so a run trained in several
time-bounded pieces follows the same learning rates as one trained in one go.

Launch data-parallel training with, e.g.,
`torchrun --nproc_per_node 2 -m autofm lm train --corpus FILE ...`: every rank samples its own
blocks and the token budget counts all ranks together.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from autofm.core.checkpoint import (
    load_checkpoint,
    load_state_into,
    model_tensors,
    optimizer_tensors,
    restore_optimizer,
    save_checkpoint,
)
from autofm.core.config import as_json, describe_difference
from autofm.core.errors import CheckpointError, ValidationError
from autofm.core.progress import is_quiet, progress, status
from autofm.core.provenance import default_provenance
from autofm.core.runtime import init_distributed, setup_torch
from autofm.core.validation import check_number
from autofm.data.text import sample_blocks
from autofm.lm.checkpoint import TOKENIZER
from autofm.lm.model import GPT

SCHEDULES = ("constant", "wsd")
LossFn = Callable[[torch.nn.Module, torch.Tensor, torch.Tensor, np.random.Generator], torch.Tensor]


@dataclass
class TrainConfig:
    """Hyperparameters of `train`. Set `tokens` or `tokens_per_parameter` (default 20 per param)."""

    lr: float = 3e-3
    batch_size: int = 16
    tokens: int | None = None
    tokens_per_parameter: float | None = None
    schedule: str = "constant"
    warmup_fraction: float = 0.05
    decay_fraction: float = 0.2  # wsd: the last fraction of steps decays linearly to 0
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float | None = None  # off: a global norm clip acts differently at each width
    eval_every: int | None = None  # steps between validation losses (and at 0); None: at the end
    eval_blocks: int = 64
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    checkpoint_every: int = 500  # steps between resumable states (with a run folder)
    max_seconds: float | None = None  # stop (resumably) after this much wall-clock time

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValidationError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if not self.lr > 0 or self.batch_size < 1:
            raise ValidationError(
                f"lr must be > 0 and batch_size ≥ 1, got {self.lr}, {self.batch_size}"
            )
        if not (0 <= self.warmup_fraction < 1 and 0 <= self.decay_fraction <= 1):
            raise ValidationError("warmup_fraction must be in [0, 1) and decay_fraction in [0, 1]")
        if self.tokens is not None and self.tokens < 1:
            raise ValidationError(f"tokens must be ≥ 1, got {self.tokens}")
        if self.tokens_per_parameter is not None and not self.tokens_per_parameter > 0:
            raise ValidationError(
                f"tokens_per_parameter must be > 0, got {self.tokens_per_parameter}"
            )

    def total_tokens(self, n_parameters: int) -> int:
        """The token budget: `tokens`, else `tokens_per_parameter` (default 20) × parameters."""
        if self.tokens is not None:
            return int(self.tokens)
        per_parameter = self.tokens_per_parameter if self.tokens_per_parameter else 20.0
        return int(per_parameter * n_parameters)

    def lr_factor(self, step: int, steps: int) -> float:
        """Multiplier of `lr` at `step` (0-based) of `steps`: linear warmup, then constant or
        warmup-stable-decay (constant, then linear to 0 over the last `decay_fraction`)."""
        warmup = int(self.warmup_fraction * steps)
        if step < warmup:
            return (step + 1) / warmup
        if self.schedule == "wsd":
            decay = int(self.decay_fraction * steps)
            decay_start = steps - decay
            if decay and step >= decay_start:
                return max(0.0, (steps - step) / decay)
        return 1.0


@dataclass
class TrainResult:
    """What `train` returns: the trained model, its history and the final validation loss.

    `steps` is the run's planned number of steps, `steps_done` how many are done (fewer when
    `max_seconds` ran out: `complete` is then False and the run folder resumes it)."""

    model: GPT
    history: list[dict] = field(default_factory=list)
    final_val_loss: float = float("nan")
    tokens_seen: int = 0
    steps: int = 0
    seconds: float = 0.0
    diverged: bool = False
    steps_done: int = 0

    @property
    def complete(self) -> bool:
        return self.steps_done >= self.steps and not self.diverged

    def tokens_to_reach(self, target: float) -> int | None:
        """Tokens at the first validation point with loss ≤ `target` (None if never)."""
        for row in self.history:
            if row.get("val_loss") is not None and row["val_loss"] <= target:
                return int(row["tokens"])
        return None


def validation_starts(n_tokens: int, block_size: int, n_blocks: int) -> np.ndarray:
    """Evenly spaced, deterministic block starts over a validation stream."""
    check_number(n_blocks, "the number of validation blocks", minimum=1, integer=True)
    last = n_tokens - block_size - 1
    if last < 0:
        raise ValidationError(
            f"validation text has {n_tokens} tokens; need more than block_size + 1 = "
            f"{block_size + 1}"
        )
    return np.unique(np.linspace(0, last, n_blocks).astype(np.int64))


@torch.no_grad()
def evaluate(
    model: GPT,
    tokens: np.ndarray,
    n_blocks: int = 64,
    batch_size: int = 32,
    progress_bar: bool = False,
) -> float:
    """Mean next-byte cross-entropy (nats) on `n_blocks` fixed blocks of `tokens`;
    `progress_bar` shows one over the batches (for a command's own evaluation, not inside
    training)."""
    block_size = model.config.block_size
    starts = validation_starts(len(tokens), block_size, n_blocks)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    offsets = np.arange(block_size + 1)
    batches = range(0, len(starts), batch_size)
    for begin in progress(batches, desc="evaluate", disable=is_quiet() or not progress_bar):
        blocks = torch.from_numpy(tokens[starts[begin : begin + batch_size, None] + offsets])
        blocks = blocks.long().to(device)
        _, loss = model(blocks[:, :-1], blocks[:, 1:])
        total += float(loss) * blocks.shape[0]
        count += blocks.shape[0]
    model.train(was_training)
    return total / count


# settings a resumed run must share with the run it continues (the schedule depends on them)
_RESUME_KEYS = ("lr", "batch_size", "tokens", "tokens_per_parameter", "schedule", "seed")


def _save_state(
    path: Path,
    model: GPT,
    optimizer: torch.optim.Optimizer,
    rng: np.random.Generator,
    config: TrainConfig,
    step: int,
    history: list[dict],
    running: list[float],
    identity: dict | None = None,
) -> None:
    opt_tensors, param_groups = optimizer_tensors(optimizer)
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors.update(opt_tensors)
    training = {
        "config": dataclasses.asdict(config),
        "step": step,
        "history": history,
        "running_losses": running,  # training losses since the last history row
        "rng": rng.bit_generator.state,
        "optimizer_param_groups": param_groups,
        "identity": identity,
    }
    save_checkpoint(
        path,
        tensors,
        kind=model.checkpoint_kind,
        model=model.config.to_dict(),
        training=training,
        provenance=default_provenance(),
        contents="training-state",
        # a GPT's state loads as a GPT too (load_gpt); other models (a Hugging Face Llama
        # trained through `autofm.compress`) keep their own tokenizer
        **({"tokenizer": TOKENIZER} if model.checkpoint_kind == GPT.checkpoint_kind else {}),
    )


def _resume(
    path: Path,
    model: GPT,
    optimizer: torch.optim.Optimizer,
    rng: np.random.Generator,
    config: TrainConfig,
    rank: int,
    identity: dict | None = None,
) -> tuple[int, list[dict], list[float], dict | None]:
    """Restore `run_dir/last` into model, optimizer and (rank 0's) RNG; return the step, the
    history, the training losses since its last row and the identity the run was saved with."""
    tensors, meta = load_checkpoint(path)
    stored = meta["training"]["config"]
    changed = [key for key in _RESUME_KEYS if stored.get(key) != getattr(config, key)]
    before = meta["training"].get("identity")  # None: an older run folder, or no identity given
    if identity is not None and before is not None:
        now = as_json(identity)
        changed += [k for k in sorted(set(before) | set(now)) if before.get(k) != now.get(k)]
    if meta["kind"] != model.checkpoint_kind or meta["model"] != model.config.to_dict() or changed:
        given = {**dataclasses.asdict(config), **as_json(identity or {})}
        saved = {**stored, **(before or {})}
        what = describe_difference(
            {k: saved.get(k) for k in changed}, {k: given.get(k) for k in changed}
        )
        raise CheckpointError(
            f"{path} holds a run with another model or settings ({changed or 'model config'}"
            f"{': ' + what if changed else ''}); use a new run folder, or the same settings to "
            "continue it"
        )
    load_state_into(model, model_tensors(tensors, meta))
    restore_optimizer(optimizer, tensors, meta["training"]["optimizer_param_groups"])
    step = int(meta["training"]["step"])
    if rank == 0:
        rng.bit_generator.state = meta["training"]["rng"]
    else:  # only rank 0's stream is stored: other ranks continue on a fresh, step-keyed one
        rng.bit_generator.state = np.random.default_rng(
            [config.seed, rank, step]
        ).bit_generator.state
    training = meta["training"]
    return step, list(training["history"]), list(training["running_losses"]), before


def train(
    model: GPT,
    train_tokens: np.ndarray,
    valid_tokens: np.ndarray | None,
    config: TrainConfig,
    run_dir: str | os.PathLike | None = None,
    loss_fn: LossFn | None = None,
    identity: dict | None = None,
) -> TrainResult:
    """Train `model` in place on random blocks of `train_tokens`; a fresh AdamW every call
    (so a grown model starts with reset optimizer state). Stops early if the loss diverges.
    `model` is a GPT, or a module with its training interface (`forward(idx, targets)`,
    `config.block_size`, `n_parameters`, `parameter_groups`, `checkpoint_kind`), such as
    `autofm.compress`'s `LlamaTrainee`. `identity` (JSON values: e.g. the corpus and where the
    model came from) is saved with the run's state; a run folder saved with another identity is
    not resumed.

    With `run_dir`, resumes from `run_dir/last` if it exists (same model and settings) and saves
    a resumable state every `checkpoint_every` steps, at the end, and when `max_seconds` runs
    out.

    `loss_fn(runner, inputs, targets, rng)` replaces the plain next-byte loss of a step (e.g. a
    super-network's sum over sampled sub-networks); `rng` is the run's sampling RNG, saved with
    its state, so such a run resumes exactly too. It runs outside DDP's synchronisation, so it is
    refused under torchrun."""
    rank, world_size = init_distributed()
    if loss_fn is not None and world_size > 1:
        raise ValidationError(
            "a custom loss (e.g. super-network training) runs on one process; start it without "
            "torchrun"
        )
    device = setup_torch(config.threads, config.device)
    if device.type == "cuda" and world_size > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    block_size = model.config.block_size
    if len(train_tokens) <= block_size + 1:
        raise ValidationError(
            f"training text has {len(train_tokens)} tokens; need more than block_size + 1 = "
            f"{block_size + 1}"
        )
    model = model.to(device)
    tokens_per_step = config.batch_size * block_size * world_size
    total = config.total_tokens(model.n_parameters())
    steps = max(1, math.ceil(total / tokens_per_step))
    optimizer = torch.optim.AdamW(
        model.parameter_groups(config.weight_decay), lr=config.lr, betas=config.betas
    )
    rng = np.random.default_rng([config.seed, rank])
    if world_size > 1:
        for parameter in model.parameters():  # every rank starts from rank 0's weights
            dist.broadcast(parameter.data, src=0)
        runner: torch.nn.Module = torch.nn.parallel.DistributedDataParallel(model)
    else:
        runner = model

    def validate() -> float | None:
        if valid_tokens is None:
            return None
        return evaluate(model, valid_tokens, config.eval_blocks, config.batch_size)

    result = TrainResult(model=model, steps=steps)
    state_path = Path(run_dir) / "last" if run_dir is not None else None
    start_step = 0
    running: list[float] = []
    if state_path is not None and state_path.with_suffix(".json").is_file():
        start_step, result.history, running, saved_identity = _resume(
            state_path, model, optimizer, rng, config, rank, identity
        )
        identity = identity if identity is not None else saved_identity  # kept for later checks
        status(f"resuming {run_dir} at step {start_step} of {steps}")
    writes = state_path is not None and rank == 0
    started = time.perf_counter()
    if config.eval_every and valid_tokens is not None and start_step == 0:
        result.history.append({"step": 0, "tokens": 0, "lr": 0.0, "val_loss": validate()})
    model.train()
    quiet_rank = {"disable": True} if rank else {}
    done = start_step
    with progress(total=steps, initial=start_step, desc="train lm", **quiet_rank) as bar:
        for step in range(start_step, steps):
            lr = config.lr * config.lr_factor(step, steps)
            for group in optimizer.param_groups:
                group["lr"] = lr * group["lr_multiplier"]
            inputs, targets = sample_blocks(train_tokens, block_size, config.batch_size, rng)
            inputs = torch.from_numpy(inputs).to(device)
            targets = torch.from_numpy(targets).to(device)
            if loss_fn is None:
                _, loss = runner(inputs, targets)
            else:
                loss = loss_fn(runner, inputs, targets, rng)
            if not torch.isfinite(loss):
                result.diverged = True
                result.history.append(
                    {"step": step, "tokens": step * tokens_per_step, "train_loss": float("nan")}
                )
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            running.append(float(loss.detach()))
            bar.update(1)
            done = step + 1
            if done == steps or (config.eval_every and done % config.eval_every == 0):
                result.history.append(
                    {
                        "step": done,
                        "tokens": done * tokens_per_step,
                        "lr": lr,
                        "train_loss": float(np.mean(running)),
                        "val_loss": validate(),
                        "seconds": time.perf_counter() - started,
                    }
                )
                running = []
                bar.set_postfix(loss=f"{result.history[-1]['train_loss']:.3f}")
            out_of_time = (
                config.max_seconds is not None
                and time.perf_counter() - started > config.max_seconds
            )
            if writes and (done % config.checkpoint_every == 0 or done == steps or out_of_time):
                _save_state(
                    state_path,
                    model,
                    optimizer,
                    rng,
                    config,
                    done,
                    result.history,
                    running,
                    identity,
                )
            if out_of_time:
                break
    result.steps_done = done
    result.seconds = time.perf_counter() - started
    result.tokens_seen = done * tokens_per_step  # also when stopped between validations
    if result.diverged:
        result.final_val_loss = float("nan")
    elif result.history and result.history[-1].get("val_loss") is not None:
        result.final_val_loss = float(result.history[-1]["val_loss"])
    if world_size > 1:
        dist.barrier()
    return result
