"""The Hugging Face branches of `autofm compress` (MODEL = hf:DIR, a Llama `save_pretrained`
folder saved with its tokenizer): text becomes tokens with the model's own tokenizer, blocks are
`--block-size` tokens long, the model runs on the GPU when there is one, and outputs are folders
that `transformers` loads unchanged. Training (super-network training, recovery fine-tuning)
runs `autofm.lm`'s loop in float32; the result is saved in the precision the model was loaded
in. Imported by `autofm.compress.cli` for hf: models only, so that the other commands never
import `transformers`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from autofm.compress.hf_extract import (
    extract_llama,
    load_hf_parent,
    save_extracted,
    save_hf_supernet,
)
from autofm.compress.hf_supernet import LlamaShape, LlamaSuperNetwork, LlamaTrainee, sort_llama
from autofm.compress.hf_text import (
    DEFAULT_BLOCK_SIZE,
    bits_per_byte,
    evaluation_text,
    load_tokenizer,
    token_split,
)
from autofm.compress.parent import parse_model_spec
from autofm.core.config import as_json
from autofm.core.errors import ValidationError
from autofm.core.io import check_writable
from autofm.core.output import emit
from autofm.core.progress import status
from autofm.core.runtime import setup_torch


def check_new_folder(path: str | os.PathLike, *, unfinished_run: dict | None = None) -> bool:
    """Refuse an output folder that exists and is not empty (nothing is overwritten), or that
    cannot be written; checked before any work. A folder holding the output of an unfinished
    run of the same command (`unfinished_run`: the run's `run_identity`, which its
    `autofm_supernet.json` records with `complete: false`) may be replaced by the rerun that
    continues it: returns True for such a folder."""
    folder = Path(path)
    done = _written_by_run(folder, unfinished_run) if unfinished_run is not None else None
    if done is False:
        return True
    if done:
        raise ValidationError(
            f"--out {folder} already holds this run's finished super-network; nothing to do "
            "(give another --out and --run-dir to train again)"
        )
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ValidationError(
            f"--out {folder} exists and is not an empty folder; give a new or empty folder for "
            "the Hugging Face model (nothing is overwritten)"
        )
    check_writable(folder, "model folder", kind="folder")
    return False


def _written_by_run(folder: Path, run: dict) -> bool | None:
    """Whether the super-network in `folder` is complete, if the run `run` wrote it (else
    None)."""
    from autofm.compress.hf_extract import SUPERNET_FILE

    try:
        trained = json.loads((folder / SUPERNET_FILE).read_text(encoding="utf-8"))["trained"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if trained.get("run") != run or not isinstance(trained.get("complete"), bool):
        return None
    return trained["complete"]


def run_identity(args: argparse.Namespace, inputs: dict, config, loop) -> dict[str, Any]:
    """What makes a `supernet-train` rerun the same run: its `inputs` (`supernet_identity`),
    run folder and every training setting but the time budget and threads (JSON-comparable)."""
    ignored = ("max_seconds", "threads")
    settings = {k: v for k, v in dataclasses.asdict(loop).items() if k not in ignored}
    run = {
        **inputs,
        "run_dir": str(Path(args.run_dir).resolve()),
        "supernet": config.to_dict(),
        "loop": settings,
    }
    return as_json(run)


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


def supernet_train(args: argparse.Namespace) -> None:
    """`supernet-train hf:DIR`: train the model as a super-network of the uniform space (the
    one a Llama sub-network is extracted from), save it to the --out folder with its layer order
    and training summary."""
    from autofm.compress.cli import (
        note_if_unsorted,
        supernet_identity,
        supernet_settings,
        trained_info,
    )
    from autofm.compress.training import train_supernet, training_summary

    if args.space == "layerwise":
        raise ValidationError(
            "--space layerwise is not available for hf: models: a Hugging Face LlamaConfig has "
            "one head count and one MLP width for all layers; use --space uniform (the default)"
        )
    config, loop = supernet_settings(args, "uniform")
    inputs = supernet_identity(args)
    run = run_identity(args, inputs, config, loop) if args.run_dir is not None else None
    unfinished = check_new_folder(args.out, unfinished_run=run)
    supernet, info, tokenizer = load_model(
        args.model, with_tokenizer=True, device=setup_torch(args.threads)
    )
    supernet = _at_block_size(supernet, args.block_size)
    train_tokens, valid_tokens = token_split(tokenizer, args.data, args.valid_fraction)
    with _in_float32(supernet.model):
        result = train_supernet(
            supernet, train_tokens, valid_tokens, config, loop, args.run_dir, inputs
        )
    summary = {**training_summary(config, loop, result), "inputs": inputs}
    note_if_unsorted(info["supernet"], args.model)
    if run is not None:  # a rerun of the same command continues it (and replaces --out)
        summary.update(run=run, complete=result.complete)
    info = trained_info(info["supernet"], args.model, summary)
    out = save_hf_supernet(args.out, supernet, info, overwrite=unfinished)
    emit({"checkpoint": str(out), "complete": result.complete, **summary}, args.json)


def extract(args: argparse.Namespace, choose_sub: Callable) -> None:
    """`extract hf:DIR`: the sub-network `choose_sub(args, supernet, info)` as a stand-alone
    folder, after --recover-tokens of recovery fine-tuning on --data when asked."""
    check_new_folder(args.out)
    recovering = args.recover_tokens > 0
    supernet, info, tokenizer = load_model(
        args.model, with_tokenizer=recovering, device=setup_torch() if recovering else None
    )
    supernet = _at_block_size(supernet, args.block_size)  # a bad one fails before any work
    sub = choose_sub(args, supernet, info)
    tokens = None
    if recovering:  # bad --data fails before any work
        tokens = token_split(tokenizer, args.data, args.valid_fraction)
    model = extract_llama(supernet, sub)
    summary = {"extracted_from": str(args.model), **_recovered(model, supernet, tokens, args)}
    out = save_extracted(args.out, model, supernet.model, sub, summary)
    result = {"params": model.num_parameters(), "sub_network": sub.to_dict(), **summary}
    emit({"checkpoint": str(out), **result}, args.json)


def prune(args: argparse.Namespace) -> None:
    """`prune hf:DIR`: a pruning baseline at --params-fraction with --recover-tokens of recovery
    fine-tuning (the default as for a GPT), saved to the --out folder."""
    from autofm.compress.baselines import check_params_fraction
    from autofm.compress.hf_baselines import prune_llama
    from autofm.compress.importance import calibration_batches
    from autofm.compress.space import SubNetwork

    check_params_fraction(args.params_fraction)  # before the model loads
    check_new_folder(args.out)
    supernet, tokenizer = _load_with_text(args, setup_torch())
    tokens = token_split(tokenizer, args.data, args.valid_fraction)
    batches = None
    if args.method == "importance":
        batches = calibration_batches(tokens[0], supernet.config.block_size, seed=args.seed)
    model, info = prune_llama(supernet, args.method, args.params_fraction, batches)
    info = {"pruned_from": str(args.model), **info, **_recovered(model, supernet, tokens, args)}
    sub = SubNetwork.from_dict(info["sub_network"])
    out = save_extracted(args.out, model, supernet.model, sub, info)
    emit({"checkpoint": str(out), **info}, args.json)


def _recovered(
    model: torch.nn.Module,
    supernet: LlamaSuperNetwork,
    tokens: tuple[np.ndarray, np.ndarray] | None,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Recovery fine-tuning of `model` (in place) with args.recover_tokens of the training
    `tokens` at the super-network's block size, as every GPT baseline gets; what to record."""
    from autofm.compress.baselines import recover

    if not args.recover_tokens:
        return {"recover_tokens": 0}
    block_size = supernet.config.block_size
    for part, stream in zip(("training", "held-out"), tokens, strict=True):
        if len(stream) <= block_size + 1:  # checked before the fine-tuning starts
            raise ValidationError(
                f"the {part} part of --data {args.data} has {len(stream)} tokens; recovery "
                f"fine-tuning needs more than --block-size + 1 = {block_size + 1}"
            )
    status(f"recovery fine-tuning: {args.recover_tokens:,} tokens")
    shape = replace(LlamaShape.from_config(model.config), block_size=block_size)
    with _in_float32(model):
        _, val_loss = recover(
            LlamaTrainee(model, shape), *tokens, tokens=args.recover_tokens, lr=args.lr,
            seed=args.seed,
        )  # fmt: skip
    # nats per token of the model's tokenizer on the held-out part of --data
    return {
        "recover_tokens": args.recover_tokens,
        "recover_data": str(args.data),
        "block_size": block_size,
        "val_loss": val_loss,
    }


@contextlib.contextmanager
def _in_float32(model: torch.nn.Module) -> Iterator[None]:
    """Train `model` in float32 (AdamW on half-precision weights loses small updates) and put
    it back in its own precision, in eval mode, afterwards."""
    dtype = next(model.parameters()).dtype
    model.float().train()
    try:
        yield
    finally:
        model.to(dtype).eval()
