"""`autofm fair`: run a search, show conflicts, select a model with weights, write a report."""

from __future__ import annotations

import argparse

from autofm.core.cli import (
    POSITIVE_INT,
    CommandGroup,
    LazyChoices,
    add_out,
    add_report,
    add_seed,
    declare_outputs,
)
from autofm.core.output import emit

DEFAULT_WEIGHTS = "f1=0.5,dsp=0.3,deop=0.2"


def _study_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("study", help="run folder, study .db file, or storage URL")
    parser.add_argument(
        "--name", default="fair", help="study name inside the storage (default fair)"
    )


def _cmd_run(args: argparse.Namespace) -> None:
    from autofm.core.validation import check_columns
    from autofm.data.tables import read_table
    from autofm.fairness.metrics import PAPER_OBJECTIVES
    from autofm.fairness.search import ManyFairHPO, check_objectives
    from autofm.fairness.select import parse_weights

    requested = args.objectives or ",".join(PAPER_OBJECTIVES)
    objectives = check_objectives([o.strip() for o in requested.split(",") if o.strip()])
    parse_weights(args.weights, objectives)  # refused before the search, even without --report
    frame = read_table(args.table)
    check_columns(frame, [args.label, args.protected], "table")
    search = ManyFairHPO(
        model=args.model,
        objectives=objectives,
        sampler=args.sampler,
        n_folds=args.folds,
        test_size=args.test_size,
        keep_protected=args.keep_protected,
        bi_objective_trials=args.bi_trials,
        max_epochs=args.max_epochs,
        n_jobs=args.threads,
        study_name=args.name,
        workdir=args.out,
        random_state=args.seed,
    )
    search.run(
        frame.drop(columns=[args.label]),
        frame[args.label],
        args.protected,
        n_trials=args.trials,
        storage=args.storage,
        privileged=args.privileged,
        positive=args.positive,
    )
    front = search.pareto_front()
    best = {o: float(front[f"val_{o}"].min()) for o in search.objectives_}
    result = {
        "storage": search.storage_url_,
        "study": args.name,
        "trials": len(search.trials()),
        "bi_objective_runs": {m: len(f) for m, f in search.bi_objective_runs().items()},
        "pareto_size": len(front),
        "best_val": best,
    }
    if args.report:
        from autofm.fairness.report import build_report

        result["report"] = str(build_report(search, args.weights).save(args.report))
    human = [
        f"study {args.name} in {search.storage_url_}",
        f"{result['trials']} trials, {len(front)} Pareto-optimal on validation",
        "best on validation: " + ", ".join(f"{k}={v:.4f}" for k, v in best.items()),
    ]
    if args.report:
        human.append(f"report: {result['report']}")
    emit(result, args.json, "\n".join(human))


def _cmd_conflicts(args: argparse.Namespace) -> None:
    from autofm.fairness.search import ManyFairHPO

    search = ManyFairHPO.load(args.study, args.name)
    conflicts = search.conflicts(split=args.split)
    contrast, regret = conflicts["contrast"], conflicts["regret"]
    result = {
        "split": args.split,
        "contrast": {i: contrast.loc[i].to_dict() for i in contrast.index},
        "regret": {m: regret.loc[m].to_dict() for m in regret.index},
        "best": conflicts["best"],
    }
    human = [
        "hypervolume contrast C(i, j) (rows: measured in (1-F1, f_i); columns: run optimised for f_j)",
        contrast.round(3).to_string(),
        "",
        "many- vs bi-objective hypervolume (regret = HV(bi) - HV(many))",
        regret.round(3).to_string(),
        "",
        f"best {args.split} values: "
        + ", ".join(f"{k}={v:.4f}" for k, v in conflicts["best"].items()),
    ]
    emit(result, args.json, "\n".join(human))


def _cmd_select(args: argparse.Namespace) -> None:
    from autofm.fairness.search import ManyFairHPO

    selection = ManyFairHPO.load(args.study, args.name).select(args.weights)
    human = [
        f"selected trial {selection.trial} (score {selection.score:.3f}) with weights "
        + ", ".join(f"{k}={v:.2f}" for k, v in selection.weights.items()),
        f"params: {selection.params}",
        "test: " + ", ".join(f"{k}={v:.4f}" for k, v in selection.test.items()),
        "group rates (test): "
        + ", ".join(
            f"{name} selection {selection.rates[f'selection_rate_{s}']:.2f} "
            f"TPR {selection.rates[f'tpr_{s}']:.2f} base {selection.base_rates[f'base_rate_{s}']:.2f}"
            for s, name in (("priv", "privileged"), ("unpriv", "unprivileged"))
        ),
    ]
    human += [f"RISK {r['risk']}: {r['why']}" for r in selection.risks] or ["no risks flagged"]
    emit(selection.to_dict(), args.json, "\n".join(human))


def _cmd_report(args: argparse.Namespace) -> None:
    from autofm.fairness.report import build_report
    from autofm.fairness.search import ManyFairHPO

    search = ManyFairHPO.load(args.study, args.name)
    path = build_report(search, args.weights, title=f"ManyFairHPO: {args.name}").save(args.out)
    emit({"report": str(path)}, args.json, f"report: {path}")


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add the `fair` command group."""
    models = LazyChoices("autofm.fairness.spaces", "MODELS")  # imports scikit-learn
    samplers = LazyChoices("autofm.core.study", "SAMPLERS")  # imports optuna

    group = CommandGroup(
        subparsers, common, "fair", "ManyFairHPO: many-objective fairness-aware HPO"
    )

    run = group.command("run", "search hyperparameters for error + fairness", _cmd_run)
    run.add_argument("table", help="CSV/TSV/Parquet file")
    run.add_argument("--label", required=True, help="binary label column")
    run.add_argument("--protected", required=True, help="protected attribute column")
    run.add_argument("--privileged", help="privileged value of the protected column (default 1)")
    run.add_argument("--positive", help="favourable label value (default 1)")
    run.add_argument("--model", default="rf", choices=models, metavar="MODEL",
                     help="one of %(choices)s (default rf)")  # fmt: skip
    run.add_argument("--trials", type=int, default=200, help="trials of the many-objective run")
    run.add_argument(
        "--bi-trials",
        type=int,
        default=None,
        help="trials of each bi-objective (1-F1, f) run for conflicts (default: --trials; 0: none)",
    )
    run.add_argument(
        "--objectives",
        help="comma-separated, with f1: f1, dsp, deod, deop, invd (the paper's five, the "
        "default) and deod_max (equalized odds, worst case)",
    )
    run.add_argument("--sampler", default="auto", choices=samplers, metavar="SAMPLER",
                     help="one of %(choices)s (default auto)")  # fmt: skip
    run.add_argument("--folds", type=int, default=3)
    run.add_argument("--test-size", type=float, default=0.25)
    run.add_argument("--keep-protected", action="store_true", help="keep it as a feature")
    run.add_argument("--max-epochs", type=int, default=200, help="MLP epoch cap")
    run.add_argument(
        "--threads",
        type=POSITIVE_INT,
        help="processes fitting a trial's folds at once (default $AUTOFM_THREADS, else this "
        "host's cores shared among the workers of the study running on it)",
    )
    run.add_argument("--storage", help="storage URL (default: SQLite study.db in --out)")
    add_out(run, "run folder (default runs/fair)", kind="folder", default="runs/fair")
    run.add_argument("--name", default="fair", help="study name (default fair)")
    add_seed(run)
    add_report(run, "also write an HTML report here")
    run.add_argument(
        "--weights", default=DEFAULT_WEIGHTS, help="weights for the report's selection"
    )

    conflicts = group.command(
        "conflicts", "hypervolume contrast between fairness metrics", _cmd_conflicts
    )
    _study_arguments(conflicts)
    conflicts.add_argument("--split", default="val", choices=("val", "test"))

    select = group.command("select", "pick a Pareto model with stakeholder weights", _cmd_select)
    _study_arguments(select)
    select.add_argument("--weights", required=True, help="e.g. dsp=0.3,deop=0.2,f1=0.5")

    report = group.command("report", "write an HTML report", _cmd_report)
    _study_arguments(report)
    report.add_argument("out", help="output HTML file")
    declare_outputs(report, out="file")
    report.add_argument("--weights", default=DEFAULT_WEIGHTS, help="weights for the selection")
