"""Hugging Face Llama directories: a parent read from a local `save_pretrained` directory
(`--model hf:PATH_OR_DIR`), a sorted super-network saved with its layer order, and a sub-network
extracted to a stand-alone `LlamaForCausalLM` whose logits equal the sliced super-network's.
Directories are written to a temporary folder and renamed into place, so nothing is ever half
written, and `transformers` loads them unchanged.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

from autofm.compress.hf_supernet import LlamaShape, LlamaSuperNetwork
from autofm.compress.space import SubNetwork
from autofm.core.errors import CheckpointError, DataNotFoundError, ValidationError
from autofm.core.io import atomic_write_json

COMPRESS_FILE = "autofm_compress.json"
SUPERNET_FILE = "autofm_supernet.json"
# tokenizer files of a parent directory, copied beside an extracted model so that it is usable
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer.model",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
)


def load_hf_parent(
    path: str | os.PathLike,
    *,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype = "auto",
) -> tuple[LlamaSuperNetwork, dict[str, Any]]:
    """The Llama model in a local `save_pretrained` directory (or a file inside it) as a
    super-network, and what is known about it: (supernet, info). `dtype` 'auto' keeps the
    precision the weights were saved in; a layer order saved beside the weights
    (`save_hf_supernet`) is restored."""
    directory = Path(path)
    if not directory.exists():
        raise DataNotFoundError(
            f"no Hugging Face model at {path}: the path does not exist (give a local directory "
            "written by save_pretrained, or a file inside it)"
        )
    if directory.is_file():
        directory = directory.parent
    config_path = directory / "config.json"
    if not config_path.is_file():
        raise DataNotFoundError(
            f"{directory} has no config.json, so it is not a Hugging Face model directory "
            "(save_pretrained writes one)"
        )
    raw = _read_json(config_path)
    model_type, architectures = raw.get("model_type"), raw.get("architectures") or []
    if model_type != "llama" or (architectures and "LlamaForCausalLM" not in architectures):
        got = ", ".join(map(str, architectures)) or f"model_type {model_type!r}"
        raise ValidationError(
            f"only Llama-family (LlamaForCausalLM) models are supported: got {got} in {directory}"
        )
    try:
        model = LlamaForCausalLM.from_pretrained(directory, dtype=dtype, local_files_only=True)
    except OSError as err:
        raise DataNotFoundError(f"cannot load the Llama weights in {directory}: {err}") from err
    except (ValueError, RuntimeError) as err:
        if isinstance(err, torch.cuda.OutOfMemoryError):
            raise
        reason = " ".join(str(err).split())  # one line, as the CLI prints it
        raise CheckpointError(
            f"the Llama model in {directory} does not load ({reason}); is it a complete "
            "save_pretrained directory whose weights match its config.json?"
        ) from err
    if device is not None:
        model.to(device)
    model.eval()
    supernet_info = None
    if (directory / SUPERNET_FILE).is_file():
        supernet_info = _read_json(directory / SUPERNET_FILE)
    layer_order = supernet_info.get("layer_order") if supernet_info else None
    supernet = LlamaSuperNetwork(model, layer_order)
    info = {
        "source": "hf",
        "path": str(directory),
        "shape": supernet.shape.to_dict(),
        "parameters": model.num_parameters(),
        "supernet": supernet_info,
    }
    return supernet, info


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ValidationError(f"cannot read {path} as JSON: {err}") from err
    if not isinstance(value, dict):
        raise ValidationError(f"{path} must hold a JSON object, got {type(value).__name__}")
    return value


def llama_sub_config(parent: LlamaConfig, sub: SubNetwork) -> LlamaConfig:
    """The `LlamaConfig` of the model `sub` extracts to; one `LlamaConfig` has one head count
    and one MLP width for all layers, so `sub` must keep the same in every kept layer."""
    shape = LlamaShape.from_config(parent)
    sub.check(shape)
    if len(set(sub.heads)) > 1 or len(set(sub.mlp)) > 1:
        raise ValidationError(
            f"a Hugging Face LlamaConfig has one head count and one MLP width for all layers, but "
            f"this sub-network keeps heads {list(sub.heads)} and MLP widths {list(sub.mlp)}: use "
            "a uniform search space for HF models (SearchSpace kind 'uniform')"
        )
    values = parent.to_dict()
    values.pop("_name_or_path", None)
    values.update(
        hidden_size=sub.embed,
        num_hidden_layers=len(sub.layers),
        num_attention_heads=sub.heads[0],
        num_key_value_heads=sub.heads[0] // shape.head_group,
        intermediate_size=sub.mlp[0],
        # kept explicitly: hidden_size / heads need not be the parent's head_dim any more
        head_dim=shape.head_size,
    )
    return LlamaConfig.from_dict(values)


def _sub_state_dict(parent: LlamaForCausalLM, sub: SubNetwork) -> dict[str, torch.Tensor]:
    """The weight slices `sub` uses, named as in the extracted model (views, no copies)."""
    shape = LlamaShape.from_config(parent.config)
    source, e = parent.state_dict(), sub.embed
    state = {name: source[name][:, :e] for name in ("model.embed_tokens.weight", "lm_head.weight")}
    state["model.norm.weight"] = source["model.norm.weight"][:e]
    for index, (layer, heads, mlp) in enumerate(zip(sub.layers, sub.heads, sub.mlp)):
        query = heads * shape.head_size
        key_value = heads // shape.head_group * shape.head_size
        # (rows, columns) kept of each weight; a bias keeps the rows
        kept = {
            "self_attn.q_proj": (query, e),
            "self_attn.k_proj": (key_value, e),
            "self_attn.v_proj": (key_value, e),
            "self_attn.o_proj": (e, query),
            "mlp.gate_proj": (mlp, e),
            "mlp.up_proj": (mlp, e),
            "mlp.down_proj": (e, mlp),
        }
        old, new = f"model.layers.{layer}.", f"model.layers.{index}."
        for name, (rows, columns) in kept.items():
            state[f"{new}{name}.weight"] = source[f"{old}{name}.weight"][:rows, :columns]
            if f"{old}{name}.bias" in source:
                state[f"{new}{name}.bias"] = source[f"{old}{name}.bias"][:rows]
        for norm in ("input_layernorm", "post_attention_layernorm"):
            state[f"{new}{norm}.weight"] = source[f"{old}{norm}.weight"][:e]
    return state


@torch.no_grad()
def extract_llama(
    supernet: LlamaSuperNetwork | LlamaForCausalLM,
    sub: SubNetwork,
    out_dir: str | os.PathLike | None = None,
    *,
    overwrite: bool = False,
) -> LlamaForCausalLM:
    """A stand-alone `LlamaForCausalLM` holding copies of the slices `sub` uses (the parent is
    untouched), on the parent's device and in its precision. With `out_dir`, also written there
    by `save_pretrained`, with the parent's tokenizer files and `autofm_compress.json` (parent,
    sub-network, parameter counts)."""
    parent = supernet.model if isinstance(supernet, LlamaSuperNetwork) else supernet
    config = llama_sub_config(parent.config, sub)
    reference = parent.lm_head.weight
    with torch.device(reference.device):
        model = AutoModelForCausalLM.from_config(config, dtype=reference.dtype)
    model.load_state_dict(_sub_state_dict(parent, sub), strict=True)
    model.generation_config = copy.deepcopy(parent.generation_config)
    model.train(parent.training)
    if out_dir is not None:
        save_extracted(out_dir, model, parent, sub, overwrite=overwrite)
    return model


def save_extracted(
    out_dir: str | os.PathLike,
    model: LlamaForCausalLM,
    parent: LlamaForCausalLM,
    sub: SubNetwork,
    info: dict[str, Any] | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Write a model cut from `parent` (extracted, pruned, possibly fine-tuned since) by
    `save_pretrained`, with the parent's tokenizer files and `autofm_compress.json`: the parent,
    the sub-network, parameter counts and `info` (e.g. how it was pruned and recovered)."""
    shape = LlamaShape.from_config(parent.config)
    summary = {
        "parent": {"path": parent.name_or_path or None, "shape": shape.to_dict()},
        "sub_network": sub.to_dict(),
        "parameters": model.num_parameters(),
        "parent_parameters": parent.num_parameters(),
        **(info or {}),
    }
    return _save_directory(out_dir, model, {COMPRESS_FILE: summary}, parent.name_or_path, overwrite)


def save_hf_supernet(
    out_dir: str | os.PathLike,
    supernet: LlamaSuperNetwork,
    supernet_info: dict[str, Any] | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Write a (sorted, trained) super-network as a `save_pretrained` directory plus
    `autofm_supernet.json` (layer order and `supernet_info`), which `load_hf_parent` restores."""
    info = {"layer_order": list(supernet.layer_order), **(supernet_info or {})}
    model = supernet.model
    return _save_directory(out_dir, model, {SUPERNET_FILE: info}, model.name_or_path, overwrite)


def _save_directory(
    out_dir: str | os.PathLike,
    model: LlamaForCausalLM,
    json_files: dict[str, Any],
    tokenizer_from: str | None,
    overwrite: bool,
) -> Path:
    """`save_pretrained` into a temporary folder beside `out_dir`, then rename it into place."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValidationError(f"{out_dir} is a file; give a folder for the Hugging Face model")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise ValidationError(
            f"{out_dir} already exists and is not empty; pick a new folder or pass overwrite"
        )
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    except OSError as err:
        raise ValidationError(
            f"cannot write to {out_dir.parent} ({err.strerror}); pick a writable folder"
        ) from err
    try:
        model.save_pretrained(staging)
        for name, content in json_files.items():
            atomic_write_json(staging / name, content)
        source = Path(tokenizer_from) if tokenizer_from else None
        if source is not None and source.is_dir():
            for name in TOKENIZER_FILES:
                if (source / name).is_file():
                    shutil.copy2(source / name, staging / name)
        _replace_directory(staging, out_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return out_dir


def _replace_directory(new: Path, target: Path) -> None:
    """Move `new` onto `target`; an old `target` is moved aside first and removed after."""
    if not target.exists():
        os.replace(new, target)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
    os.replace(target, aside / target.name)
    try:
        os.replace(new, target)
    except OSError:
        os.replace(aside / target.name, target)
        aside.rmdir()
        raise
    shutil.rmtree(aside)
