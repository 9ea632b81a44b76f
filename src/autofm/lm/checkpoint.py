"""Save and load GPTs through autofm.core's checkpoints (safetensors + JSON with the config and
the byte-level tokenizer settings), so a trained or grown model reloads exactly."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from autofm.core.checkpoint import load_model
from autofm.core.checkpoint import save_model as save_checkpoint_model
from autofm.core.errors import CheckpointError
from autofm.data.text import VOCAB_SIZE
from autofm.lm.model import GPT, GPTConfig

TOKENIZER = {
    "kind": "bytes",
    "vocab_size": VOCAB_SIZE,
    "note": "one token per byte of the file; UTF-8 text is modelled byte by byte, any bytes work",
}


def save_gpt(
    path: str | os.PathLike,
    model: GPT,
    training: dict[str, Any] | None = None,
    dtype: torch.dtype | None = None,
    **provenance: Any,
) -> Path:
    """Write `path.safetensors` + `path.json` (model config, tokenizer, training summary);
    `dtype` (e.g. torch.float16) stores the weights in that precision."""
    return save_checkpoint_model(
        path, model, training=training, provenance=provenance, tokenizer=TOKENIZER, dtype=dtype
    )


def build_gpt(config: dict[str, Any], source: str) -> GPT:
    """An untrained GPT of the architecture in a checkpoint's `model` config."""
    return GPT(GPTConfig.from_dict(config, source=source), seed=0)


def load_gpt(path: str | os.PathLike) -> tuple[GPT, dict[str, Any]]:
    """Rebuild the GPT stored at `path` (a stem, its .json/.safetensors, or a shipped name);
    return (model, meta).

    Raises CheckpointError if the file is missing, tampered with, not a GPT checkpoint, uses
    another tokenizer, or its weights do not match its config."""
    model, meta = load_model(path, kind=GPT.checkpoint_kind, build=build_gpt)
    tokenizer = meta.get("tokenizer", {})
    if tokenizer.get("kind") != TOKENIZER["kind"] or tokenizer.get("vocab_size") != VOCAB_SIZE:
        raise CheckpointError(
            f"{path} uses tokenizer {tokenizer!r}; autofm.lm reads byte-level checkpoints only"
        )
    model.train()  # a GPT is loaded to be trained on or grown; call .eval() to sample
    return model, meta
