"""Save and load GPTs through autofm.core's checkpoints (safetensors + JSON with the config and
the byte-level tokenizer settings), so a trained or grown model reloads exactly."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from autofm.core.checkpoint import (
    default_provenance,
    load_checkpoint,
    load_state_into,
    save_checkpoint,
)
from autofm.core.errors import CheckpointError, ValidationError
from autofm.data.text import VOCAB_SIZE
from autofm.lm.model import GPT, GPTConfig

TOKENIZER = {
    "kind": "bytes",
    "vocab_size": VOCAB_SIZE,
    "note": "one token per byte of the file; UTF-8 text is modelled byte by byte, any bytes work",
}


def save_model(
    path: str | os.PathLike, model: GPT, training: dict[str, Any] | None = None, **provenance: Any
) -> Path:
    """Write `path.safetensors` + `path.json` (model config, tokenizer, training summary)."""
    config = {"model": model.config.to_dict(), "tokenizer": TOKENIZER, "training": training or {}}
    return save_checkpoint(path, model, config, default_provenance(**provenance))


def load_model(path: str | os.PathLike) -> tuple[GPT, dict[str, Any]]:
    """Rebuild the GPT stored at `path` (a stem, or its .json/.safetensors); return (model, meta).

    Raises CheckpointError if the file is missing, tampered with, not a GPT checkpoint, or its
    weights do not match its config."""
    tensors, meta = load_checkpoint(path)
    stored = meta["config"]
    if not isinstance(stored, dict) or "model" not in stored:
        raise CheckpointError(f"{path} is not an autofm.lm checkpoint (no 'model' config in JSON)")
    tokenizer = stored.get("tokenizer", {})
    if tokenizer.get("kind") != TOKENIZER["kind"] or tokenizer.get("vocab_size") != VOCAB_SIZE:
        raise CheckpointError(
            f"{path} uses tokenizer {tokenizer!r}; autofm.lm reads byte-level checkpoints only"
        )
    try:
        config = GPTConfig.from_dict(stored["model"])
    except (TypeError, ValidationError) as err:
        raise CheckpointError(f"{path} holds an invalid GPT config: {err}") from err
    model = GPT(config, seed=0)
    load_state_into(model, tensors)
    return model, meta
