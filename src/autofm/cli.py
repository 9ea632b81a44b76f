"""The `autofm` command: one subcommand group per system; thin (parse, call the API, print).

Bad input prints one line on stderr and exits with code 2 (a traceback only with --debug).
Every command that reports numbers takes --json and then prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import platform
import sys

from autofm import __version__
from autofm.core.cli import EXIT_BAD_INPUT, add_out, check_outputs
from autofm.core.errors import AutofmError
from autofm.core.output import emit
from autofm.core.progress import set_quiet


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, as for every other bad input
        self.exit(EXIT_BAD_INPUT, f"autofm: error: {message} (see `{self.prog} --help`)\n")


def common_options() -> argparse.ArgumentParser:
    """Options every command accepts: --json, --quiet, --debug (usable after the subcommand)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    common.add_argument("--quiet", action="store_true", help="no progress bars or messages")
    common.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    return common


def _cmd_doctor(args: argparse.Namespace) -> None:
    from autofm.core.checkpoint import checkpoint_dirs, list_pretrained
    from autofm.core.runtime import device_summary, setup_torch
    from autofm.data.paths import shared_data_candidates, shared_data_dir
    from autofm.systems import available_systems

    setup_torch()
    versions = {"python": platform.python_version(), "autofm": __version__}
    for package in ("numpy", "scipy", "pandas", "scikit-learn", "torch", "safetensors", "optuna"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    data_dir = shared_data_dir(required=False)
    result = {
        "versions": versions,
        "devices": device_summary(),
        "checkpoint_dirs": [str(p) for p in checkpoint_dirs()],
        "pretrained": list_pretrained(),
        "data_dir": str(data_dir) if data_dir else None,
        "data_dirs_searched": [str(p) for p in shared_data_candidates()],
        "systems": [name for name, _ in available_systems("cli")],
    }
    lines = ["versions:"] + [f"  {k}: {v}" for k, v in versions.items()]
    lines += ["devices:"] + [f"  {k}: {v}" for k, v in result["devices"].items()]
    lines += [
        f"checkpoints looked for in: {', '.join(result['checkpoint_dirs'])}",
        f"pretrained: {', '.join(result['pretrained']) or 'none'}",
        f"benchmark data: {result['data_dir'] or 'not found (set AUTOFM_DATA)'}",
        f"systems: {', '.join(result['systems']) or 'none yet'}",
    ]
    emit(result, args.json, "\n".join(lines))


def _cmd_tour(args: argparse.Namespace) -> None:
    from autofm.tour import run_tour

    result = run_tour(args.out, seed=args.seed, only=args.only)
    lines = [
        f"{'ok ' if r['ok'] else 'FAIL'} {name:<10} {r['summary']}"
        for name, r in result["steps"].items()
    ]
    lines.append(f"report: {result['report']}")
    emit(result, args.json, "\n".join(lines))
    if not all(r["ok"] for r in result["steps"].values()):
        sys.exit(1)


def build_parser() -> argparse.ArgumentParser:
    from autofm.systems import available_systems

    common = common_options()
    parser = _Parser(
        prog="autofm",
        description="AutoML research systems as tested, benchmarked tools.",
        parents=[common],
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"autofm {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    doctor = subparsers.add_parser(
        "doctor", parents=[common], help="versions, devices, data and checkpoint paths"
    )
    doctor.set_defaults(func=_cmd_doctor)

    tour = subparsers.add_parser(
        "tour", parents=[common], help="run every system at small scale; write an HTML report"
    )
    add_out(tour, "output folder (default runs/tour)", kind="folder", default="runs/tour")
    tour.add_argument("--seed", type=int, default=0)
    tour.add_argument("--only", nargs="+", metavar="STEP", help="run only these steps")
    tour.set_defaults(func=_cmd_tour)

    for _, module in available_systems("cli"):
        module.register(subparsers, common)
    return parser


def _one_line(err: BaseException) -> str:
    # the contract is one line on stderr: a message quoting a library's multi-line text is joined
    return "; ".join(line.strip() for line in str(err).splitlines() if line.strip())


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_BAD_INPUT
    set_quiet(args.quiet)
    try:
        check_outputs(args)  # every declared output, before any work
        code = args.func(args)
    except AutofmError as err:
        if args.debug:
            raise
        print(f"autofm: error: {_one_line(err)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("autofm: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if args.debug:
            raise
        print(
            f"autofm: internal error: {type(err).__name__}: {_one_line(err)} "
            "(rerun with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
