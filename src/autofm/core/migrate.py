"""Checkpoint JSON of format 1 → format 2 (the one layout every system shares since 0.1.0).

Format 1 kept the model config under `config` in four shapes, one per system. The weights file
is the same in both formats, so the sha256 still verifies and every output stays identical.
`read_checkpoint_meta` migrates in memory; `migrate_checkpoint_file(path)` rewrites a file.
"""

from __future__ import annotations

import json
import os
from typing import Any

from autofm.core.errors import CheckpointError
from autofm.core.io import atomic_write_json

_HOW = "re-save it with the autofm that wrote it, or retrain it"

# format 1 kept the training summary in the provenance; format 2 keeps it under "training"
# (its loop settings as "config", the steps done as "steps"): format-1 key → format-2 key
_TRAINING_KEYS = {
    "pfn": {
        "steps": "steps",
        "schedule": "schedule",
        "time_budget_seconds": "time_budget_seconds",
        "train_seconds": "train_seconds",
        "train_cpu_seconds": "train_cpu_seconds",
        "batch_size": "batch_size",
        "n_query": "n_query",
        "final_loss_mean_last_100": "final_loss_mean_last_100",
        "seed": "seed",
    },
    "gamformer": {
        "preset": "preset",
        "prior": "prior",
        "train_config": "config",
        "steps_done": "steps",
        "train_seconds": "train_seconds",
        "final_loss_mean_last_100": "final_loss_mean_last_100",
        "warm_start": "warm_start",
    },
    "mamba4cast": {
        "train": "config",
        "steps": "steps",
        "prior": "prior",
        "data": "data",
        "total_steps_all_phases": "total_steps_all_phases",
    },
}


def _model_layout(config: dict[str, Any], source: str) -> tuple[str, dict, dict, dict]:
    """(kind, model config, training summary, extra top-level entries) of a format-1 config."""
    if config.get("kind") == "gamformer":
        return "gamformer", {k: v for k, v in config.items() if k != "kind"}, {}, {}
    if config.get("kind") == "autofm.ensemble.NeuralEnsembler":
        model = {k: v for k, v in config.items() if k != "kind"}
        return "neural-ensembler", model, {}, {}
    if config.get("kind") == "tour":
        return "tour", {}, {}, {}
    if set(config) == {"pfn", "prior"}:
        return "pfn", config["pfn"], {"prior": config["prior"]}, {}
    if {"model", "tokenizer"} <= set(config) and "n_layers" not in config:
        return (
            "gpt",
            config["model"],
            config.get("training", {}),
            {"tokenizer": config["tokenizer"]},
        )
    if {"d_state", "headdim", "quantiles"} <= set(config):
        return "mamba4cast", dict(config), {}, {}
    raise CheckpointError(f"{source} is a format-1 checkpoint of an unknown kind; {_HOW}")


def migrate_meta(meta: dict[str, Any], source: str) -> dict[str, Any]:
    """The format-2 form of a format-1 checkpoint's JSON `meta` (read from `source`)."""
    from autofm.core.checkpoint import FORMAT_VERSION
    from autofm.core.provenance import portable_values

    config = meta.get("config")
    if not isinstance(config, dict):
        raise CheckpointError(f"{source} is not an autofm checkpoint (no config); {_HOW}")
    if {"model", "train", "step", "optimizer_param_groups"} <= set(config):
        # a run folder's resumable state: the model config is one of the layouts above
        kind, model, summary, extra = _model_layout(config["model"], source)
        contents = "training-state"
        training = {
            **summary,
            "config": config["train"],
            "step": config["step"],
            "optimizer_param_groups": config["optimizer_param_groups"],
        }
    else:
        kind, model, training, extra = _model_layout(config, source)
        training = dict(training)
        contents = "model"
    provenance = dict(meta.get("provenance", {}))
    if contents == "model":
        for old, new in _TRAINING_KEYS.get(kind, {}).items():
            if old in provenance:
                training[new] = provenance.pop(old)
    rest = {
        key: value
        for key, value in meta.items()
        if key not in ("config", "format_version", "provenance", "weights_file", "sha256")
        and key != "n_parameters"
    }
    return {
        "kind": kind,
        "format_version": FORMAT_VERSION,
        "contents": contents,
        "model": model,
        "training": training,
        "provenance": portable_values(provenance),
        **extra,
        **rest,
        "weights_file": meta.get("weights_file"),
        "sha256": meta["sha256"],
        "n_parameters": meta.get("n_parameters"),
    }


def migrate_checkpoint_file(path: str | os.PathLike) -> bool:
    """Rewrite a checkpoint's JSON in the current format (the weights file is untouched and its
    sha256 still verifies); False if it already was current."""
    from autofm.core.checkpoint import _stem, _with, read_checkpoint_meta

    meta_path = _with(_stem(path), ".json")
    if json.loads(meta_path.read_text()).get("format_version", 1) >= 2:
        return False
    atomic_write_json(meta_path, read_checkpoint_meta(path))
    return True
