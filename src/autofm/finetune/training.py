"""LoRA finetuning of the byte-level GPT on a task, one epoch at a time, with `peft`.

`LoraRun` holds one configuration's adapter, optimiser and schedule, so that a grey-box search
can train several configurations one more epoch each in any order; `finetune` runs one
configuration to the end. The learning-rate schedule spans `max_epochs` (the maximum fidelity),
so stopping early gives the same first epochs as a full run.
"""

from __future__ import annotations

import copy
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model

from autofm.core.errors import ValidationError
from autofm.finetune.space import FinetuneConfig
from autofm.finetune.tasks import Split, Task
from autofm.lm.model import GPT

EVAL_BATCH_SIZE = 64
TARGET_MODULES = {
    "attention": ["attn.qkv", "attn.proj"],
    "attention+mlp": ["attn.qkv", "attn.proj", "mlp.fc", "mlp.proj"],
}


@dataclass
class Batch:
    inputs: torch.Tensor  # [B, T] byte ids (right-padded with 0)
    targets: torch.Tensor  # [B, T] next byte on answer positions, -100 elsewhere
    answer_start: torch.Tensor  # [B] input position whose next byte is the answer's first


def make_batch(split: Split, rows, block_size: int, device: torch.device) -> Batch:
    """Prompt + answer bytes of `rows`; the prompt's start is cut if the whole exceeds the block."""
    sequences, starts = [], []
    for row in rows:
        prompt = split.prompts[row].encode("utf-8")
        answer = split.answers[row].encode("utf-8")
        if len(answer) >= block_size:
            raise ValidationError(
                f"an answer of {len(answer)} bytes does not fit the model's {block_size}-byte context"
            )
        prompt = prompt[-(block_size + 1 - len(answer)) :]
        sequences.append(prompt + answer)
        starts.append(len(prompt) - 1)
    width = max(len(s) for s in sequences) - 1
    inputs = torch.zeros(len(rows), width, dtype=torch.long)
    targets = torch.full((len(rows), width), -100, dtype=torch.long)
    for i, (sequence, start) in enumerate(zip(sequences, starts)):
        ids = torch.tensor(list(sequence), dtype=torch.long)
        inputs[i, : len(ids) - 1] = ids[:-1]
        targets[i, start : len(ids) - 1] = ids[start + 1 :]
    return Batch(inputs.to(device), targets.to(device), torch.tensor(starts, device=device))


def answer_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over answer bytes."""
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100
    )


@dataclass
class Evaluation:
    """Score (accuracy or exact match) of a split, per-example answer losses (nats per byte),
    and class probabilities [n, C] for classification."""

    score: float
    losses: np.ndarray
    probabilities: np.ndarray | None = None


@torch.no_grad()
def evaluate(model: torch.nn.Module, task: Task, split: Split, device=None) -> Evaluation:
    """Score `model` on `split` in teacher-forced forward passes (see autofm.finetune.tasks)."""
    was_training = model.training
    model.eval()
    device = device or next(model.parameters()).device
    block_size = _gpt(model).config.block_size
    verbalizers = torch.tensor([ord(v) for v in task.verbalizers], device=device)
    correct, losses, probabilities = [], [], []
    for first in range(0, len(split), EVAL_BATCH_SIZE):
        rows = range(first, min(first + EVAL_BATCH_SIZE, len(split)))
        batch = make_batch(split, rows, block_size, device)
        logits = model(batch.inputs)[0].float()
        mask = batch.targets != -100
        token_loss = F.cross_entropy(
            logits.transpose(1, 2), batch.targets.clamp(min=0), reduction="none"
        )
        losses.append(((token_loss * mask).sum(1) / mask.sum(1)).cpu())
        if task.kind == "classification":
            at_answer = logits[torch.arange(len(rows), device=device), batch.answer_start]
            class_probabilities = torch.softmax(at_answer[:, verbalizers], dim=1)
            probabilities.append(class_probabilities.cpu())
        else:
            hits = (logits.argmax(-1) == batch.targets) | ~mask
            correct.append(hits.all(dim=1).cpu())
    losses_array = torch.cat(losses).numpy().astype(np.float64)
    model.train(was_training)
    if task.kind == "classification":
        probs = torch.cat(probabilities).numpy().astype(np.float64)
        score = float((probs.argmax(1) == split.labels).mean())
        return Evaluation(score, losses_array, probs)
    return Evaluation(float(torch.cat(correct).float().mean()), losses_array)


def _gpt(model: torch.nn.Module) -> GPT:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if not isinstance(base, GPT):
        raise ValidationError(f"finetuning needs an autofm GPT, got {type(base).__name__}")
    return base


def lr_factor(config: FinetuneConfig, step: int, total_steps: int) -> float:
    """Warmup over `warmup_fraction` of all steps, then constant, linear or cosine decay to 0."""
    warmup = int(config.warmup_fraction * total_steps)
    if step < warmup:
        return (step + 1) / (warmup + 1)
    if config.scheduler == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total_steps - warmup)
    if config.scheduler == "linear":
        return 1.0 - progress
    return 0.5 * (1.0 + math.cos(math.pi * progress))


@dataclass
class EpochRecord:
    epoch: int
    val_score: float
    val_loss: float
    train_loss: float
    seconds: float  # training + validation of this epoch


class LoraRun:
    """One configuration being finetuned: call `step()` to train one more epoch and validate."""

    def __init__(
        self,
        base: GPT,
        task: Task,
        config: FinetuneConfig,
        max_epochs: int,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ):
        config.check()
        if max_epochs < 1:
            raise ValidationError(f"max_epochs must be ≥ 1, got {max_epochs}")
        self.task, self.config, self.max_epochs, self.seed = task, config, max_epochs, seed
        self.device = torch.device(device)
        lora = LoraConfig(
            r=config.lora_rank,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=TARGET_MODULES[config.target_modules],
            bias="none",
        )
        with torch.random.fork_rng(devices=[]):  # LoRA's A matrices are drawn at wrapping
            torch.manual_seed(seed)
            self.model = get_peft_model(copy.deepcopy(base).float(), lora).to(self.device)
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            trainable, lr=config.learning_rate, weight_decay=config.weight_decay
        )
        self.steps_per_epoch = math.ceil(len(task.train) / config.batch_size)
        self.total_steps = self.steps_per_epoch * max_epochs
        self.step_count = 0
        self.history: list[EpochRecord] = []
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_val: Evaluation | None = None
        self.rng = np.random.default_rng(seed)

    @property
    def epoch(self) -> int:
        return len(self.history)

    @property
    def best_epoch(self) -> int:
        scores = [r.val_score for r in self.history]
        return int(np.argmax(scores)) + 1 if scores else 0

    def adapter_state(self) -> dict[str, torch.Tensor]:
        return {
            name: p.detach().clone() for name, p in self.model.named_parameters() if p.requires_grad
        }

    def step(self) -> EpochRecord:
        """Train one epoch (shuffled mini-batches), then validate; keep the best adapter."""
        if self.epoch >= self.max_epochs:
            raise ValidationError(f"this run already has all {self.max_epochs} epochs")
        start = time.perf_counter()
        self.model.train()
        block_size = _gpt(self.model).config.block_size
        order = self.rng.permutation(len(self.task.train))
        losses = []
        for first in range(0, len(order), self.config.batch_size):
            rows = order[first : first + self.config.batch_size]
            batch = make_batch(self.task.train, rows, block_size, self.device)
            factor = lr_factor(self.config, self.step_count, self.total_steps)
            for group in self.optimizer.param_groups:
                group["lr"] = self.config.learning_rate * factor
            loss = answer_loss(self.model(batch.inputs)[0], batch.targets)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(
                [p for p in self.model.parameters() if p.requires_grad], 1.0
            )
            self.optimizer.step()
            self.step_count += 1
            losses.append(loss.item())
        validation = evaluate(self.model, self.task, self.task.val, self.device)
        if np.isnan(validation.losses).any() or not np.isfinite(np.mean(losses)):
            validation.score = 0.0  # a diverged run scores nothing
        record = EpochRecord(
            self.epoch + 1,
            validation.score,
            float(np.mean(validation.losses)),
            float(np.mean(losses)),
            time.perf_counter() - start,
        )
        if self.best_val is None or validation.score > self.best_val.score:
            self.best_state, self.best_val = self.adapter_state(), validation
        self.history.append(record)
        return record

    def test(self) -> Evaluation:
        """The test split, scored with the adapter of the best validation epoch."""
        if self.best_state is None:
            raise ValidationError("train at least one epoch before testing")
        current = self.adapter_state()
        self._load_adapter(self.best_state)
        result = evaluate(self.model, self.task, self.task.test, self.device)
        self._load_adapter(current)
        return result

    def _load_adapter(self, state: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for name, parameter in self.model.named_parameters():
                if name in state:
                    parameter.copy_(state[name])

    def save_adapter(self, folder: str | os.PathLike) -> Path:
        """The best epoch's adapter as a peft folder (adapter_model.safetensors + config)."""
        current = self.adapter_state()
        self._load_adapter(self.best_state or current)
        self.model.save_pretrained(str(folder))
        self._load_adapter(current)
        return Path(folder)


@dataclass
class FinetuneResult:
    """A finished run: per-epoch records, the best epoch, its test evaluation and validation one."""

    history: list[EpochRecord]
    best_epoch: int
    test: Evaluation
    val: Evaluation
    run: LoraRun = field(repr=False)

    @property
    def curve(self) -> list[float]:
        return [r.val_score for r in self.history]

    @property
    def seconds(self) -> list[float]:
        return [r.seconds for r in self.history]


def finetune(
    model: GPT,
    task: Task,
    config: FinetuneConfig,
    epochs: int = 8,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> FinetuneResult:
    """Finetune `model` (left unchanged) with LoRA per `config` for `epochs` epochs."""
    run = LoraRun(model, task, config, epochs, seed, device)
    for _ in range(epochs):
        run.step()
    return FinetuneResult(run.history, run.best_epoch, run.test(), run.best_val, run)
