"""The compress step of `autofm tour`: a tiny parent, sorted, trained as a super-network for a
few seconds, searched, and its best half-size sub-network extracted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from autofm.compress.extraction import extract
from autofm.compress.importance import calibration_batches, sort_parent
from autofm.compress.objectives import Calibration
from autofm.compress.report import search_report
from autofm.compress.space import SubNetwork, count_parameters
from autofm.compress.subnet_search import search
from autofm.compress.supernet import SuperNetwork
from autofm.compress.training import SupernetTrainConfig, train_supernet
from autofm.core.tour import TourStep
from autofm.data.text import encode, split_tokens, stdlib_corpus
from autofm.lm.model import GPT, GPTConfig
from autofm.lm.training import TrainConfig, evaluate, train


def step(workdir: Path, seed: int) -> TourStep:
    """Pretrain a width-64 GPT briefly, sort it, sandwich-train it, search 16 sub-networks (KL to
    the parent vs parameters) and extract the best one with at most half the parameters."""
    train_tokens, valid_tokens = split_tokens(encode(stdlib_corpus(500_000)), 0.1)
    config = GPTConfig(width=64, depth=3, head_size=16, block_size=32, parametrization="sp")
    parent = GPT(config, seed=seed)
    train(parent, train_tokens, None, TrainConfig(lr=3e-3, batch_size=16, tokens=16 * 32 * 150))
    parent_loss = evaluate(parent, valid_tokens, 32)
    batches = calibration_batches(train_tokens, config.block_size, 4, seed=seed)
    gpt, layer_order, _ = sort_parent(parent.eval(), batches)
    supernet = SuperNetwork(gpt, layer_order)
    loop = TrainConfig(lr=1e-3, batch_size=16, tokens=16 * 32 * 60, seed=seed)
    train_supernet(supernet, train_tokens, None, SupernetTrainConfig("sandwich"), loop)
    supernet.eval()
    calibration = Calibration.from_tokens(supernet, train_tokens, 16)
    result = search(
        supernet,
        supernet.space("uniform"),
        method="random",
        n_trials=16,
        seed=seed,
        calibration=calibration,
        run_dir=workdir / "compress",
    )
    full = count_parameters(config, SubNetwork.full(config))
    chosen = result.best_under(params=0.5 * full)
    dense = extract(supernet, chosen.sub).eval()
    idx = torch.from_numpy(valid_tokens[: 4 * 32].reshape(4, 32).astype(np.int64))
    with torch.no_grad():
        equal = torch.allclose(dense(idx)[0], supernet(idx, chosen.sub)[0], atol=1e-5)
    chosen_loss = evaluate(dense, valid_tokens, 32)
    metrics = {
        "parent_params": full,
        "parent_val_loss": parent_loss,
        "chosen_params": dense.n_parameters(),
        "chosen_val_loss": chosen_loss,
        "chosen_kl": chosen.values["kl"],
        "front_size": len(result.front),
        "hypervolume": result.hypervolume,
        "extracted_equals_slice": bool(equal),
    }
    summary = (
        f"parent {full:,} params (val {parent_loss:.3f} nats/byte); best ≤ 50%: "
        f"{dense.n_parameters():,} params, val {chosen_loss:.3f}, KL {chosen.values['kl']:.3f}; "
        f"front {len(result.front)} of 16; extracted = slice: {equal}"
    )
    report = search_report([result.to_dict()], "compress")
    return TourStep("compress", summary, metrics, report)
