"""`autofm lm`: train a GPT, run a coordinate check, grow a checkpoint, sweep learning rates."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from autofm.core.cli import (
    CommandGroup,
    add_init,
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

if TYPE_CHECKING:
    import numpy as np


def _model_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--width", type=int, default=128)
    group.add_argument("--depth", type=int, default=2)
    group.add_argument("--head-size", type=int, default=32)
    group.add_argument("--heads", type=int, help="number of heads (sets head size = width/heads)")
    group.add_argument("--block-size", type=int, default=128)
    group.add_argument("--param", choices=("mup", "sp"), default="mup", help="parametrisation")
    group.add_argument("--base-width", type=int, default=64, help="μP's reference width")
    group.add_argument("--norm", choices=("layernorm", "rmsnorm"), default="layernorm")
    group.add_argument("--tied", action="store_true", help="tie input and output embeddings")
    group.add_argument("--zero-readout", action="store_true")
    group.add_argument("--zero-query", action="store_true")


def _train_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training")
    group.add_argument(
        "--corpus",
        default="stdlib",
        help="text file, 'stdlib' (default) or 'stdlib+text' (the parent GPT's pretraining corpus)",
    )
    group.add_argument("--valid-fraction", type=float, default=0.1)
    group.add_argument("--batch-size", type=int, default=16)
    budget = group.add_mutually_exclusive_group()
    budget.add_argument("--tokens", type=int, help="training tokens (all ranks together)")
    budget.add_argument("--tokens-per-param", type=float, help="budget per parameter (default 20)")
    group.add_argument("--schedule", choices=("constant", "wsd"), default="constant")
    group.add_argument("--warmup", type=float, default=0.05, help="warmup fraction of steps")
    group.add_argument("--decay", type=float, default=0.2, help="wsd: decay fraction of steps")
    group.add_argument("--weight-decay", type=float, default=0.0)
    group.add_argument("--grad-clip", type=float, help="clip the global gradient norm (off)")
    group.add_argument("--eval-every", type=int, help="steps between validation losses")
    add_seed(group)
    group.add_argument("--device", default="auto")
    add_threads(group)


def _model_config(args: argparse.Namespace, width: int | None = None):
    from autofm.lm.model import GPTConfig

    width = width or args.width
    head_size = args.head_size
    if args.heads:
        if args.heads < 1 or width % args.heads:
            raise ValidationError(f"width {width} is not divisible by --heads {args.heads}")
        head_size = width // args.heads
    return GPTConfig(
        width=width,
        depth=args.depth,
        head_size=head_size,
        block_size=args.block_size,
        parametrization=args.param,
        base_width=args.base_width,
        norm=args.norm,
        tie_embeddings=args.tied,
        zero_readout=args.zero_readout,
        zero_query=args.zero_query,
    )


def _train_config(args: argparse.Namespace, lr: float):
    from autofm.lm.training import TrainConfig

    return TrainConfig(
        lr=lr,
        batch_size=args.batch_size,
        tokens=args.tokens,
        tokens_per_parameter=args.tokens_per_param,
        schedule=args.schedule,
        warmup_fraction=args.warmup,
        decay_fraction=args.decay,
        weight_decay=args.weight_decay,
        grad_clip=args.grad_clip,
        eval_every=args.eval_every,
        seed=args.seed,
        device=args.device,
        threads=args.threads,
        max_seconds=getattr(args, "max_seconds", None),
        checkpoint_every=getattr(args, "checkpoint_every", 500),
    )


def _split(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    from autofm.data.text import load_corpus_split

    return load_corpus_split(args.corpus, args.valid_fraction)


def _cmd_train(args: argparse.Namespace) -> None:
    import dataclasses

    from autofm.lm.checkpoint import load_gpt, save_gpt
    from autofm.lm.model import GPT
    from autofm.lm.report import plot_curves
    from autofm.lm.training import train

    train_tokens, valid_tokens = _split(args)
    if args.init:
        model, _ = load_gpt(args.init)
        status(f"starting from {args.init} (its config; model options ignored)")
    else:
        model = GPT(_model_config(args), seed=args.seed)
    config = _train_config(args, args.lr)
    # a run folder started on other text or from another model is not continued
    from autofm.core.checkpoint import checkpoint_identity
    from autofm.data.text import corpus_identity

    identity = {
        "corpus": corpus_identity(args.corpus),
        "valid_fraction": args.valid_fraction,
        "init": checkpoint_identity(args.init) if args.init else None,
    }
    result = train(
        model, train_tokens, valid_tokens, config, run_dir=args.run_dir, identity=identity
    )
    training = {
        "corpus": args.corpus,
        "config": dataclasses.asdict(config),
        "final_val_loss": result.final_val_loss,
        "tokens": result.tokens_seen,
        "steps": result.steps_done,
        "steps_planned": result.steps,
        "complete": result.complete,
        "diverged": result.diverged,
    }
    stem = save_gpt(args.out, result.model, training) if not result.diverged else None
    summary = {
        "checkpoint": str(stem) if stem else None,
        "n_parameters": model.n_parameters(),
        "tokens": result.tokens_seen,
        "steps": result.steps_done,
        "steps_planned": result.steps,
        "complete": result.complete,
        "final_val_loss": result.final_val_loss,
        "diverged": result.diverged,
        "seconds": result.seconds,
    }
    if args.report:
        from autofm.core.report import Report

        report = Report(
            f"autofm lm train: width {model.config.width}, {model.config.parametrization}"
        )
        report.table([summary])
        report.figure(plot_curves({"validation": result.history}), "validation loss vs tokens")
        report.save(args.report)
    if result.diverged:
        raise ValidationError(
            f"training diverged (non-finite loss) at lr {args.lr:g}; lower the learning rate"
        )
    emit(summary, args.json)


def _cmd_coord_check(args: argparse.Namespace) -> None:
    from autofm.lm.coordinates import coord_check
    from autofm.lm.report import coord_check_section

    result = coord_check(
        widths=tuple(args.widths),
        steps=args.steps,
        lr=args.lr,
        n_seeds=args.seeds,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    out = {
        "ratios": result.ratios,
        "widths": list(result.widths),
        "layer_ratios": {p: result.layer_ratios(p) for p in result.ratios},
    }
    if args.report:
        coord_check_section(result, args.lr).save(args.report)
    human = "max/min of mean |activation| across widths (worst layer, last step):\n" + "\n".join(
        f"  {p.upper()}: {r:.2f}" for p, r in result.ratios.items()
    )
    emit(out, args.json, human)


def _cmd_grow(args: argparse.Namespace) -> None:
    from autofm.lm.checkpoint import load_gpt, save_gpt
    from autofm.lm.growth import grow

    small, meta = load_gpt(args.checkpoint)
    target = small.config.replace(width=args.width)
    if args.param:
        target = target.replace(parametrization=args.param)
    large = grow(
        small,
        target,
        shrink=args.shrink,
        perturb=args.perturb,
        seed=args.seed,
        preserve_function=not args.no_preserve_function,
    )
    out = args.out or str(Path(args.checkpoint).with_suffix("")) + f"_w{args.width}"
    stem = save_gpt(
        out,
        large,
        {
            "grown_from": str(args.checkpoint),
            "from_width": small.config.width,
            "shrink": args.shrink,
            "perturb": args.perturb,
            "seed": args.seed,
        },
    )
    emit(
        {
            "checkpoint": str(stem),
            "from_width": small.config.width,
            "to_width": large.config.width,
            "n_parameters": large.n_parameters(),
            "shrink": args.shrink,
            "perturb": args.perturb,
        },
        args.json,
    )


def _cmd_sweep(args: argparse.Namespace) -> None:
    from autofm.lm.report import sweep_section
    from autofm.lm.sweep import log_grid, lr_sweep

    train_tokens, valid_tokens = _split(args)
    learning_rates = args.lrs or log_grid(args.lr_min, args.lr_max, args.n_lrs)
    sweeps = {}
    for name in args.params:
        args.param = name
        sweeps[name] = lr_sweep(
            train_tokens,
            valid_tokens,
            _model_config(args, width=min(args.widths)),
            args.widths,
            learning_rates,
            _train_config(args, learning_rates[0]),
            seeds=tuple(range(args.seed, args.seed + args.seeds)),
        )
    if args.report:
        sweep_section(sweeps).save(args.report)
    out = {
        "learning_rates": sorted(learning_rates),
        "best_lr": {name: sweep.best_lr() for name, sweep in sweeps.items()},
        "rows": [row for sweep in sweeps.values() for row in sweep.rows],
    }
    human = "\n".join(
        f"{name.upper()} best LR: "
        + ", ".join(f"width {w}: {lr:g}" for w, lr in sorted(s.best_lr().items()))
        for name, s in sweeps.items()
    )
    emit(out, args.json, human)


def register(subparsers, common: argparse.ArgumentParser) -> None:
    """Add `autofm lm` and its subcommands."""
    group = CommandGroup(
        subparsers, common, "lm", "a small GPT with μP; coordinate checks, LR sweeps, growth"
    )
    train = group.command("train", "train a byte-level GPT", _cmd_train)
    _model_args(train)
    _train_args(train)
    train.add_argument("--lr", type=float, default=3e-3)
    add_init(train, "start from this checkpoint (e.g. a grown one)")
    add_out(
        train, "checkpoint stem (default runs/lm/model)", kind="checkpoint", default="runs/lm/model"
    )
    train.add_argument(
        "--run-dir",
        help="run folder for resumable states: a later call with the same folder and settings "
        "continues the run (use with --max-seconds to train in pieces)",
    )
    declare_outputs(train, run_dir="folder")
    add_max_seconds(train)
    train.add_argument(
        "--checkpoint-every", type=int, default=500, help="steps between resumable states"
    )
    add_report(train)

    coord = group.command("coord-check", "activation scale vs width, SP and μP", _cmd_coord_check)
    coord.add_argument("--widths", type=int, nargs="+", default=[64, 128, 256, 512])
    coord.add_argument("--steps", type=int, default=5)
    coord.add_argument("--lr", type=float, default=3e-3)
    coord.add_argument("--seeds", type=int, default=3, help="initialisations averaged")
    coord.add_argument("--batch-size", type=int, default=8)
    add_seed(coord)
    add_report(coord)

    grow = group.command("grow", "warm-start a wider model", _cmd_grow)
    grow.add_argument(
        "checkpoint", help="checkpoint stem (or .json/.safetensors) of the small model"
    )
    grow.add_argument("--width", type=int, required=True, help="target width")
    grow.add_argument("--shrink", type=float, default=0.4, help="λ: weight of the padded model")
    grow.add_argument("--perturb", type=float, default=1.0, help="s: weight of the fresh init")
    add_seed(grow)
    grow.add_argument(
        "--param",
        choices=("mup", "sp"),
        help="parametrisation of the perturbation (default: the source's)",
    )
    grow.add_argument(
        "--no-preserve-function",
        action="store_true",
        help="plain zero-padding, without rescaling norm gains and the μP readout",
    )
    add_out(grow, "checkpoint stem (default: <checkpoint>_w<width>)", kind="checkpoint")

    sweep = group.command("sweep", "learning-rate sweep across widths", _cmd_sweep)
    _model_args(sweep)
    _train_args(sweep)
    sweep.add_argument("--widths", type=int, nargs="+", default=[64, 128])
    sweep.add_argument("--params", nargs="+", choices=("mup", "sp"), default=["mup", "sp"])
    sweep.add_argument("--lrs", type=float, nargs="+", help="explicit learning rates")
    sweep.add_argument("--lr-min", type=float, default=1e-4)
    sweep.add_argument("--lr-max", type=float, default=3e-2)
    sweep.add_argument("--n-lrs", type=int, default=6)
    sweep.add_argument("--seeds", type=int, default=1)
    add_report(sweep)
