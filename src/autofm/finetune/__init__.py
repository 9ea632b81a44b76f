"""autofm.finetune: choose LoRA finetuning configurations for a new task with performance and
cost surrogates meta-learned on other tasks' finetuning runs (Transfer Learning for Finetuning
Large Language Models, arXiv:2411.01195, adapting Quick-Tune), and the meta-dataset they learn
from.

Names are imported lazily, so that `autofm --help` does not import torch, peft or gpytorch.
"""

import importlib

_EXPORTS = {
    "BuildSpec": "builder",
    "build_metadataset": "builder",
    "metadataset_from_study": "builder",
    "MetaDataset": "metadataset",
    "task_meta_features": "metafeatures",
    "QuickTuneOptimizer": "optimizer",
    "portfolio": "optimizer",
    "run_lodo": "lodo",
    "summarise": "lodo",
    "DEFAULT_CONFIG": "space",
    "FinetuneConfig": "space",
    "sample_configs": "space",
    "simulated_metadataset": "simulated",
    "CostSurrogate": "surrogates",
    "PerformanceSurrogate": "surrogates",
    "synthetic_qa_task": "synthetic_qa",
    "Task": "tasks",
    "classification_task": "tasks",
    "load_task_csv": "tasks",
    "LoraRun": "training",
    "evaluate": "training",
    "finetune": "training",
    "Tuner": "tuning",
    "load_tuner": "tuning",
    "meta_train": "tuning",
    "suggest": "tuning",
    "tune": "tuning",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'autofm.finetune' has no attribute {name!r}")
    return getattr(importlib.import_module(f"autofm.finetune.{_EXPORTS[name]}"), name)
