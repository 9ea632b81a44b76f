"""`autofm icl`: compare shipped PFNs with exact posteriors, run the experiments, train a PFN."""

from __future__ import annotations

import argparse
import time

from autofm.core.cli import (
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

PFN_PRIORS = ("steps", "gp", "sine-line", "counting")


def _load(args: argparse.Namespace):
    from autofm.icl.pretrained import load_pfn

    return load_pfn(args.checkpoint or args.prior)


def _cmd_compare(args: argparse.Namespace) -> None:
    from autofm.core.runtime import setup_torch
    from autofm.core.validation import check_positive_int
    from autofm.icl.experiments import compare
    from autofm.icl.pretrained import make_prior

    setup_torch()
    check_positive_int(args.n_tasks, "--n-tasks")
    model, meta = _load(args)
    trained_on = meta["training"].get("prior")
    if args.checkpoint is not None and trained_on and trained_on != args.prior:
        raise ValidationError(
            f"--checkpoint {args.checkpoint} was trained on the {trained_on!r} prior, not "
            f"{args.prior!r}; pass --prior {trained_on} (the exact posterior must be the same prior's)"
        )
    prior_name = args.prior
    started = time.perf_counter()
    result = compare(model, make_prior(prior_name), n_tasks=args.n_tasks, seed=args.seed)
    output = {
        "prior": prior_name,
        "nll_gap": result["nll_gap"],
        "mean_mse": result["mean_mse"],
        "max_abs_mean_diff": result["max_abs_mean_diff"],
        "pfn_nll": result["pfn_nll"],
        "exact_nll": result["exact_nll"],
        "seed": args.seed,
        "n_tasks_per_size": args.n_tasks,
        "by_context": result["by_context"],
        "seconds": time.perf_counter() - started,
    }
    lines = [
        f"PFN vs exact posterior predictive, prior {prior_name!r} (seed {args.seed}, "
        f"{args.n_tasks} fresh tasks per context size)",
        f"  nll_gap            {result['nll_gap']:.4f} nats/point (PFN {result['pfn_nll']:.4f}, "
        f"exact {result['exact_nll']:.4f})",
        f"  mean_mse           {result['mean_mse']:.3g}",
        f"  max_abs_mean_diff  {result['max_abs_mean_diff']:.4f}",
        "  by context size: "
        + ", ".join(f"{r['n_context']}: {r['nll_gap']:+.3f}" for r in result["by_context"]),
    ]
    emit(output, args.json, "\n".join(lines))


def _cmd_experiments(args: argparse.Namespace) -> None:
    from autofm.core.report import Report
    from autofm.core.runtime import setup_torch
    from autofm.icl.experiments import run_all
    from autofm.icl.pretrained import load_pfn

    setup_torch()
    models = {name: load_pfn(name)[0] for name in args.prior}
    report = Report("autofm icl: PFNs vs exact posteriors") if args.report else None
    results = run_all(models, seed=args.seed, quick=args.quick, report=report)
    lines = []
    if "steps_on_linear" in results:
        r = results["steps_on_linear"]
        lines.append(
            f"1. steps on linear data: max |PFN − PPD mean| {r['max_abs_mean_diff']:.3f} "
            f"(worst dataset {r['max_abs_mean_diff_worst']:.3f})"
        )
    if "sines_and_lines" in results:
        lines.append("2. sines + lines on 0.2 sin(3πx)+0.23x:")
        for r in results["sines_and_lines"]["by_context"]:
            lines.append(
                f"   n={r['n_context']:>3}: P(sine) {r['p_sine_exact']:.2f}, MSE to truth exact "
                f"{r['exact_mse_to_truth']:.4f} PFN {r['pfn_mse_to_truth']:.4f}, "
                f"nll_gap {r['nll_gap']:+.3f}"
            )
    if "counting" in results:
        r = results["counting"]
        lines.append(
            f"3. counting: max |PFN − exact| {r['max_abs_mean_diff']:.4f}, mean KL {r['nll_gap']:.4f}"
        )
    if "gp" in results:
        r = results["gp"]["in_distribution"]
        lines.append(f"4. GP: nll_gap {r['nll_gap']:.4f} nats/point, mean_mse {r['mean_mse']:.2g}")
    if report is not None:
        path = report.save(args.report)
        lines.append(f"report: {path}")
        results["report"] = str(path)
    emit(results, args.json, "\n".join(lines))


def _cmd_train(args: argparse.Namespace) -> None:
    from autofm.icl.pretrained import train_pfn

    run_dir = args.run_dir or f"runs/icl-{args.prior}"
    out = args.out or f"{run_dir}/model"
    _, training = train_pfn(
        args.prior,
        run_dir,
        seconds=args.max_seconds,
        steps=args.steps,
        seed=args.seed,
        threads=args.threads,
        buckets=args.buckets,
        out=out,
    )
    result = {"checkpoint": out, "run_dir": run_dir, **training}
    emit(
        result,
        args.json,
        f"trained {args.prior} PFN for {training['steps']} steps "
        f"({training['train_seconds']:.0f} s); checkpoint {out}.safetensors",
    )


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add the `autofm icl` command group."""
    group = CommandGroup(
        subparsers, common, "icl", "prior-fitted networks vs exact Bayesian posteriors"
    )
    compare = group.command(
        "compare", "a shipped PFN vs the exact PPD on fresh prior draws", _cmd_compare
    )
    compare.add_argument("--prior", choices=PFN_PRIORS, required=True)
    compare.add_argument("--checkpoint", help="a PFN checkpoint to use instead of the shipped one")
    compare.add_argument("--n-tasks", type=int, default=16, help="tasks per context size")
    add_seed(compare)

    experiments = group.command(
        "experiments", "the four Bayes'-power experiments", _cmd_experiments
    )
    experiments.add_argument("--prior", nargs="+", choices=PFN_PRIORS, default=list(PFN_PRIORS))
    add_report(experiments, "write an HTML report with the figures here")
    experiments.add_argument("--quick", action="store_true", help="fewer datasets and tasks")
    add_seed(experiments)

    train = group.command("train", "train a PFN on one prior", _cmd_train)
    train.add_argument("--prior", choices=PFN_PRIORS, required=True)
    train.add_argument(
        "--run-dir", help="run folder, resumed if it holds a run (default runs/icl-<prior>)"
    )
    add_out(
        train, "checkpoint stem for the trained PFN (default <run-dir>/model)", kind="checkpoint"
    )
    declare_outputs(train, run_dir="folder")
    add_max_seconds(train, default=600.0)
    train.add_argument("--steps", type=int, help="fixed number of steps instead of a time budget")
    add_seed(train)
    add_threads(train)
    train.add_argument(
        "--buckets", type=int, help="bar-distribution buckets (default: the recipe's)"
    )
