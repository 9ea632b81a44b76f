"""The Hugging Face branches of `autofm compress` (MODEL = hf:DIR, a Llama `save_pretrained`
folder saved with its tokenizer): text becomes tokens with the model's own tokenizer, blocks are
`--block-size` tokens long, the model runs on the GPU when there is one, and outputs are folders
that `transformers` loads unchanged. Imported by `autofm.compress.cli` for hf: models only, so
that the other commands never import `transformers`.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from autofm.compress.hf_extract import load_hf_parent, save_hf_supernet
from autofm.compress.hf_supernet import LlamaSuperNetwork, sort_llama
from autofm.compress.hf_text import (
    DEFAULT_BLOCK_SIZE,
    bits_per_byte,
    evaluation_text,
    load_tokenizer,
    token_split,
)
from autofm.compress.parent import parse_model_spec
from autofm.core.errors import ValidationError
from autofm.core.io import check_writable
from autofm.core.output import emit
from autofm.core.runtime import setup_torch

# why a command takes autofm GPT parents only: each trains the model
_TRAINING = {
    "supernet-train": "super-network training",
    "prune": "the baselines' recovery fine-tuning (as many tokens as super-network training)",
    "extract --recover-tokens": "recovery fine-tuning",
}


def refuse(command: str) -> NoReturn:
    """Raise the one-line error of a command that takes no hf: model yet."""
    raise ValidationError(
        f"`autofm compress {command}` supports autofm GPT parents only for now: "
        f"{_TRAINING[command]} of a Hugging Face model needs a GPU-scale run; importance, search, "
        "extract (without --recover-tokens) and eval take hf: models"
    )


def check_new_folder(path: str | os.PathLike) -> Path:
    """Refuse an output folder that exists and is not empty (nothing is overwritten), or that
    cannot be written; checked before any work."""
    folder = Path(path)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ValidationError(
            f"--out {folder} exists and is not an empty folder; give a new or empty folder for "
            "the Hugging Face model (nothing is overwritten)"
        )
    return check_writable(folder, "model folder", kind="folder")


def load_model(
    spec: str, *, with_tokenizer: bool = False, device: str | torch.device | None = None
) -> tuple[LlamaSuperNetwork, dict[str, Any], PreTrainedTokenizerBase | None]:
    """(super-network, info, tokenizer or None) of the model spec hf:DIR."""
    path = Path(parse_model_spec(spec)[1])
    directory = path.parent if path.is_file() else path
    tokenizer = None
    # checked before the (possibly large) weights load; a folder that holds no model at all
    # gets load_hf_parent's message instead
    if with_tokenizer and (directory / "config.json").is_file():
        tokenizer = load_tokenizer(directory)
    supernet, info = load_hf_parent(path, device=device)
    vocab_size = supernet.shape.vocab_size
    if tokenizer is not None and len(tokenizer) > vocab_size:
        raise ValidationError(
            f"the tokenizer in {directory} has {len(tokenizer)} tokens but the model's vocabulary "
            f"has {vocab_size}; save the tokenizer the model was trained with"
        )
    return supernet, info, tokenizer


def _load_with_text(
    args: argparse.Namespace, device: torch.device
) -> tuple[LlamaSuperNetwork, PreTrainedTokenizerBase]:
    """The super-network of args.model measuring at --block-size, and its tokenizer."""
    supernet, _, tokenizer = load_model(args.model, with_tokenizer=True, device=device)
    return _at_block_size(supernet, args.block_size), tokenizer


def _at_block_size(supernet: LlamaSuperNetwork, block_size: int | None) -> LlamaSuperNetwork:
    """`supernet` with its shape measuring (FLOPs, validation blocks) at a context of
    `block_size` tokens (default 256, or the model's context if shorter) rather than at
    max_position_embeddings, which for a Llama is far longer than a calibration block."""
    limit = supernet.model.config.max_position_embeddings
    if block_size is None:
        block_size = min(DEFAULT_BLOCK_SIZE, limit)
    if not 2 <= block_size <= limit:
        raise ValidationError(
            f"--block-size must be in 2..{limit} (the model's max_position_embeddings), "
            f"got {block_size}"
        )
    supernet.shape = replace(supernet.shape, block_size=block_size)
    return supernet


def importance(args: argparse.Namespace) -> None:
    """`importance hf:DIR`: sort the model by importance, save it to the --out folder."""
    from autofm.compress.importance import calibration_batches

    check_new_folder(args.out)
    supernet, tokenizer = _load_with_text(args, setup_torch())
    train_tokens, _ = token_split(tokenizer, args.data, args.valid_fraction)
    block_size = supernet.config.block_size
    batches = calibration_batches(train_tokens, block_size, args.batches, seed=args.seed)
    layer_order = sort_llama(supernet, batches, args.aggregation)
    info = {
        "parent": str(args.model),
        "sorted_by": {
            "aggregation": args.aggregation,
            "batches": args.batches,
            "block_size": block_size,
            "data": args.data,
        },
    }
    out = save_hf_supernet(args.out, LlamaSuperNetwork(supernet.model, layer_order), info)
    emit({"checkpoint": str(out), "layer_order": list(layer_order)}, args.json)


def search_inputs(
    args: argparse.Namespace, device: torch.device
) -> tuple[LlamaSuperNetwork, np.ndarray, np.ndarray]:
    """The super-network (at --block-size) and the training and validation tokens of `search`."""
    if args.space != "uniform":
        raise ValidationError(
            f"--space {args.space} is not available for hf: models: a Hugging Face LlamaConfig "
            "has one head count and one MLP width for all layers, so only sub-networks of the "
            "uniform space can be extracted; use --space uniform"
        )
    supernet, tokenizer = _load_with_text(args, device)
    return supernet, *token_split(tokenizer, args.data, args.valid_fraction)


def evaluate(args: argparse.Namespace) -> None:
    """`eval hf:DIR`: bits per byte, parameters, FLOPs per token and latency at --block-size."""
    from autofm.compress.objectives import measure_latency
    from autofm.compress.space import SubNetwork, count_flops

    supernet, tokenizer = _load_with_text(args, setup_torch(args.threads))
    text = evaluation_text(args.data)
    shape, model = supernet.config, supernet.model
    measured = bits_per_byte(model, tokenizer, text, shape.block_size, max_blocks=args.blocks)
    result = {
        "model": str(args.model),
        **measured,
        "params": model.num_parameters(),
        "flops": count_flops(shape, SubNetwork.full(shape)),  # per token
        "latency_ms": measure_latency(model, seq_len=shape.block_size),
        "block_size": shape.block_size,
    }
    emit(result, args.json)
