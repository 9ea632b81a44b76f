"""`autofm compress`: sort a parent by importance, train it as a super-network, search its
sub-networks, extract one, prune baselines, evaluate any model.

A model is an autofm GPT checkpoint, or hf:DIR, a Hugging Face Llama folder (every command
but `report`; their hf: branches are in `cli_hf`, which alone imports `transformers`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from autofm.core.cli import (
    NON_NEGATIVE_INT,
    POSITIVE_FLOAT,
    POSITIVE_INT,
    CommandGroup,
    add_max_seconds,
    add_out,
    add_report,
    add_seed,
    add_threads,
    declare_outputs,
)
from autofm.core.errors import ValidationError
from autofm.core.output import emit
from autofm.core.progress import status

# what a `search --out` result holds that `report` reads
RESULT_KEYS = ("method", "objectives", "n_trials", "front", "hypervolume", "reference")
# the recovery fine-tuning every pruned baseline gets by default: the benchmark's budget
# (docs/compress.md), a few minutes for the shipped parent's halves on a 2-core CPU
RECOVERY_TOKENS = 1_000_000
# argparse choices, written out so that building the parser imports no torch (a test checks them
# against the modules' own constants)
CHOICES = {
    "aggregation": ("mean", "l2", "variance"),
    "strategy": ("standard", "random", "sandwich"),
    "sampling": ("uniform", "calibrated"),
    "space": ("uniform", "layerwise"),
    "method": ("nsga2", "tpe", "random", "local"),
    "objective": ("kl", "val_loss"),
    "size": ("params", "flops", "latency_ms"),
    "prune": ("magnitude", "importance", "leading"),
}


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add the `compress` command group."""
    group = CommandGroup(
        subparsers, common, "compress", "compress an LM by searching a weight-sharing super-network"
    )
    importance = group.command(
        "importance",
        "sort a parent's units and layers by importance (a super-network)",
        _importance,
    )
    _model_and_data(importance)
    _block_size(importance)
    importance.add_argument("--aggregation", default="mean", choices=CHOICES["aggregation"])
    importance.add_argument("--batches", type=int, default=10, help="calibration batches")
    add_out(
        importance,
        "checkpoint stem of the sorted parent (hf: a new folder)",
        kind="checkpoint",
        required=True,
    )
    add_seed(importance)

    train = group.command(
        "supernet-train", "train a sorted parent so that its sub-networks work", _supernet_train
    )
    _model_and_data(train)
    _block_size(train)
    train.add_argument("--strategy", default="sandwich", choices=CHOICES["strategy"])
    train.add_argument("--no-distill", action="store_true", help="no in-place distillation")
    train.add_argument("--random-samples", type=int, default=2)
    train.add_argument("--sampling", default="calibrated", choices=CHOICES["sampling"])
    train.add_argument(
        "--space",
        choices=CHOICES["space"],
        help="sub-networks trained: default layerwise for a GPT, uniform (the only one) for hf:",
    )
    train.add_argument("--tokens", type=int, default=1_000_000, help="text read (default 1M)")
    train.add_argument("--lr", type=float, default=3e-4)
    train.add_argument("--batch-size", type=int, default=16)
    train.add_argument("--run-dir", help="resumable run folder")
    declare_outputs(train, run_dir="folder")
    add_max_seconds(train)
    add_threads(train)
    add_out(
        train,
        "checkpoint stem of the trained super-network (hf: a new folder)",
        kind="checkpoint",
        required=True,
    )
    add_seed(train)

    search = group.command(
        "search", "multi-objective search of a super-network's sub-networks", _search
    )
    _model_and_data(search)
    _block_size(search)
    search.add_argument("--method", default="nsga2", choices=CHOICES["method"])
    search.add_argument(
        "--objective", default="kl", choices=CHOICES["objective"], help="kl to the parent"
    )
    search.add_argument("--size", default="params", choices=CHOICES["size"])
    search.add_argument(
        "--space", default="uniform", choices=CHOICES["space"], help="layerwise: not for hf:"
    )
    search.add_argument(
        "--trials",
        type=int,
        default=100,
        help="trials in the study in all (a resumed study runs only the missing ones)",
    )
    search.add_argument("--calibration-blocks", type=int, default=32)
    search.add_argument(
        "--run-dir",
        default="runs/compress",
        help="study folder, resumable (default runs/compress under the current folder; give "
        "each super-network its own)",
    )
    declare_outputs(search, run_dir="folder")
    search.add_argument("--storage", help="Optuna storage URL (many workers share one)")
    add_threads(search)
    add_seed(search)
    add_out(search, "write the result (front, hypervolume) as JSON here", kind="file")
    add_report(search)

    report = group.command("report", "HTML report of one or more search results", _report)
    report.add_argument("results", nargs="+", help="result JSON files from `search --out`")
    add_out(report, "HTML file to write", kind="file", required=True)

    extract = group.command(
        "extract", "a sub-network as a stand-alone model (from the front or given)", _extract
    )
    extract.add_argument("model", help="super-network checkpoint (name or path), or hf:DIR")
    budget = extract.add_mutually_exclusive_group(required=True)
    budget.add_argument(
        "--params-fraction", type=POSITIVE_FLOAT, help="best front point under this"
    )
    budget.add_argument(
        "--params", type=POSITIVE_INT, help="best front point under this many parameters"
    )
    budget.add_argument(
        "--latency-ms",
        type=POSITIVE_FLOAT,
        help="best front point under this latency (a latency search)",
    )
    budget.add_argument("--sub", help="a sub-network as JSON: {embed, layers, heads, mlp}")
    extract.add_argument("--front", help="front JSON from `search --out` (default: shipped one)")
    extract.add_argument(
        "--recover-tokens",
        type=NON_NEGATIVE_INT,
        default=0,
        help="recovery fine-tuning tokens on --data after extraction (default 0: none; "
        f"with {RECOVERY_TOKENS:,}, prune's default, the searched sub-networks beat every "
        "pruning baseline given as many in docs/compress.md)",
    )
    extract.add_argument(
        "--data", default="stdlib+text", help="text for --recover-tokens (default stdlib+text)"
    )
    extract.add_argument(
        "--valid-fraction", type=float, default=0.05, help="held-out part of each source"
    )
    extract.add_argument("--lr", type=POSITIVE_FLOAT, default=3e-4, help="recovery lr")
    _block_size(extract)
    add_seed(extract)
    add_out(
        extract,
        "checkpoint stem of the extracted model (hf: a new folder)",
        kind="checkpoint",
        required=True,
    )

    prune = group.command("prune", "a pruning baseline at a parameter budget", _prune)
    _model_and_data(prune, default_data="stdlib+text")
    prune.add_argument("--method", default="magnitude", choices=CHOICES["prune"])
    prune.add_argument("--params-fraction", type=float, required=True)
    prune.add_argument(
        "--recover-tokens",
        type=NON_NEGATIVE_INT,
        default=RECOVERY_TOKENS,
        help=f"recovery fine-tuning tokens on --data (default {RECOVERY_TOKENS:,}; 0: none)",
    )
    prune.add_argument("--lr", type=POSITIVE_FLOAT, default=3e-4)
    _block_size(prune)
    add_out(
        prune,
        "checkpoint stem of the pruned model (hf: a new folder)",
        kind="checkpoint",
        required=True,
    )
    add_seed(prune)

    evaluate = group.command("eval", "bits per byte, parameters, FLOPs, latency", _eval)
    evaluate.add_argument("model", help="GPT checkpoint (name or path), or hf:DIR")
    evaluate.add_argument("--data", required=True, help="text file or corpus name")
    evaluate.add_argument(
        "--blocks", type=POSITIVE_INT, default=64, help="validation blocks (at most)"
    )
    _block_size(evaluate)
    add_threads(evaluate)


def _model_and_data(parser: argparse.ArgumentParser, default_data: str | None = None) -> None:
    parser.add_argument(
        "model", help="GPT checkpoint (name or path; autofm: prefix optional), or hf:DIR"
    )
    parser.add_argument(
        "--data",
        required=default_data is None,
        default=default_data,
        help="text file, or a corpus name: stdlib, stdlib+text"
        + (f" (default {default_data})" if default_data else ""),
    )
    parser.add_argument(
        "--valid-fraction", type=float, default=0.05, help="held-out part of each source"
    )


def _block_size(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--block-size",
        type=int,
        help="tokens per block (calibration, validation and training), hf: models only "
        "(default 256, or the model's context if shorter; a GPT uses its own)",
    )


def _is_hf(spec: str) -> bool:
    from autofm.compress.parent import parse_model_spec

    return parse_model_spec(spec)[0] == "hf"


def _load_gpt(args: argparse.Namespace):
    """(super-network, meta) of the autofm GPT checkpoint args.model."""
    from autofm.compress.parent import load_supernet

    if getattr(args, "block_size", None) is not None:
        raise ValidationError(
            "--block-size is for hf: models; an autofm GPT works at its own block size"
        )
    return load_supernet(args.model)


def _tokens(args: argparse.Namespace):
    from autofm.data.text import load_corpus_split

    return load_corpus_split(args.data, args.valid_fraction)


def _importance(args: argparse.Namespace) -> None:
    if _is_hf(args.model):
        from autofm.compress import cli_hf

        return cli_hf.importance(args)
    from autofm.compress.importance import calibration_batches, sort_parent
    from autofm.compress.parent import save_supernet
    from autofm.compress.supernet import SuperNetwork

    supernet, meta = _load_gpt(args)
    train_tokens, _ = _tokens(args)
    block = supernet.config.block_size
    batches = calibration_batches(train_tokens, block, args.batches, seed=args.seed)
    gpt, layer_order, _ = sort_parent(supernet.gpt, batches, args.aggregation)
    info = {
        "parent": str(args.model),
        "parent_sha256": meta["sha256"],
        "sorted_by": {"aggregation": args.aggregation, "batches": args.batches, "data": args.data},
    }
    stem = save_supernet(args.out, SuperNetwork(gpt, layer_order), supernet_info=info)
    emit({"checkpoint": str(stem), "layer_order": list(layer_order)}, args.json)


def supernet_settings(args: argparse.Namespace, space: str):
    """(SupernetTrainConfig, TrainConfig) of a `supernet-train` command line."""
    from autofm.compress.training import SupernetTrainConfig
    from autofm.lm.training import TrainConfig

    config = SupernetTrainConfig(
        args.strategy, not args.no_distill, args.random_samples, args.sampling, space
    )
    loop = TrainConfig(
        lr=args.lr,
        batch_size=args.batch_size,
        tokens=args.tokens,
        seed=args.seed,
        threads=args.threads,
        max_seconds=args.max_seconds,
        grad_clip=1.0,
    )
    return config, loop


def supernet_identity(args: argparse.Namespace) -> dict:
    """What a `supernet-train` run folder must have been started with to be continued: the
    parent and the text (the strategy and loop settings are checked by the training loop)."""
    from autofm.data.text import corpus_identity

    return {
        "model": _model_identity(args.model),
        "data": corpus_identity(args.data),
        "valid_fraction": args.valid_fraction,
    }  # the block size is part of the model's config, which the loop checks


def _model_identity(spec: str) -> str:
    """One spelling of a model spec: hf: with the folder's absolute path, else the checkpoint's
    (`checkpoint_identity`)."""
    from autofm.compress.parent import parse_model_spec
    from autofm.core.checkpoint import checkpoint_identity

    kind, location = parse_model_spec(spec)
    if kind == "hf":
        return f"hf:{Path(location).resolve()}"
    return f"autofm:{checkpoint_identity(location)}"


def note_if_unsorted(previous: dict | None, model: str) -> None:
    """Say so when a parent trained as a super-network was never sorted by importance: its
    sub-networks are its leading units as they happen to be (said after training, so that a
    refused command prints only its error)."""
    previous = previous or {}
    if not (previous.get("sorted_by") or previous.get("sort_seconds")):
        status(
            f"note: {model} is not sorted by importance; sub-networks are its first units as "
            "they are (run `autofm compress importance` first for the paper's method)"
        )


def trained_info(previous: dict | None, model: str, summary: dict) -> dict:
    """The super-network description saved after training: what the parent's said (e.g. how it
    was sorted) without what training makes stale (a front searched before it; the layer order
    is saved apart), plus the parent and the training summary."""
    info = {**(previous or {}), "parent": str(model), "trained": summary}
    for stale in ("layer_order", "front", "front_note"):
        info.pop(stale, None)
    return info


def _supernet_train(args: argparse.Namespace) -> None:
    if _is_hf(args.model):
        from autofm.compress import cli_hf

        return cli_hf.supernet_train(args)
    from autofm.compress.parent import save_supernet
    from autofm.compress.training import train_supernet, training_summary

    supernet, meta = _load_gpt(args)
    config, loop = supernet_settings(args, args.space or "layerwise")
    inputs = supernet_identity(args)
    train_tokens, valid_tokens = _tokens(args)
    supernet.gpt.train()
    result = train_supernet(
        supernet, train_tokens, valid_tokens, config, loop, args.run_dir, inputs
    )
    summary = {**training_summary(config, loop, result), "inputs": inputs}
    note_if_unsorted(meta.get("supernet"), args.model)
    info = trained_info(meta.get("supernet"), args.model, summary)
    stem = save_supernet(args.out, supernet, supernet_info=info, training=summary)
    emit({"checkpoint": str(stem), "complete": result.complete, **summary}, args.json)


def _extract(args: argparse.Namespace) -> None:
    if _is_hf(args.model):
        from autofm.compress import cli_hf

        return cli_hf.extract(args, _chosen_sub)
    from autofm.compress.extraction import extract
    from autofm.lm.checkpoint import save_gpt

    supernet, meta = _load_gpt(args)
    if not (args.sub or args.front or (meta.get("supernet") or {}).get("front")):
        supernet, meta = _shipped_supernet(args.model, supernet, meta)
    sub = _chosen_sub(args, supernet, meta)
    tokens = _tokens(args) if args.recover_tokens else None  # bad --data fails before any work
    model = extract(supernet, sub)
    info = {"params": model.n_parameters(), "sub_network": sub.to_dict()}
    if tokens is not None:
        from autofm.compress.baselines import recover

        status(f"recovery fine-tuning: {args.recover_tokens:,} tokens")
        model, info["val_loss"] = recover(
            model.float().train(), *tokens, tokens=args.recover_tokens, lr=args.lr, seed=args.seed
        )
        model.eval()
    info["recover_tokens"] = args.recover_tokens
    stem = save_gpt(args.out, model, {"extracted_from": str(args.model), **info})
    emit({"checkpoint": str(stem), **info}, args.json)


def _shipped_supernet(name: str, supernet, meta: dict):
    """A parent's shipped super-network `<name>-supernet` (trained, with its searched front),
    when there is one; else the parent as given."""
    from autofm.compress.parent import load_supernet
    from autofm.core.checkpoint import list_pretrained

    companion = f"{name}-supernet"
    if companion not in list_pretrained():
        return supernet, meta
    status(f"using the shipped super-network {companion} and its searched front")
    return load_supernet(companion)


def weights_sha256(supernet) -> str:
    """The fingerprint a search result records of the super-network it searched."""
    from autofm.compress.objectives import tensors_sha256

    return tensors_sha256(t for _, t in sorted(supernet.state_dict().items()))


def _chosen_sub(args: argparse.Namespace, supernet, meta: dict):
    """The sub-network of --sub, or the best front point under --params(-fraction)."""
    from autofm.compress.space import SubNetwork, count_parameters
    from autofm.core.pareto import best_under

    parent = supernet.config
    if args.sub:
        try:
            values = json.loads(args.sub)
        except json.JSONDecodeError as err:
            raise ValidationError(f"--sub is not valid JSON: {err}") from err
        keys = {"embed", "layers", "heads", "mlp"}
        if not isinstance(values, dict) or set(values) != keys:
            raise ValidationError(
                '--sub needs exactly the keys embed, layers, heads, mlp, e.g. {"embed": 128, '
                '"layers": [0, 2], "heads": [4, 4], "mlp": [512, 512]}'
            )
        return SubNetwork.from_dict(values, source="--sub").check(parent)
    front = _front(args, meta, supernet)
    if args.latency_ms is not None:
        size, budget = "latency_ms", args.latency_ms
        if not all("latency_ms" in p for p in front):
            raise ValidationError(
                "this front has no measured latencies; search with --size latency_ms, or give "
                "--params / --params-fraction"
            )
    else:
        full = count_parameters(parent, SubNetwork.full(parent))
        size = "params"
        budget = args.params if args.params is not None else args.params_fraction * full
    index = best_under([(p["objective"], p[size]) for p in front], budget)
    if index is None:
        smallest = min(p[size] for p in front)
        raise ValidationError(
            f"no sub-network on the front has {size} ≤ {budget:,.4g} (the smallest has "
            f"{smallest:,.4g}); raise the budget"
        )
    return SubNetwork.from_dict(front[index]["sub_network"], source="the front").check(parent)


def _front(args: argparse.Namespace, meta: dict, supernet) -> list[dict]:
    """Front points {sub_network, params, objective} from --front or the checkpoint's own; a
    front searched on other weights (e.g. before super-network training) is refused."""
    if args.front:
        from autofm.core.io import read_json

        path = Path(args.front)
        if not path.is_file():
            raise ValidationError(f"front file {path} not found; write one with `search --out`")
        result = read_json(path, "search result (`search --out`)", keys=("front",))
        searched = result.get("weights_sha256")
        if searched is not None and searched != weights_sha256(supernet):
            raise ValidationError(
                f"{path} was searched on other weights than {args.model}'s (e.g. before "
                "super-network training); extract from the model that was searched"
            )
        return result["front"]
    front = (meta.get("supernet") or {}).get("front")
    if not front:
        raise ValidationError(
            f"{args.model} holds no searched front; run `autofm compress search` and pass its "
            "--front, or give --sub"
        )
    return front


def _prune(args: argparse.Namespace) -> None:
    if _is_hf(args.model):
        from autofm.compress import cli_hf

        return cli_hf.prune(args)
    from autofm.compress.baselines import prune, recover
    from autofm.compress.importance import calibration_batches
    from autofm.lm.checkpoint import save_gpt

    supernet, _ = _load_gpt(args)
    tokens = _tokens(args)
    batches = None
    if args.method == "importance":
        batches = calibration_batches(tokens[0], supernet.config.block_size, seed=args.seed)
    model, info = prune(supernet.gpt, args.method, args.params_fraction, batches)
    if args.recover_tokens:
        status(f"recovery fine-tuning: {args.recover_tokens:,} tokens")
        model, info["val_loss"] = recover(
            model, *tokens, tokens=args.recover_tokens, lr=args.lr, seed=args.seed
        )
    info["recover_tokens"] = args.recover_tokens
    stem = save_gpt(args.out, model, {"pruned_from": str(args.model), **info})
    emit({"checkpoint": str(stem), **info}, args.json)


def _search(args: argparse.Namespace) -> None:
    from autofm.compress.objectives import Calibration
    from autofm.compress.subnet_search import search
    from autofm.core.io import atomic_write_json
    from autofm.core.runtime import setup_torch

    device = setup_torch(args.threads)
    if _is_hf(args.model):
        from autofm.compress import cli_hf

        supernet, train_tokens, valid_tokens = cli_hf.search_inputs(args, device)
    else:
        supernet, _ = _load_gpt(args)
        train_tokens, valid_tokens = _tokens(args)
    block_size = supernet.config.block_size  # hf: --block-size
    calibration = Calibration.from_tokens(
        supernet, train_tokens, args.calibration_blocks, block_size=block_size
    )
    result = search(
        supernet,
        supernet.space(args.space),
        objectives=(args.objective, args.size),
        method=args.method,
        n_trials=args.trials,
        seed=args.seed,
        calibration=calibration,
        validation_tokens=valid_tokens if args.objective == "val_loss" else None,
        latency={"seq_len": block_size},
        storage=args.storage,
        run_dir=args.run_dir,
    )
    summary = {
        **result.to_dict(),
        "model": str(args.model),
        "weights_sha256": weights_sha256(supernet),
        "data": args.data,
        "block_size": block_size,
    }
    if args.out:
        atomic_write_json(args.out, summary)
    if args.report:
        from autofm.compress.report import search_report

        search_report([summary]).save(args.report)
    human = (
        f"{summary['n_trials']} trials, {len(result.front)} on the front, hypervolume "
        f"{result.hypervolume:.4g} (reference {tuple(result.reference)})"
    )
    emit(summary, args.json, human)


def _report(args: argparse.Namespace) -> None:
    from autofm.compress.report import search_report
    from autofm.core.io import read_json

    results = []
    for path in args.results:
        file = Path(path)
        if not file.is_file():
            raise ValidationError(f"result file {file} not found; write one with `search --out`")
        results.append(read_json(file, "search result (`search --out`)", keys=RESULT_KEYS))
    path = search_report(results).save(args.out)
    emit({"report": str(path), "results": len(results)}, args.json, f"report: {path}")


def _eval(args: argparse.Namespace) -> None:
    if _is_hf(args.model):
        from autofm.compress import cli_hf

        return cli_hf.evaluate(args)
    import math

    from autofm.compress.objectives import measure_latency
    from autofm.compress.space import SubNetwork, count_flops
    from autofm.core.runtime import setup_torch
    from autofm.data.text import CORPORA, load_corpus, load_corpus_split
    from autofm.lm.training import evaluate

    setup_torch(args.threads)
    supernet, _ = _load_gpt(args)
    # a corpus name: its held-out part; a file: the whole file is the evaluation text
    if args.data in CORPORA:
        text = load_corpus_split(args.data, 0.05)[1]
    else:
        text = load_corpus(args.data)
    model = supernet.gpt.eval()
    config = model.config
    result = {
        "model": str(args.model),
        "bits_per_byte": evaluate(model, text, args.blocks, progress_bar=True) / math.log(2),
        "params": model.n_parameters(),
        "flops": count_flops(config, SubNetwork.full(config)),  # per token
        "latency_ms": measure_latency(model),
    }
    emit(result, args.json)
