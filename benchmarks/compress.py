"""Compression benchmark: the shipped parent GPT, its super-network, search methods and baselines.

Phases (each cached under the git-ignored runs/benchmarks/compress, so a killed run resumes):
1. supernet: sort the parent by activation importance on calibration blocks of the training part
   of 'stdlib+text', then sandwich-train it (in-place distillation, calibrated sampling) for
   `supernet_tokens` of text (a fraction of the parent's pretraining tokens, reported).
2. search: NSGA-II, multi-objective TPE, random and local search, `n_trials` evaluations each, `seeds`
   seeds; KL to the parent on calibration blocks vs parameters and vs measured latency;
   hypervolume with one fixed
   reference point for all (1.1 × the smallest sub-network's KL, 1.1 × the parent's parameters).
3. compare: at 50% and 25% of the parent's parameters, bits per byte on validation text held
   apart from training (the last 5% of each source) of the best searched sub-network and of every
   baseline (magnitude / importance pruning, the unsorted leading slice = uniform shrink, and the
   same architecture from scratch), each after as many recovery fine-tuning tokens as the
   super-network stage read.
4. latency: the parent and the extracted 50% model side by side (median of warm forward passes,
   one thread, batch 1, full block).

    python -m benchmarks.compress [--phase supernet|search|all] [--threads 2]
    python -m benchmarks.compress --quick --parent STEM   # a dry run of every phase in minutes
    python -m benchmarks.compress --phase search --supernet-tokens 4000000
        # a longer super-network stage in its own cache folder (compress-4000000) and results
        # (compress.supernet4000000), never shipped from here: benchmarks.compress_longer decides
    python -m benchmarks.compress --phase search --parent gpt-parent-supernet --supernet-tokens 6000000
        # the shipped super-network trained on for 6M more tokens (not sorted again), in
        # compress-6000000-from-gpt-parent-supernet; benchmarks.compress_longer --stage decides
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from autofm.checkpoints.registry import main as update_registry
from autofm.compress import (
    SubNetwork,
    SupernetTrainConfig,
    extract,
    from_scratch,
    importance_prune,
    leading_prune,
    load_supernet,
    magnitude_prune,
    recover,
    save_supernet,
    sort_parent,
    sub_config,
    train_supernet,
)
from autofm.compress.importance import calibration_batches
from autofm.compress.objectives import Calibration, measure_latency
from autofm.compress.subnet_search import search
from autofm.core.io import atomic_write_json
from autofm.core.pareto import hypervolume_2d
from autofm.core.runtime import setup_torch
from autofm.data.text import load_corpus_split
from autofm.lm.training import TrainConfig, evaluate
from benchmarks.common import CACHE_DIR, markdown_table, save_results

CORPUS = "stdlib+text"
VALID_FRACTION = 0.05
METHODS = ("nsga2", "tpe", "random", "local")
FRACTIONS = (0.5, 0.25)
CALIBRATION_BLOCKS = 16
LATENCY = {"batch_size": 1, "repeats": 10, "warmup": 2, "threads": 1}


@dataclass(frozen=True)
class Settings:
    """Budgets of one benchmark run (`QUICK` is a dry run of every phase in minutes)."""

    parent: str = "gpt-parent"
    work: Path = CACHE_DIR / "compress"
    supernet_tokens: int = 1_000_000
    n_trials: int = 100
    seeds: tuple[int, ...] = (0, 1, 2)
    eval_blocks: int = 256


QUICK = dict(
    work=CACHE_DIR / "compress-quick",
    supernet_tokens=16_384,
    n_trials=8,
    seeds=(0,),
    eval_blocks=16,
)


def ship_parent(source: str, valid_tokens, eval_blocks: int) -> dict:
    """Write the pretrained parent `source` as the shipped `gpt-parent` checkpoint in half
    precision, after checking that it loads to the same validation loss within 0.1%."""
    from autofm.core.checkpoint import PACKAGE_CHECKPOINT_DIR
    from autofm.lm import load_gpt, save_gpt

    model, meta = load_gpt(source)
    model.eval()
    loss = evaluate(model, valid_tokens, eval_blocks)
    stem = PACKAGE_CHECKPOINT_DIR / "gpt-parent"
    training = {
        **meta["training"],
        "corpus": CORPUS,
        "validation": f"the last {VALID_FRACTION:.0%} of each source of {CORPUS}",
        "val_loss_nats_per_byte": loss,
        "val_bits_per_byte": loss / math.log(2),
    }
    provenance = {
        "pretraining_command": meta["provenance"].get("command"),
        "pretraining_git_commit": meta["provenance"].get("git_commit"),
        "python": sys.version.split()[0],
        "note": "weights stored in float16; they load to the float32 validation loss within 0.1%",
    }
    save_gpt(stem, model, training, dtype=torch.float16, **provenance)
    half, _ = load_gpt(stem)
    half_loss = evaluate(half.eval(), valid_tokens, eval_blocks)
    change = abs(half_loss - loss) / loss
    if change > 1e-3:
        raise SystemExit(f"float16 changes the loss by {change:.2%} (> 0.1%): ship float32")
    update_registry(["--update"])  # the shipped files changed on purpose
    return {"checkpoint": str(stem), "val_loss": loss, "half_val_loss": half_loss}


def supernet_phase(run: Settings, train_tokens) -> dict:
    """Sort and sandwich-train the parent (cached as a checkpoint in the work folder)."""
    stem = run.work / "supernet"
    if stem.with_suffix(".json").exists():
        print(f"reusing the trained super-network {stem}", file=sys.stderr)
        return load_supernet(stem)[1]["supernet"]
    supernet, meta = load_supernet(run.parent)
    earlier = meta.get("supernet")  # a trained super-network: continue it, already sorted
    stage_keys = ("parent", "parent_sha256", "parent_pretraining_tokens", "sort_seconds")
    stage_keys += ("supernet_tokens", "supernet_seconds")
    if earlier is not None and not all(key in earlier for key in stage_keys):
        raise SystemExit(
            f"{run.parent} is a super-network this benchmark did not train (no record of its "
            "stage): continue one made by benchmarks.compress, e.g. gpt-parent-supernet"
        )
    started = time.perf_counter()
    if earlier is None:
        batches = calibration_batches(train_tokens, supernet.config.block_size, 10, seed=0)
        gpt, layer_order, _ = sort_parent(supernet.gpt, batches)
        supernet = type(supernet)(gpt, layer_order)
    sort_seconds = time.perf_counter() - started
    config = SupernetTrainConfig("sandwich", distill=True, sampling="calibrated")
    loop = TrainConfig(
        lr=3e-4,
        batch_size=16,
        tokens=run.supernet_tokens,
        seed=0,
        grad_clip=1.0,
        checkpoint_every=50,
    )
    supernet.gpt.train()
    result = train_supernet(
        supernet, train_tokens, None, config, loop, run_dir=run.work / "supernet-run"
    )
    info = {
        "parent": run.parent,
        "parent_sha256": meta["sha256"],
        "sort_seconds": sort_seconds,
        "supernet_seconds": result.seconds,
        "supernet_tokens": result.tokens_seen,
        "parent_pretraining_tokens": meta["training"].get("tokens"),
        "strategy": config.to_dict(),
    }
    if earlier is not None:  # the whole stage: the earlier one's tokens and this one's
        info.update(
            parent=earlier["parent"],
            parent_sha256=earlier["parent_sha256"],
            parent_pretraining_tokens=earlier["parent_pretraining_tokens"],
            sort_seconds=earlier["sort_seconds"],
            continued_from={"checkpoint": run.parent, "sha256": meta["sha256"]},
            continued_tokens=result.tokens_seen,
            supernet_tokens=earlier["supernet_tokens"] + result.tokens_seen,
            supernet_seconds=earlier["supernet_seconds"] + result.seconds,
        )
    save_supernet(stem, supernet, supernet_info=info, training={"tokens": result.tokens_seen})
    return {**info, "layer_order": list(supernet.layer_order)}


def search_phase(run: Settings, train_tokens) -> list[dict]:
    """Every method × seed on KL vs parameters and on KL vs measured latency (the same trials
    and seeds; the 1M and 4M stages' latency searches ran the first seed at half the trials);
    hypervolumes against one fixed reference per size objective."""
    from autofm.compress.objectives import Evaluator

    supernet, _ = load_supernet(run.work / "supernet")
    calibration = Calibration.from_tokens(supernet, train_tokens, CALIBRATION_BLOCKS)
    space = supernet.space("uniform")
    evaluator = Evaluator(supernet, calibration, latency=LATENCY)
    # the reference: 1.1 × the smallest sub-network's KL and 1.1 × the parent's size, the same
    # for every method and seed
    smallest_kl = evaluator.value(space.smallest(), "kl")
    references = {
        "params": (1.1 * smallest_kl, 1.1 * evaluator.value(space.largest(), "params")),
        "latency_ms": (1.1 * smallest_kl, 1.1 * evaluator.value(space.largest(), "latency_ms")),
    }
    runs = [(size, seed, run.n_trials) for size in references for seed in run.seeds]
    results = []
    for size, seed, n_trials in runs:
        for method in METHODS:
            started = time.perf_counter()
            result = search(
                supernet,
                space,
                objectives=("kl", size),
                method=method,
                n_trials=n_trials,
                seed=seed,
                calibration=calibration,
                latency=LATENCY if size == "latency_ms" else None,
                run_dir=run.work / "search",
                reference=references[size],
            )
            reference = references[size]
            summary = result.to_dict()
            summary.update(
                seed=seed,
                size=size,
                seconds=time.perf_counter() - started,
                fixed_reference=list(reference),
                # normalised by the reference box, so 1 would be a point at zero cost and KL
                fixed_hypervolume=result.hypervolume / (reference[0] * reference[1]),
            )
            results.append(summary)
            print(
                f"{method:>7} {size} seed {seed}: HV {summary['fixed_hypervolume']:.4f}",
                file=sys.stderr,
            )
    atomic_write_json(run.work / "search.json", results)
    return results


def union_front(searches: list[dict], size: str = "params") -> list[dict]:
    """The non-dominated points (KL vs `size`) of every search on that size, by size."""
    from autofm.core.pareto import pareto_mask

    points = {
        json.dumps(p["sub_network"], sort_keys=True): p
        for s in searches
        if s["size"] == size
        for p in s["front"]
    }
    union = list(points.values())
    keep = pareto_mask([(p["objective"], p[size]) for p in union])
    return sorted((p for p, k in zip(union, keep) if k), key=lambda p: p[size])


def ship_supernet(run: Settings, searches: list[dict]) -> dict:
    """Ship the trained super-network beside the parent as `gpt-parent-supernet` (float16), with
    the non-dominated union of every search's front, so `autofm compress extract gpt-parent
    --params-fraction F` needs no search."""
    from autofm.core.checkpoint import PACKAGE_CHECKPOINT_DIR

    supernet, meta = load_supernet(run.work / "supernet")
    front = union_front(searches)
    info = {key: value for key, value in meta["supernet"].items() if key != "layer_order"}
    info["front"] = [
        {"sub_network": p["sub_network"], "objective": p["objective"], "params": p["params"]}
        for p in front
    ]
    info["front_note"] = (
        "objective = KL to the parent (nats per byte position) on 16 calibration blocks of the "
        f"training text; union of {sum(s['size'] == 'params' for s in searches)} searches' "
        "fronts (KL vs parameters)"
    )
    stem = PACKAGE_CHECKPOINT_DIR / f"{run.parent}-supernet"
    save_supernet(
        stem, supernet, supernet_info=info, training=meta["training"], dtype=torch.float16
    )
    update_registry(["--update"])  # the shipped files changed on purpose
    return {"checkpoint": str(stem), "front_points": len(front)}


def hf_phase(run: Settings) -> dict:
    """The whole pipeline once on a random tiny Llama through the command line (the hf: path;
    no quality claim): importance, search, extract, reload, eval."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from autofm.cli import main as autofm
    from autofm.compress.hf_text import train_byte_bpe
    from autofm.data.text import stdlib_corpus

    folder = run.work / "hf"
    text = stdlib_corpus(300_000).decode("utf-8", errors="replace")
    tokenizer = train_byte_bpe(text, 512)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=4,
        num_attention_heads=8,
        num_key_value_heads=2,
        max_position_embeddings=128,
    )
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
    LlamaForCausalLM(config).save_pretrained(folder / "parent")
    tokenizer.save_pretrained(folder / "parent")
    (folder / "text.txt").write_text(text, encoding="utf-8")
    data = ["--data", str(folder / "text.txt"), "--block-size", "64"]
    steps = {
        "importance": ["importance", f"hf:{folder / 'parent'}", *data, "--out", str(folder / "s")],
        "search": [
            "search",
            f"hf:{folder / 's'}",
            *data,
            "--method",
            "nsga2",
            "--trials",
            "30",
            "--run-dir",
            str(folder / "study"),
            "--out",
            str(folder / "front.json"),
        ],  # fmt: skip
        "extract": [
            "extract",
            f"hf:{folder / 's'}",
            "--front",
            str(folder / "front.json"),
            "--params-fraction",
            "0.5",
            "--out",
            str(folder / "half"),
        ],  # fmt: skip
        "eval": ["eval", f"hf:{folder / 'half'}", *data],
    }
    seconds = {}
    for name, args in steps.items():
        started = time.perf_counter()
        if autofm(["compress", *args, "--quiet"]) != 0:
            raise SystemExit(f"the hf pipeline failed at {name}")
        seconds[name] = time.perf_counter() - started
    reloaded = LlamaForCausalLM.from_pretrained(folder / "half")
    return {
        "parent_params": LlamaForCausalLM(config).num_parameters(),
        "extracted_params": reloaded.num_parameters(),
        "extracted_config": {
            k: getattr(reloaded.config, k)
            for k in (
                "hidden_size",
                "num_hidden_layers",
                "num_attention_heads",
                "num_key_value_heads",
                "intermediate_size",
            )
        },  # fmt: skip
        "seconds": seconds,
    }


def compare_phase(run: Settings, train_tokens, valid_tokens, searches: list[dict]) -> dict:
    """Bits per byte at 50% and 25% of the parent's parameters: the best searched sub-network
    (lowest KL on the union front under the budget; it had the super-network stage) and every
    baseline after as many recovery tokens as that stage read; plus the union front in bits per
    byte. Rows are cached with the settings that made them."""
    cache = run.work / "compare.json"
    settings = {"recovery_tokens": run.supernet_tokens, "eval_blocks": run.eval_blocks}
    stored = json_or_empty(cache)
    rows = stored["rows"] if stored and stored.get("settings") == settings else []
    supernet, _ = load_supernet(run.work / "supernet")
    supernet.eval()
    parent, _ = load_supernet(run.parent)
    full = parent.gpt.n_parameters()
    batches = calibration_batches(train_tokens, parent.config.block_size, 10, seed=0)
    front = union_front(searches)
    done = {(r["fraction"], r["method"]) for r in rows}
    for fraction in FRACTIONS:
        fitting = [p for p in front if p["params"] <= fraction * full]
        best = min(fitting, key=lambda p: p["objective"])
        sub = SubNetwork.from_dict(best["sub_network"])
        candidates = {
            "magnitude pruning": lambda f=fraction: magnitude_prune(parent.gpt, f),
            "importance pruning": lambda f=fraction: importance_prune(parent.gpt, batches, f),
            "uniform shrink (unsorted)": lambda f=fraction: leading_prune(parent.gpt, f),
            "from scratch": lambda s=sub: from_scratch(sub_config(parent.config, s), seed=0),
        }
        if (fraction, "searched (super-network)") not in done:
            model = extract(supernet, sub).eval()
            bpb = evaluate(model, valid_tokens, run.eval_blocks) / math.log(2)
            rows.append(_row(fraction, "searched (super-network)", model, None, bpb, run))
        for method, make in candidates.items():
            if (fraction, method) in done:
                continue
            model, _ = make()
            before = evaluate(model, valid_tokens, run.eval_blocks) / math.log(2)
            model, _ = recover(
                model.train(), train_tokens, valid_tokens, run.supernet_tokens, lr=3e-4, seed=0
            )
            bpb = evaluate(model.eval(), valid_tokens, run.eval_blocks) / math.log(2)
            rows.append(_row(fraction, method, model, before, bpb, run))
            atomic_write_json(cache, {"settings": settings, "rows": rows})
            print(rows[-1], file=sys.stderr)
    parent_bpb = evaluate(parent.gpt.eval(), valid_tokens, run.eval_blocks) / math.log(2)
    table = [*rows, {"fraction": 1.0, "method": "parent", "params": full, "bpb": parent_bpb}]
    by = {(r["fraction"], r["method"]): r["bpb"] for r in table}
    searched, magnitude = by[(0.5, "searched (super-network)")], by[(0.5, "magnitude pruning")]
    gap_closed = (magnitude - searched) / (magnitude - parent_bpb)
    front_bpb = [
        {
            "params": p["params"],
            "kl": p["objective"],
            "bpb": evaluate(
                extract(supernet, SubNetwork.from_dict(p["sub_network"])).eval(),
                valid_tokens,
                min(64, run.eval_blocks),
            )
            / math.log(2),
        }
        for p in front
    ]
    return {"rows": table, "gap_closed_at_50": gap_closed, "front_bpb": front_bpb}


def _row(fraction, method, model, before, bpb, run) -> dict:
    return {
        "fraction": fraction,
        "method": method,
        "params": model.n_parameters(),
        "tokens_after_parent": run.supernet_tokens,  # super-network stage or recovery
        "bpb_before_recovery": before,
        "bpb": bpb,
    }


def latency_phase(run: Settings, searches: list[dict]) -> dict:
    supernet, _ = load_supernet(run.work / "supernet")
    parent, _ = load_supernet(run.parent)
    full = parent.gpt.n_parameters()
    front = union_front(searches)
    best = min((p for p in front if p["params"] <= 0.5 * full), key=lambda p: p["objective"])
    small = extract(supernet, SubNetwork.from_dict(best["sub_network"])).eval()
    timings = {"parent_ms": [], "half_ms": []}
    for _ in range(3):  # alternate, so both see the same machine load
        timings["parent_ms"].append(measure_latency(parent.gpt.eval(), repeats=20, threads=1))
        timings["half_ms"].append(measure_latency(small, repeats=20, threads=1))
    parent_ms, half_ms = (float(np.median(v)) for v in timings.values())
    return {
        "half_params": small.n_parameters(),
        "parent_ms": parent_ms,
        "half_ms": half_ms,
        "speedup": parent_ms / half_ms,
    }


def json_or_empty(path: Path):
    return json.loads(path.read_text()) if path.exists() else []


def bpb_hypervolume(search: dict, bpb_of: Callable[[dict], float], smallest_bpb: float) -> float:
    """A search's fixed-reference hypervolume with every front point's quality re-measured as
    held-out bits per byte (`bpb_of(sub_network dict)`): the fronts as the issue asks for them.
    The reference: 1.1 × the smallest sub-network's bits per byte and the search's own size
    reference (1.1 × the parent's parameters or latency); the points stay those the KL search
    found (points it kept that bits per byte dominates add nothing)."""
    reference = (1.1 * smallest_bpb, search["fixed_reference"][1])
    points = [(bpb_of(p["sub_network"]), p[search["size"]]) for p in search["front"]]
    return hypervolume_2d(points, reference) / (reference[0] * reference[1])


def hypervolume_table(
    searches: list[dict],
    value: Callable[[dict], float] = lambda search: search["fixed_hypervolume"],
    column: str = "hypervolume",
) -> list[dict]:
    """Rows per size objective and method: trials, seeds and the fixed-reference hypervolume
    (mean ± std over seeds); `value` of a search, under `column` (e.g. `bpb_hypervolume`)."""
    table = []
    for size in ("params", "latency_ms"):
        for method in METHODS:
            found = [s for s in searches if s["method"] == method and s["size"] == size]
            values = [value(s) for s in found]
            spread = f" ± {np.std(values, ddof=1):.4f}" if len(values) > 1 else ""
            table.append(
                {
                    "size objective": size,
                    "method": method,
                    "trials": found[0]["n_trials"] if found else 0,
                    "seeds": len(values),
                    column: f"{np.mean(values):.4f}{spread}",
                }
            )
    return table


def markdown(run: Settings, info: dict, searches, compare: dict, latency: dict) -> str:
    passes = info["strategy"]["random_samples"] + 2
    lines = ["### Super-network", ""]
    lines.append(
        f"Sorted in {info['sort_seconds']:.0f} s; sandwich-trained (in-place distillation, "
        f"calibrated sampling) on {info['supernet_tokens']:,} tokens of text, each step running "
        f"{passes} sub-networks (≈ {passes * info['supernet_tokens']:,} sub-network token passes), "
        f"in {info['supernet_seconds'] / 60:.0f} min; the parent's pretraining read "
        f"{info['parent_pretraining_tokens'] or 0:,} tokens."
    )
    lines += [
        "",
        "### Search: hypervolume of the front (KL to the parent vs size), fixed reference, "
        "normalised by the reference box; mean ± std over seeds",
        "",
    ]
    lines.append(markdown_table(hypervolume_table(searches)))
    lines += [
        "### Bits per byte on held-out text at matched parameter counts",
        "",
        "Baselines get as many recovery tokens as the super-network stage read.",
        "",
        markdown_table(
            compare["rows"],
            ["fraction", "method", "params", "tokens_after_parent", "bpb_before_recovery", "bpb"],
        ),
        f"Share of the gap between magnitude pruning and the parent closed by the searched "
        f"sub-network at 50%: {compare['gap_closed_at_50']:.2f} (target ≥ 0.5).",
        "",
        "Union front in bits per byte (held-out text):",
        "",
        markdown_table(compare["front_bpb"]),
        "### Latency (one thread, batch 1, full block; alternated, median of 3 × 20 passes)",
        "",
        markdown_table([latency]),
    ]
    return "\n".join(lines)


def _hf_markdown(hf: dict) -> str:
    seconds = ", ".join(f"{k} {v:.1f} s" for k, v in hf["seconds"].items())
    return (
        "\n### The Hugging Face path, end to end on a random tiny Llama (no quality claim)\n\n"
        f"{hf['parent_params']:,} → {hf['extracted_params']:,} parameters "
        f"({hf['extracted_config']}); {seconds}.\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--phase", default="all", help="ship-parent (with --parent STEM), supernet, search or all"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--parent", default=Settings.parent, help="parent checkpoint")
    parser.add_argument(
        "--quick", action="store_true", help="tiny budgets and its own cache folder (a dry run)"
    )
    parser.add_argument(
        "--supernet-tokens",
        type=int,
        default=None,
        help="super-network stage length (default 1M; another length caches in its own "
        "folder); with --parent a trained super-network, the tokens added to its stage",
    )
    parser.add_argument(
        "--no-ship", action="store_true", help="do not ship the searched super-network"
    )
    args = parser.parse_args()
    if args.quick and args.supernet_tokens:
        parser.error("--quick has its own budgets; leave out --supernet-tokens")
    budgets = dict(QUICK) if args.quick else {}
    results_name = "compress"
    other_length = args.supernet_tokens and args.supernet_tokens != Settings.supernet_tokens
    if args.quick and args.parent != Settings.parent:  # a dry run of that parent, apart
        budgets["work"] = CACHE_DIR / f"compress-quick-from-{Path(args.parent).name}"
    # a trained super-network as --parent: its stage continued (an experiment too)
    continued = args.parent != Settings.parent and "supernet" in load_supernet(args.parent)[1]
    if continued and not args.quick and args.phase not in ("supernet", "search"):
        parser.error(
            "a super-network --parent is trained on and searched here (--phase supernet or "
            "search) and judged by benchmarks.compress_longer; the baselines prune gpt-parent"
        )
    if (other_length or continued) and not args.quick:  # its own folder and results, not shipped
        name = f"{args.supernet_tokens or Settings.supernet_tokens}"
        name += f"-from-{Path(args.parent).name}" if continued else ""
        budgets.update(
            supernet_tokens=args.supernet_tokens or Settings.supernet_tokens,
            work=CACHE_DIR / f"compress-{name}",
        )
        results_name = f"compress.supernet{name}"
        args.no_ship = True
    run = Settings(parent=args.parent, **budgets)
    setup_torch(args.threads)
    torch.set_flush_denormal(True)
    run.work.mkdir(parents=True, exist_ok=True)
    train_tokens, valid_tokens = load_corpus_split(CORPUS, VALID_FRACTION)
    print(f"seeds {run.seeds}; {len(train_tokens):,} training tokens", file=sys.stderr)
    if args.phase == "ship-parent":
        print(ship_parent(run.parent, valid_tokens, run.eval_blocks))
        return
    info = supernet_phase(run, train_tokens)
    if args.phase == "supernet":
        return
    searches = json_or_empty(run.work / "search.json") or search_phase(run, train_tokens)
    if not (args.quick or args.no_ship):
        print(ship_supernet(run, searches), file=sys.stderr)
    if args.phase == "search":
        return
    compare = compare_phase(run, train_tokens, valid_tokens, searches)
    latency = latency_phase(run, searches)
    hf = hf_phase(run)
    results = {
        "supernet": info,
        "search": searches,
        "compare": compare,
        "latency": latency,
        "hf_tiny_llama": hf,
    }
    text = markdown(run, info, searches, compare, latency) + _hf_markdown(hf)
    if args.quick:
        print(text)
        return
    save_results(results_name, results, text, run.seeds)


if __name__ == "__main__":
    main()
