"""autofm.finetune: choose LoRA finetuning configurations for a new task with performance and
cost surrogates meta-learned on other tasks' finetuning runs (Transfer Learning for Finetuning
Large Language Models, arXiv:2411.01195, adapting Quick-Tune), and the meta-dataset they learn
from.

Names are imported lazily, so that `autofm --help` does not import torch, peft or gpytorch.
"""

from autofm.core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    "autofm.finetune",
    {
        "builder": ["BuildSpec", "build_metadataset", "metadataset_from_study"],
        "metadataset": ["MetaDataset"],
        "metafeatures": ["task_meta_features"],
        "optimizer": ["QuickTuneOptimizer", "portfolio"],
        "lodo": ["run_lodo", "summarise"],
        "space": ["DEFAULT_CONFIG", "FinetuneConfig", "sample_configs"],
        "simulated": ["simulated_metadataset"],
        "surrogates": ["CostSurrogate", "PerformanceSurrogate"],
        "synthetic_qa": ["synthetic_qa_task"],
        "tasks": ["Task", "classification_task", "load_task_csv"],
        "training": ["LoraRun", "evaluate", "finetune"],
        "tuning": ["Tuner", "load_tuner", "meta_train", "suggest", "tune"],
    },
)
