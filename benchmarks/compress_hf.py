"""compress on a Hugging Face Llama through the command line, training included: a small
`LlamaForCausalLM` (GQA, SwiGLU, RoPE; a byte-level BPE tokenizer trained here on standard-library
source) pretrained here on 'stdlib+text', then `importance` → `supernet-train` → `search` →
`extract --recover-tokens` against `prune --method magnitude|importance` with as many recovery
tokens as the super-network stage read (at the nominal fraction, and again at the searched
model's own size), every model measured by `eval` on the held-out text
(the last 5% of each source). It checks that the hf: path a user with real weights runs works end
to end and compares the methods on a model small enough for this CPU; it is not the paper's
scale, and no shipping decision rides on it.

Each step is cached under the git-ignored runs/benchmarks/compress-hf (pretraining resumes from
its run folder, a finished command's output is kept), so a killed run resumes.

    python -m benchmarks.compress_hf [--threads 1] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from autofm.cli import main as autofm
from autofm.core.runtime import setup_torch
from benchmarks.common import CACHE_DIR, markdown_table, save_results

CORPUS = "stdlib+text"
VALID_FRACTION = 0.05
FRACTIONS = (0.5, 0.25)
LLAMA = dict(
    hidden_size=128,
    intermediate_size=384,
    num_hidden_layers=4,
    num_attention_heads=8,
    num_key_value_heads=4,  # query groups of 2
    max_position_embeddings=256,
)


@dataclass(frozen=True)
class Settings:
    """Budgets of one run (`QUICK`: a dry run of every step in a few minutes)."""

    work: Path = CACHE_DIR / "compress-hf"
    vocab_size: int = 2048
    block_size: int = 128
    pretrain_tokens: int = 6_000_000
    supernet_tokens: int = 1_000_000  # also every model's recovery fine-tuning
    n_trials: int = 100
    eval_blocks: int = 256


QUICK = dict(
    work=CACHE_DIR / "compress-hf-quick",
    vocab_size=512,
    pretrain_tokens=40_000,
    supernet_tokens=8192,
    n_trials=8,
    eval_blocks=8,
)


def pretrain_parent(run: Settings, threads: int) -> dict:
    """The parent: a random Llama of `LLAMA`'s shape trained for `pretrain_tokens` by autofm.lm's
    loop (wsd schedule, resumable), saved with its tokenizer as a `save_pretrained` folder."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from autofm.compress.hf_supernet import LlamaShape, LlamaTrainee
    from autofm.compress.hf_text import token_split, train_byte_bpe
    from autofm.data.text import stdlib_corpus
    from autofm.lm.training import TrainConfig, train

    folder = run.work / "parent"
    summary_path = run.work / "pretrain.json"
    if summary_path.is_file() and folder.is_dir():
        return json.loads(summary_path.read_text())
    text = stdlib_corpus(3_000_000).decode("utf-8", errors="replace")
    tokenizer = train_byte_bpe(text, run.vocab_size)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), **LLAMA))
    train_tokens, valid_tokens = token_split(tokenizer, CORPUS, VALID_FRACTION)
    shape = replace(LlamaShape.from_config(model.config), block_size=run.block_size)
    config = TrainConfig(
        tokens=run.pretrain_tokens,
        lr=3e-3,
        batch_size=16,
        schedule="wsd",
        warmup_fraction=0.02,
        grad_clip=1.0,
        eval_every=200,
        threads=threads,
        checkpoint_every=100,
    )
    started = time.perf_counter()
    result = train(
        LlamaTrainee(model, shape), train_tokens, valid_tokens, config, run.work / "pretrain-run"
    )
    if not result.complete:
        raise SystemExit("pretraining stopped early (diverged or out of time)")
    model.eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    summary = {
        "parameters": model.num_parameters(),
        "config": {"vocab_size": len(tokenizer), **LLAMA},
        "training_tokens_available": len(train_tokens),
        "tokens": result.tokens_seen,
        "val_loss_nats_per_token": result.final_val_loss,
        "minutes_this_session": (time.perf_counter() - started) / 60,
    }
    summary_path.write_text(json.dumps(summary, indent=1))
    return summary


def cli(name: str, args: list[str], run: Settings) -> dict:
    """Run `autofm compress ARGS --json` once (its output is cached as NAME.json in the work
    folder) and return what it printed, with its wall-clock seconds."""
    cached = run.work / f"{name}.json"
    if cached.is_file():
        return json.loads(cached.read_text())
    if "--out" in args:  # written by a run killed before its result was cached: made again
        # (supernet-train's run folder still continues its training)
        shutil.rmtree(args[args.index("--out") + 1], ignore_errors=True)
    output = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(output):
        code = autofm(["compress", *args, "--json", "--quiet"])
    if code != 0:
        raise SystemExit(f"`autofm compress {' '.join(args)}` failed with exit code {code}")
    result = {**json.loads(output.getvalue()), "seconds": time.perf_counter() - started}
    cached.write_text(json.dumps(result, indent=1))
    return result


def pipeline(run: Settings, threads: int) -> dict:
    """Every command once: the searched models and the pruning baselines at each fraction."""
    work, tokens = run.work, str(run.supernet_tokens)
    data = ["--data", CORPUS, "--block-size", str(run.block_size)]
    seed = ["--seed", "0"]
    parent, sorted_, trained = (f"hf:{work / name}" for name in ("parent", "sorted", "trained"))
    steps = {
        "importance": cli("importance", ["importance", parent, *data, *seed,
                                         "--out", str(work / "sorted")], run),
        "supernet-train": cli("supernet-train", ["supernet-train", sorted_, *data, *seed,
                                                 "--tokens", tokens, "--threads", str(threads),
                                                 "--run-dir", str(work / "supernet-run"),
                                                 "--out", str(work / "trained")], run),
        "search": cli("search", ["search", trained, *data, *seed, "--trials", str(run.n_trials),
                                 "--calibration-blocks", "16", "--threads", str(threads),
                                 "--run-dir", str(work / "study"),
                                 "--out", str(work / "front.json")], run),
    }  # fmt: skip
    front = ["--front", str(work / "front.json")]
    models = {"parent": {"folder": work / "parent", "fraction": 1.0, "method": "parent"}}
    for fraction in FRACTIONS:
        budget = ["--params-fraction", str(fraction)]
        for key, method, command in (
            ("searched-as-is", "searched, as extracted", ["extract", trained, *front, *budget, "--recover-tokens", "0"]),
            ("searched", "searched + recovery", ["extract", trained, *front, *budget, "--recover-tokens", tokens, *data]),
            ("magnitude", "magnitude pruning + recovery", ["prune", parent, *budget, "--method", "magnitude", "--recover-tokens", tokens, *data]),
            ("importance", "importance pruning + recovery", ["prune", parent, *budget, "--method", "importance", "--recover-tokens", tokens, *data]),
        ):  # fmt: skip
            name = f"{key}-{fraction}"
            steps[name] = cli(name, [*command, *seed, "--out", str(work / name)], run)
            models[name] = {"folder": work / name, "fraction": fraction, "method": method}
        # the baselines again at the searched model's own size (the uniform-shrink grid's
        # nearest shape to the nominal fraction can be far from it on a model this small)
        searched = steps[f"searched-{fraction}"]
        matched = ["--params-fraction", f"{searched['params'] / parent_params(work):.6f}"]
        for method in ("magnitude", "importance"):
            name = f"{method}-matched-{fraction}"
            command = ["prune", parent, *matched, "--method", method, "--recover-tokens", tokens,
                       *data, *seed, "--out", str(work / name)]  # fmt: skip
            steps[name] = cli(name, command, run)
            label = f"{method} pruning + recovery, at the searched size"
            models[name] = {"folder": work / name, "fraction": fraction, "method": label}
    rows = []
    for name, model in models.items():
        measured = cli(f"eval-{name}", ["eval", f"hf:{model['folder']}", *data, "--blocks",
                                        str(run.eval_blocks), "--threads", str(threads)], run)  # fmt: skip
        rows.append(
            {
                "fraction": model["fraction"],
                "method": model["method"],
                "params": measured["params"],
                "bits_per_byte": measured["bits_per_byte"],
                "latency_ms": measured["latency_ms"],
                "recovery_tokens": steps.get(name, {}).get("recover_tokens", 0),
            }
        )
    return {"steps": steps, "rows": rows}


def parent_params(work: Path) -> int:
    return json.loads((work / "pretrain.json").read_text())["parameters"]


def gap_closed(rows: list[dict], fraction: float) -> float:
    """Share of the gap between magnitude pruning and the parent that the searched sub-network
    (with recovery) closes at `fraction`."""
    by = {(r["fraction"], r["method"]): r["bits_per_byte"] for r in rows}
    parent = by[(1.0, "parent")]
    magnitude = by[(fraction, "magnitude pruning + recovery")]
    return (magnitude - by[(fraction, "searched + recovery")]) / (magnitude - parent)


def markdown(run: Settings, pretrain: dict, result: dict) -> str:
    seconds = {k: v["seconds"] for k, v in result["steps"].items() if k in ("importance", "supernet-train", "search")}  # fmt: skip
    lines = [
        "# compress on a Hugging Face Llama, through the command line",
        "",
        f"Parent: `LlamaForCausalLM` {pretrain['config']}, {pretrain['parameters']:,} parameters, "
        f"pretrained here on {pretrain['tokens']:,} tokens of {CORPUS} (held-out loss "
        f"{pretrain['val_loss_nats_per_token']:.3f} nats per token). Super-network stage and "
        f"every model's recovery: {run.supernet_tokens:,} tokens; search: NSGA-II, "
        f"{run.n_trials} trials, KL vs parameters; blocks of {run.block_size} tokens. "
        "Bits per byte on the held-out 5% of each source "
        f"({run.eval_blocks} blocks at most); latency: `eval`'s (one forward pass of a block).",
        "",
        "Seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items()) + ".",
        "",
        markdown_table(result["rows"]),
        "",
        "Share of the magnitude-pruning gap closed by the searched sub-network (with recovery): "
        + ", ".join(f"{f:.0%}: {gap_closed(result['rows'], f):.2f}" for f in FRACTIONS)
        + ".",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="tiny budgets, own cache folder")
    args = parser.parse_args()
    run = Settings(**(QUICK if args.quick else {}))
    setup_torch(args.threads)
    run.work.mkdir(parents=True, exist_ok=True)
    pretrain = pretrain_parent(run, args.threads)
    result = pipeline(run, args.threads)
    text = markdown(run, pretrain, result)
    if args.quick:
        print(text)
        return
    save_results("compress.hf", {"settings": {**run.__dict__, "work": str(run.work)},
                                 "pretrain": pretrain, **result}, text, seeds=[0])  # fmt: skip


if __name__ == "__main__":
    main()
