"""Parents and super-networks on disk: a super-network is a GPT checkpoint (its weights sorted by
importance) whose JSON also holds the layer ranking and how it was sorted and trained, so it loads
with `autofm.lm.load_gpt` as an ordinary GPT too. A plain GPT checkpoint is a parent whose
layers keep their order.

Model specs on the command line: a shipped name or a checkpoint path (`autofm:` prefix optional).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from autofm.compress.supernet import SuperNetwork
from autofm.core.checkpoint import save_model
from autofm.core.errors import ValidationError
from autofm.lm.checkpoint import TOKENIZER, load_gpt


def parse_model_spec(spec: str | os.PathLike) -> tuple[str, str]:
    """('autofm', name_or_path) or ('hf', path) from a model spec."""
    text = str(spec)
    if text.startswith("hf:"):
        if not text[3:]:
            raise ValidationError("model spec 'hf:' needs a path: hf:PATH_OR_DIR")
        return "hf", text[3:]
    if text.startswith("autofm:"):
        text = text[len("autofm:") :]
    if not text:
        raise ValidationError("empty model spec; give a checkpoint name or path, or hf:DIR")
    return "autofm", text


def load_supernet(spec: str | os.PathLike) -> tuple[SuperNetwork, dict[str, Any]]:
    """The super-network (or plain parent) in an autofm GPT checkpoint: (supernet, meta)."""
    source, name = parse_model_spec(spec)
    if source != "autofm":
        raise ValidationError(
            f"{spec} is a Hugging Face model: load it with "
            "autofm.compress.hf_extract.load_hf_parent (the CLI does for hf: specs)"
        )
    gpt, meta = load_gpt(name)
    gpt.eval()
    layer_order = meta.get("supernet", {}).get("layer_order")
    return SuperNetwork(gpt, layer_order), meta


def save_supernet(
    path: str | os.PathLike,
    supernet: SuperNetwork,
    *,
    supernet_info: dict[str, Any],
    training: dict[str, Any] | None = None,
    provenance: dict[str, Any] | None = None,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write the super-network as a GPT checkpoint with a `supernet` entry (layer order plus
    `supernet_info`: how it was sorted and trained, from which parent, a searched front);
    `dtype` (e.g. torch.float16) stores the weights in that precision."""
    info = {"layer_order": list(supernet.layer_order), **supernet_info}
    return save_model(
        path,
        supernet.gpt,
        training=training,
        provenance=provenance,
        tokenizer=TOKENIZER,
        dtype=dtype,
        supernet=info,
    )
