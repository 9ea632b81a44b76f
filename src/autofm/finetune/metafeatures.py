"""Meta-features of a finetuning task: cheap descriptors of its data and of the pretrained
model's zero-shot behaviour on a sample of its training examples (never its validation or test
examples), so that a new task is described exactly as the meta-training tasks were."""

from __future__ import annotations

import numpy as np
import torch

from autofm.finetune.tasks import Split, Task
from autofm.finetune.training import evaluate

META_FEATURES = (
    "n_train",
    "n_classes",
    "mean_input_tokens",
    "answer_tokens",
    "zero_shot_score",
    "zero_shot_loss_mean",
    "zero_shot_loss_std",
    "is_qa",
)
ZERO_SHOT_SAMPLE = 64


def task_meta_features(model: torch.nn.Module, task: Task, sample: int = ZERO_SHOT_SAMPLE) -> dict:
    """The META_FEATURES of `task` for `model` (the pretrained model, before finetuning)."""
    train = task.train
    rows = np.random.default_rng(0).permutation(len(train))[:sample]
    probe = Split(
        [train.prompts[i] for i in rows],
        [train.answers[i] for i in rows],
        None if train.labels is None else train.labels[rows],
    )
    zero_shot = evaluate(model, task, probe)
    return {
        "n_train": float(len(train)),
        "n_classes": float(len(task.classes)),
        "mean_input_tokens": float(np.mean([len(p.encode("utf-8")) for p in train.prompts])),
        "answer_tokens": float(np.mean([len(a.encode("utf-8")) for a in train.answers])),
        "zero_shot_score": zero_shot.score,
        "zero_shot_loss_mean": float(np.mean(zero_shot.losses)),
        "zero_shot_loss_std": float(np.std(zero_shot.losses)),
        "is_qa": float(task.kind == "qa"),
    }
