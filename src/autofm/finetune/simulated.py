"""A simulated finetuning meta-dataset: parametric learning curves and costs, no model trained.

For tests, the tour and quick experiments only; the numbers describe no real model. Each
configuration's validation curve saturates from the task's zero-shot score towards an asymptote
set by the configuration and the task: the best learning rate depends on the task's size (a
meta-feature), so what transfers between tasks is learnable from the meta-features; larger
tasks gain from higher LoRA ranks and MLP targeting, small ones overfit late. Seconds per epoch
grow with the number of examples, input length, rank and MLP targeting, and shrink with batch
size.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from autofm.core.errors import ValidationError
from autofm.finetune.metadataset import MetaDataset
from autofm.finetune.metafeatures import META_FEATURES
from autofm.finetune.space import config_features, sample_configs

LOG10_N_TRAIN_RANGE = (2.5, 4.5)


def simulated_metadataset(
    n_tasks: int = 6,
    n_configs: int = 32,
    max_epochs: int = 8,
    seed: int = 0,
    missing_fraction: float = 0.0,
) -> MetaDataset:
    """A simulated meta-dataset of `n_tasks` tasks × `n_configs` configurations (the first is
    DEFAULT_CONFIG) × `max_epochs` epochs.

    `missing_fraction` of the runs (never the default configuration's) keep only a random
    prefix of 0..max_epochs-1 epochs, the rest NaN, as an interrupted build would leave them.
    """
    if n_tasks < 1 or max_epochs < 1:
        raise ValidationError(f"need n_tasks ≥ 1 and max_epochs ≥ 1, got {n_tasks}, {max_epochs}")
    if not 0.0 <= missing_fraction < 1.0:
        raise ValidationError(f"missing_fraction must lie in [0, 1), got {missing_fraction}")
    rng = np.random.default_rng(seed)
    configs = sample_configs(n_configs, seed=seed)
    features = config_features(configs)
    learning_rate, rank, _, dropout, mlp, batch = (features[:, i] for i in range(6))
    constant_schedule, cosine_schedule = features[:, 6], features[:, 8]
    batch_size = np.array([c.batch_size for c in configs], dtype=float)

    tasks = [f"sim_{i:02d}" for i in range(n_tasks)]
    is_qa = (np.arange(n_tasks) % 2).astype(float)
    log10_n_train = rng.uniform(*LOG10_N_TRAIN_RANGE, size=n_tasks)
    n_train = np.round(10**log10_n_train)
    n_classes = np.where(is_qa == 1, 0, rng.integers(2, 11, size=n_tasks))
    mean_input_tokens = 10 ** rng.uniform(1.3, 2.6, size=n_tasks)
    answer_tokens = np.where(is_qa == 1, rng.uniform(2, 12, size=n_tasks), 1.0)
    chance = np.where(is_qa == 1, 0.0, 1.0 / np.maximum(n_classes, 1))
    zero_shot = chance + rng.uniform(0.05, 0.3, size=n_tasks)
    meta = pd.DataFrame(
        {
            "n_train": n_train,
            "n_classes": n_classes.astype(float),
            "mean_input_tokens": mean_input_tokens,
            "answer_tokens": answer_tokens,
            "zero_shot_score": zero_shot,
            "zero_shot_loss_mean": -np.log(zero_shot) + rng.normal(0, 0.1, size=n_tasks),
            "zero_shot_loss_std": rng.uniform(0.3, 0.8, size=n_tasks),
            "is_qa": is_qa,
        },
        index=pd.Index(tasks, name="task"),
    )[list(META_FEATURES)]  # the columns the builder writes, in its order

    # per task (rows) × configuration (columns)
    size = ((log10_n_train - LOG10_N_TRAIN_RANGE[0]) / np.ptp(LOG10_N_TRAIN_RANGE))[:, None]
    best_learning_rate = 0.75 - 0.35 * size  # big tasks want smaller steps
    headroom = 0.6 + 0.3 * size + rng.normal(0, 0.03, (n_tasks, 1))  # more data, more gain
    ceiling = zero_shot[:, None] + (0.97 - zero_shot[:, None]) * headroom
    quality = np.exp(-(((learning_rate - best_learning_rate) / 0.2) ** 2)) * (
        0.8
        + 0.1 * size * rank
        + 0.08 * size * mlp
        + 0.04 * cosine_schedule
        - 0.03 * constant_schedule
        - 0.05 * (1 - size) * dropout
    )
    asymptote = zero_shot[:, None] + (ceiling - zero_shot[:, None]) * np.clip(quality, 0, 1)
    divergence = 1 / (1 + np.exp(-(learning_rate - best_learning_rate - 0.3) / 0.03))
    asymptote = asymptote * (1 - 0.7 * divergence)
    rate = 0.15 + 1.5 * learning_rate * (1 + 0.3 * (1 - batch))
    epochs = np.arange(1, max_epochs + 1)
    progress = 1 - np.exp(-rate[None, :, None] * epochs)
    overfit = 0.006 * (1 - size) * (rank + mlp) * (1 - 0.5 * dropout)
    start = zero_shot[:, None, None]
    curves = start + (asymptote[:, :, None] - start) * progress
    curves -= overfit[:, :, None] * np.maximum(0, epochs - 4)
    noise_scale = 0.01 * (1 + is_qa)[:, None, None]
    curves = np.clip(curves + rng.normal(0, 1, curves.shape) * noise_scale, 0, 1)

    seconds_per_example = (
        2e-3
        * (mean_input_tokens[:, None] / 100) ** 0.8
        * (1 + 0.3 * rank * 5)[None, :] ** 0.5
        * (1 + 0.4 * mlp)[None, :]
        * (8 / batch_size)[None, :] ** 0.25
    )
    seconds = n_train[:, None] * seconds_per_example * 1.1  # + validation
    costs = seconds[:, :, None] * rng.lognormal(0, 0.05, (n_tasks, n_configs, max_epochs))

    best_epoch = np.argmax(curves, axis=2)
    best_val = np.take_along_axis(curves, best_epoch[:, :, None], axis=2)[:, :, 0]
    test_scores = np.clip(best_val + rng.normal(0, 0.015, best_val.shape), 0, 1)

    if missing_fraction > 0:
        cut = rng.random((n_tasks, n_configs)) < missing_fraction
        cut[:, 0] = False  # the default configuration is always run in full
        kept = rng.integers(0, max_epochs, size=(n_tasks, n_configs))
        for t, c in zip(*np.nonzero(cut)):
            curves[t, c, kept[t, c] :] = np.nan
            costs[t, c, kept[t, c] :] = np.nan
            test_scores[t, c] = np.nan

    task_info = {
        task: {
            "kind": "qa" if is_qa[t] else "classification",
            "metric": "exact_match" if is_qa[t] else "accuracy",
            "zero_shot_val": float(zero_shot[t]),
            "zero_shot_test": float(np.clip(zero_shot[t] + rng.normal(0, 0.015), 0, 1)),
            "simulated": True,
        }
        for t, task in enumerate(tasks)
    }
    return MetaDataset(tasks, configs, meta, curves, costs, test_scores, task_info)
