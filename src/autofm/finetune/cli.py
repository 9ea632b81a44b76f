"""`autofm finetune`: build a meta-dataset of LoRA finetuning runs, meta-train the tuner,
suggest configurations for a task, finetune within a budget, benchmark leave-one-task-out."""

from __future__ import annotations

import argparse
from pathlib import Path

from autofm.core.cli import (
    CommandGroup,
    add_max_seconds,
    add_out,
    add_report,
    add_seed,
    add_threads,
)
from autofm.core.errors import ValidationError
from autofm.core.output import emit
from autofm.core.progress import is_quiet, status

STRATEGIES = ("quicktune", "portfolio", "random", "default")  # autofm.finetune.tuning.STRATEGIES
LODO_STRATEGIES = ("ours", "quicktune", "random", "default", "portfolio", "zero_shot")


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add the `finetune` command group."""
    group = CommandGroup(
        subparsers,
        common,
        "finetune",
        "pick LoRA finetuning configurations with meta-learned surrogates",
    )
    build = group.command(
        "build-metadataset", "finetune every configuration on every task (resumable)", _build
    )
    build.add_argument(
        "--tasks", nargs="+",
        help="synthetic QA names (qa_arithmetic qa_facts qa_dates qa_strings qa_counting) or "
        "folders with train.csv/test.csv (text,label); default: the 4 QA tasks and the "
        "classification sets found under --shared-data",
    )  # fmt: skip
    build.add_argument("--shared-data", default="../shared/data/text/classification",
                       help="folder of text-classification sets used by the default tasks")  # fmt: skip
    build.add_argument("--storage", required=True,
                       help="run folder, .db file or Optuna storage URL shared by the workers")  # fmt: skip
    add_out(
        build, "folder to export the finished runs to (quicktunetool + FTC layouts)", kind="folder"
    )
    build.add_argument("--model", default="gpt-parent", help="GPT checkpoint to finetune")
    build.add_argument("--configs", type=int, default=64, help="configurations per task")
    build.add_argument("--epochs", type=int, default=8, help="maximum fidelity (epochs)")
    build.add_argument("--n-train", type=int, default=96)
    build.add_argument("--n-val", type=int, default=64)
    build.add_argument("--n-test", type=int, default=128)
    build.add_argument("--workers", type=int, default=1, help="worker processes on this machine")
    build.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    add_threads(build)
    add_max_seconds(build)
    add_seed(build)

    export = group.command(
        "export", "write a build's finished runs as a meta-dataset folder", _export
    )
    export.add_argument("storage", help="the build's run folder, .db file or storage URL")
    add_out(export, "meta-dataset folder to write", kind="folder", required=True)

    train = group.command(
        "meta-train", "meta-train the performance and cost surrogates", _meta_train
    )
    train.add_argument("metadataset", help="meta-dataset folder")
    add_out(train, "tuner folder to write", kind="folder", required=True)
    add_seed(train)

    suggest = group.command(
        "suggest", "rank configurations for a task from its meta-features", _suggest
    )
    suggest.add_argument("task", help="CSV with text,label or question,answer columns")
    suggest.add_argument("--tuner", default="finetune-tuner", help="tuner folder or shipped name")
    suggest.add_argument("--model", default="gpt-parent", help="GPT checkpoint to finetune")
    suggest.add_argument("--top", type=int, default=10, help="how many to list")

    run = group.command("run", "finetune for real within a time budget; test the best", _run)
    run.add_argument("train", help="CSV with text,label or question,answer columns")
    run.add_argument("--test", required=True, help="test CSV with the same columns")
    run.add_argument("--budget", type=float, required=True, help="seconds of finetuning")
    run.add_argument("--strategy", default="quicktune", choices=STRATEGIES)
    run.add_argument("--refit", action="store_true", help="refit the surrogates (Quick-Tune)")
    run.add_argument("--tuner", default="finetune-tuner", help="tuner folder or shipped name")
    run.add_argument("--model", default="gpt-parent", help="GPT checkpoint to finetune")
    run.add_argument("--max-train", type=int, default=512, help="training examples used")
    run.add_argument("--device", default="cpu")
    add_out(run, "folder for the best adapter (peft format)", kind="folder")
    add_report(run)
    add_threads(run)
    add_seed(run)

    bench = group.command("bench", "leave-one-task-out regret of every strategy", _bench)
    bench.add_argument("metadataset", help="meta-dataset folder")
    bench.add_argument(
        "--strategies", nargs="+", default=list(LODO_STRATEGIES), choices=LODO_STRATEGIES
    )
    bench.add_argument("--seeds", type=int, default=5)
    add_report(bench)


def _require_extras() -> None:
    """peft and gpytorch come with `pip install 'autofm[finetune]'`; say so instead of a traceback."""
    import importlib.util

    missing = [name for name in ("peft", "gpytorch") if importlib.util.find_spec(name) is None]
    if missing:
        raise ValidationError(
            f"autofm finetune needs {' and '.join(missing)}: pip install 'autofm[finetune]'"
        )


def _positive(value: int | float, flag: str) -> None:
    if not value > 0:
        raise ValidationError(f"{flag} must be > 0, got {value}")


def _build(args: argparse.Namespace) -> None:
    _require_extras()
    from autofm.finetune.builder import (
        BuildSpec,
        build_metadataset,
        default_tasks,
        metadataset_from_study,
    )

    for flag in ("configs", "epochs", "n_train", "n_val", "n_test", "workers"):
        _positive(getattr(args, flag), "--" + flag.replace("_", "-"))
    tasks = tuple(args.tasks) if args.tasks else default_tasks(args.shared_data)
    spec = BuildSpec(
        tasks=tasks, model=args.model, n_configs=args.configs, max_epochs=args.epochs,
        n_train=args.n_train, n_val=args.n_val, n_test=args.n_test, seed=args.seed,
    )  # fmt: skip
    build_metadataset(
        args.storage, spec, args.workers, args.device, args.threads or 1, args.max_seconds
    )
    metadataset = metadataset_from_study(args.storage)
    done = int(metadataset.complete().sum())
    result = {"runs_complete": done, "runs_total": len(spec.tasks) * spec.n_configs,
              "tasks": metadataset.tasks, "storage": args.storage}  # fmt: skip
    if args.out:
        result["out"] = str(metadataset.save(args.out))
    emit(result, args.json)


def _export(args: argparse.Namespace) -> None:
    _require_extras()
    from autofm.finetune.builder import metadataset_from_study

    metadataset = metadataset_from_study(args.storage)
    folder = metadataset.save(args.out)
    emit({"runs_complete": int(metadataset.complete().sum()), "out": str(folder)}, args.json)


def _meta_train(args: argparse.Namespace) -> None:
    _require_extras()
    from autofm.finetune.metadataset import MetaDataset
    from autofm.finetune.tuning import meta_train

    metadataset = MetaDataset.load(args.metadataset)
    tuner = meta_train(metadataset, seed=args.seed)
    tuner.info["metadataset"] = Path(args.metadataset).name
    folder = tuner.save(args.out)
    emit({"out": str(folder), "tasks": metadataset.tasks, "runs": tuner.info["runs"]}, args.json)


def _model(name: str):
    from autofm.lm.checkpoint import load_gpt

    model, _ = load_gpt(name)
    return model.float()


def _suggest(args: argparse.Namespace) -> None:
    _require_extras()
    from autofm.finetune.tasks import load_task_csv
    from autofm.finetune.tuning import load_tuner, suggest

    _positive(args.top, "--top")
    task = load_task_csv(args.task)
    tuner = load_tuner(args.tuner)
    ranked = suggest(tuner, _model(args.model), task, args.top)
    rows = ranked.to_dict(orient="records")
    emit({"task": task.name, "kind": task.kind, "portfolio": rows}, args.json,
         ranked.to_string(index=False))  # fmt: skip


def _run(args: argparse.Namespace) -> None:
    _require_extras()
    from autofm.core.runtime import setup_torch
    from autofm.finetune.tasks import load_task_csv
    from autofm.finetune.tuning import load_tuner, tune

    _positive(args.budget, "--budget")
    _positive(args.max_train, "--max-train")
    if args.out:
        _check_new_folder(Path(args.out))
    device = setup_torch(args.threads, args.device)
    task = load_task_csv(args.train, args.test, max_train=args.max_train, seed=args.seed)
    tuner = None if args.strategy == "default" else load_tuner(args.tuner)
    result = tune(_model(args.model), task, args.budget, args.strategy, tuner, refit=args.refit,
                  seed=args.seed, device=device, show_progress=not is_quiet())  # fmt: skip
    metric = "test_accuracy" if task.kind == "classification" else "test_exact_match"
    output = {
        metric: result.test_score,
        "val_score": result.val_score,
        "strategy": args.strategy,
        "config": result.candidates[result.incumbent].to_dict(),
        "configurations_tried": len(result.runs),
        "epochs_trained": len(result.steps),
        "seconds": float(result.steps["elapsed"].iloc[-1]),
    }
    if args.out:
        output["adapter"] = str(_save_adapter(result.best_run, Path(args.out)))
    if args.report:
        from autofm.finetune.report import tune_report

        output["report"] = str(tune_report(result, task.name).save(args.report))
        status(f"report written to {output['report']}")
    emit(output, args.json)


def _check_new_folder(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValidationError(f"{out} already exists; give a new folder for the adapter")
    from autofm.core.io import check_writable

    check_writable(out, "adapter folder", kind="folder")


def _save_adapter(run, out: Path) -> Path:
    """The adapter written to a temporary folder beside `out`, then renamed into place."""
    import os
    import shutil
    import tempfile

    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        run.save_adapter(temporary)
        os.replace(temporary, out)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return out


def _bench(args: argparse.Namespace) -> None:
    _require_extras()
    from autofm.finetune.lodo import run_lodo, summarise
    from autofm.finetune.metadataset import MetaDataset

    _positive(args.seeds, "--seeds")
    metadataset = MetaDataset.load(args.metadataset)
    frame = run_lodo(metadataset, args.strategies, seeds=range(args.seeds))
    summary = summarise(frame)
    if args.report:
        from autofm.finetune.report import regret_report

        path = regret_report(frame, summary, "finetune: leave-one-task-out regret").save(
            args.report
        )
        status(f"report written to {path}")
    emit({"summary": summary.to_dict(orient="records")}, args.json, summary.to_string(index=False))
