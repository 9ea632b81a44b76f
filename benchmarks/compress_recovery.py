"""The searched sub-networks with recovery fine-tuning, against the pruning baselines (issue #16).

    python -m benchmarks.compress_recovery [--threads 2]

`benchmarks.compress` compared the searched sub-network *as extracted* (its only training after
the parent was the super-network stage, 1M tokens spread over 4 sub-networks a step) with
pruning baselines that each got 1M tokens of recovery fine-tuning on their one architecture.
The issue asks for "equal fine-tuning tokens", and the paper fine-tunes the extracted
sub-network, so this script adds, with the same protocol and the same held-out text:

* **searched + recovery**: the shipped super-network's best-KL front point under 50% / 25% of the
  parent's parameters (the rule of `benchmarks.compress`, nothing chosen on validation text),
  extracted (float32) and given the same 1M recovery tokens as the baselines (equal
  fine-tuning tokens; it also had the super-network stage, a one-off cost shared by every size);
* **importance / magnitude pruning with 2M recovery tokens**: the baselines at equal *total*
  tokens after the parent (super-network stage + recovery).

Fixed before the result: the searched sub-network "beats a baseline" when its bits per byte are
lower, compared at equal fine-tuning tokens (the issue's wording) and, separately reported, at
equal total tokens. Writes benchmarks/results/compress.recovery.{json,md}; rows cached in
runs/benchmarks/compress/recovery.json.
"""

from __future__ import annotations

import argparse
import math
import sys

import torch

from autofm.compress import (
    SubNetwork,
    extract,
    importance_prune,
    load_supernet,
    magnitude_prune,
    recover,
)
from autofm.compress.importance import calibration_batches
from autofm.core.io import atomic_write_json
from autofm.core.pareto import best_under
from autofm.core.runtime import setup_torch
from autofm.data.text import load_corpus_split
from autofm.lm.training import evaluate
from benchmarks.common import markdown_table, save_results
from benchmarks.compress import CORPUS, FRACTIONS, VALID_FRACTION, Settings, json_or_empty

SUPERNET = "gpt-parent-supernet"
RECOVERY = 1_000_000


def bits_per_byte(model, valid_tokens, blocks: int) -> float:
    return evaluate(model.eval(), valid_tokens, blocks) / math.log(2)


def recovered_row(
    model, fraction: float, method: str, tokens: int, train_tokens, valid_tokens, blocks: int
) -> dict:
    """Held-out bits per byte of `model` before and after `tokens` of recovery fine-tuning
    (lr 3e-4, seed 0: the protocol of every compression comparison)."""
    before = bits_per_byte(model, valid_tokens, blocks)
    model, _ = recover(model.train(), train_tokens, valid_tokens, tokens, lr=3e-4, seed=0)
    return {
        "fraction": fraction,
        "method": method,
        "params": model.n_parameters(),
        "recovery_tokens": tokens,
        "bpb_before_recovery": before,
        "bpb": bits_per_byte(model, valid_tokens, blocks),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    setup_torch(args.threads)
    torch.set_flush_denormal(True)
    run = Settings()
    cache = run.work / "recovery.json"
    run.work.mkdir(parents=True, exist_ok=True)
    rows = (json_or_empty(cache) or {}).get("rows", [])
    done = {(r["fraction"], r["method"]) for r in rows}
    train_tokens, valid_tokens = load_corpus_split(CORPUS, VALID_FRACTION)
    supernet, meta = load_supernet(SUPERNET)
    supernet.gpt.float()
    parent, _ = load_supernet(run.parent)
    full = parent.gpt.n_parameters()
    front = meta["supernet"]["front"]
    batches = calibration_batches(train_tokens, parent.config.block_size, 10, seed=0)
    jobs = []
    for fraction in FRACTIONS:
        best = front[best_under([(p["objective"], p["params"]) for p in front], fraction * full)]
        sub = SubNetwork.from_dict(best["sub_network"])
        jobs += [
            (fraction, "searched + recovery", lambda s=sub: extract(supernet, s), RECOVERY),
            (
                fraction,
                "importance pruning, 2× recovery",
                lambda f=fraction: importance_prune(parent.gpt, batches, f)[0],
                2 * RECOVERY,
            ),
            (
                fraction,
                "magnitude pruning, 2× recovery",
                lambda f=fraction: magnitude_prune(parent.gpt, f)[0],
                2 * RECOVERY,
            ),
        ]
    for fraction, method, make, tokens in jobs:
        if (fraction, method) in done:
            continue
        rows.append(
            recovered_row(
                make(), fraction, method, tokens, train_tokens, valid_tokens, run.eval_blocks
            )
        )
        atomic_write_json(cache, {"rows": rows})
        print(rows[-1], file=sys.stderr)
    text = (
        "## Searched sub-networks with recovery fine-tuning (issue #16)\n\n"
        f"Shipped `{SUPERNET}` (its best-KL front point under each budget), recovery lr 3e-4, "
        f"seed 0; bits per byte on {run.eval_blocks} held-out blocks (the protocol of "
        "benchmarks/results/compress.md, whose rows without these are the 1M-token baselines).\n\n"
        + markdown_table(rows)
    )
    save_results("compress.recovery", {"rows": rows, "parent_params": full}, text, [0])


if __name__ == "__main__":
    main()
