"""A longer super-network stage (4M tokens instead of 1M) against the shipped one (issue #16).

    python -m benchmarks.compress --phase search --supernet-tokens 4000000 --threads 1
    python -m benchmarks.compress_longer [--threads 2] [--equal-total]

The shipped `gpt-parent-supernet` was sandwich-trained on 1M tokens (1/16 of the parent's
pretraining); with 1M recovery tokens its searched sub-networks beat every pruning baseline but
closed only 0.38 of the magnitude-pruning gap at 50% (target 0.5). The first thing the paper
would change is a longer super-network stage; this script judges one, 4× longer, with the same
recipe (the first command trains and searches it in runs/benchmarks/compress-4000000).

**Shipping rule, fixed before the 4M results existed**: the 4M super-network replaces the
shipped one if, at both 50% and 25% of the parent's parameters, the best point of its searched
front under that budget (chosen by the front's own objective, as `autofm compress extract`
does) has a lower KL to the *original parent* on the 16 calibration blocks of the training text
than the shipped front's point. (Each front's own objective is KL to its super-network's full
model, which drifts from the parent during training, so the two are re-measured against the
parent.) Nothing is decided on the held-out text.

Reported after the decision, on the held-out text of `benchmarks.compress` (bits per byte):
both super-networks' points as extracted and after the same 1M recovery tokens as the
baselines' (`benchmarks/results/compress.json` rows, 1M recovery), the gap to magnitude pruning
closed at 50%, and with `--equal-total` importance pruning with as many recovery tokens as the
4M stage plus recovery (5M; equal total tokens after the parent).
Writes benchmarks/results/compress.longer.{json,md}; rows cached in
runs/benchmarks/compress/longer.json.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from autofm.compress import SubNetwork, extract, importance_prune, load_supernet
from autofm.compress.importance import calibration_batches
from autofm.compress.objectives import Calibration, kl_to_parent
from autofm.core.checkpoint import sha256_file
from autofm.core.io import atomic_write_json
from autofm.core.pareto import best_under
from autofm.core.runtime import setup_torch
from autofm.data.text import load_corpus_split
from benchmarks.common import CACHE_DIR, RESULTS_DIR, markdown_table, save_results
from benchmarks.compress import (
    CALIBRATION_BLOCKS,
    CORPUS,
    FRACTIONS,
    VALID_FRACTION,
    Settings,
    hypervolume_table,
    json_or_empty,
    latency_phase,
    union_front,
)
from benchmarks.compress_recovery import recovered_row

SHIPPED = "gpt-parent-supernet"
LONGER_TOKENS = 4_000_000
LONGER = CACHE_DIR / f"compress-{LONGER_TOKENS}"
RECOVERY = 1_000_000


def fronts() -> dict[str, tuple[str, list[dict]]]:
    """Super-network checkpoint and front of each candidate."""
    _, meta = load_supernet(SHIPPED)
    if meta["supernet"]["supernet_tokens"] >= LONGER_TOKENS:
        raise SystemExit(
            f"{SHIPPED} is already the longer super-network (shipped by this script's rule on "
            "2026-12-02); to judge again, restore the 1M one from git (commit e01dcbe)"
        )
    searches = json.loads((LONGER / "search.json").read_text())
    longer = [
        {"sub_network": p["sub_network"], "objective": p["objective"], "params": p["params"]}
        for p in union_front(searches)
    ]
    return {
        "1M (shipped)": (SHIPPED, meta["supernet"]["front"]),
        "4M": (str(LONGER / "supernet"), longer),
    }


def decide(parent, train_tokens, candidates) -> dict:
    """The shipping rule: KL to the original parent of each front's point under each budget."""
    calibration = Calibration.from_tokens(parent, train_tokens, CALIBRATION_BLOCKS)
    full = parent.gpt.n_parameters()
    kl, chosen = {}, {}
    for name, (stem, front) in candidates.items():
        supernet, _ = load_supernet(stem)
        # through float16 as shipping stores it (the shipped one already is), then float32
        supernet.gpt.half().float()
        for fraction in FRACTIONS:
            index = best_under([(p["objective"], p["params"]) for p in front], fraction * full)
            sub = SubNetwork.from_dict(front[index]["sub_network"])
            chosen[name, fraction] = front[index]
            kl[name, fraction] = kl_to_parent(supernet, sub, calibration)
    ship = all(kl["4M", f] < kl["1M (shipped)", f] for f in FRACTIONS)
    return {
        "kl_to_parent": {f"{name} @ {fraction:.0%}": v for (name, fraction), v in kl.items()},
        "chosen": {f"{name} @ {fraction:.0%}": p for (name, fraction), p in chosen.items()},
        "ship_4M": ship,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--equal-total", action="store_true", help="also importance pruning with 5M tokens"
    )
    args = parser.parse_args()
    setup_torch(args.threads)
    torch.set_flush_denormal(True)
    run = Settings()
    cache = run.work / "longer.json"
    state = json_or_empty(cache) or {}
    train_tokens, valid_tokens = load_corpus_split(CORPUS, VALID_FRACTION)
    parent, _ = load_supernet(run.parent)
    parent.gpt.float()
    search = sha256_file(LONGER / "search.json")
    if state.get("search_sha256") != search:  # a cached decision is for one searched front
        state = {"search_sha256": search, "decision": decide(parent, train_tokens, fronts())}
        atomic_write_json(cache, state)
    print(json.dumps(state["decision"]["kl_to_parent"], indent=1), file=sys.stderr)
    print(f"ship the 4M super-network: {state['decision']['ship_4M']}", file=sys.stderr)

    rows = state.setdefault("rows", [])
    done = {(r["fraction"], r["method"]) for r in rows}
    batches = calibration_batches(train_tokens, parent.config.block_size, 10, seed=0)
    jobs = []
    stem = str(LONGER / "supernet")
    for fraction in FRACTIONS:
        point = state["decision"]["chosen"][f"4M @ {fraction:.0%}"]
        sub = SubNetwork.from_dict(point["sub_network"])
        jobs.append((fraction, "searched (4M super-network) + recovery", stem, sub, RECOVERY))
        if args.equal_total:
            jobs.append((fraction, "importance pruning, 5M recovery", None, None, 5 * RECOVERY))
    for fraction, method, stem, sub, tokens in jobs:
        if (fraction, method) in done:
            continue
        if sub is not None:
            supernet, _ = load_supernet(stem)
            supernet.gpt.half().float()  # as it would ship
            model = extract(supernet, sub)
        else:
            model = importance_prune(parent.gpt, batches, fraction)[0]
        rows.append(
            recovered_row(
                model, fraction, method, tokens, train_tokens, valid_tokens, run.eval_blocks
            )
        )
        atomic_write_json(cache, state)
        print(rows[-1], file=sys.stderr)

    if "latency" not in state:  # the 4M front's 50% point beside the parent (as in compress)
        searches = json.loads((LONGER / "search.json").read_text())
        state["latency"] = latency_phase(
            Settings(work=LONGER, supernet_tokens=LONGER_TOKENS), searches
        )
        atomic_write_json(cache, state)
    hypervolumes = hypervolume_table(json.loads((LONGER / "search.json").read_text()))
    earlier = json.loads((RESULTS_DIR / "compress.recovery.json").read_text())["rows"]
    baselines = json.loads((RESULTS_DIR / "compress.json").read_text())["compare"]
    bpb = {(r["fraction"], r["method"]): r["bpb"] for r in baselines["rows"]}
    gap = None
    searched = [r for r in rows if r["fraction"] == 0.5 and r["method"].startswith("searched")]
    if searched:  # of the gap between magnitude pruning (1M recovery) and the parent at 50%
        magnitude, parent_bpb = bpb[0.5, "magnitude pruning"], bpb[1.0, "parent"]
        gap = (magnitude - searched[0]["bpb"]) / (magnitude - parent_bpb)
    text = (
        "## A 4M-token super-network stage against the shipped 1M one (issue #16)\n\n"
        "Shipping rule (fixed before the results): KL to the original parent on 16 calibration "
        "blocks of the training text, of each front's point under the budget; ship the 4M "
        f"super-network if lower at both sizes. Verdict: **ship = {state['decision']['ship_4M']}**"
        "\n\n"
        + markdown_table(
            [{"point": k, "KL to parent": v} for k, v in state["decision"]["kl_to_parent"].items()],
            digits=4,
        )
        + "\n\nHeld-out bits per byte (after the decision; recovery lr 3e-4, seed 0):\n\n"
        + markdown_table(rows + [r for r in earlier if r["method"] == "searched + recovery"])
        + (f"\n\nGap to magnitude pruning closed at 50%: {gap:.3f}\n" if gap is not None else "\n")
        + "\nSearches on the 4M super-network (hypervolume against its own reference box; "
        "mean ± std over seeds):\n\n"
        + markdown_table(hypervolumes)
        + f"\n\nLatency of its 50% point: {json.dumps(state['latency'])}\n"
    )
    save_results(
        "compress.longer",
        {
            "decision": state["decision"],
            "rows": rows,
            "gap_closed_at_50": gap,
            "search_hypervolumes": hypervolumes,
            "latency": state["latency"],
            "baselines_1M": baselines["rows"],
        },
        text,
        [0],
    )


if __name__ == "__main__":
    main()
