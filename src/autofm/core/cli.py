"""What every system's command group shares: how it is made, how it behaves without a command,
and the flags that mean the same everywhere.

A system's `cli.register(subparsers, common)` starts with `group = CommandGroup(subparsers,
common, "gam", "help")` and adds commands with `group.command("fit", "help", handler)`. Given
no command, a group prints its help on stderr and exits with 2, like any other bad input.
Shared flags: `--json`, `--quiet`, `--debug` (from `common`), and for the commands that take
them `add_out`, `add_init`, `add_seed`, `add_report`, `add_threads`, `add_max_seconds`.

Every argument a command writes to is declared with its kind (`add_out(..., kind=...)`,
`add_report`, or `declare_outputs` for the others); `check_outputs` checks them all before the
command starts, so a path that cannot be written fails in one line before any work. Numbers
that must be positive parse with `POSITIVE_INT`, `POSITIVE_FLOAT`, ... (`number_type`).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Iterator

EXIT_BAD_INPUT = 2


class CommandGroup:
    """One system's `autofm <name> COMMAND` group."""

    def __init__(
        self,
        subparsers: argparse._SubParsersAction,
        common: argparse.ArgumentParser,
        name: str,
        help: str,
    ):
        self.common = common
        # no prefix matching: `--h 5` must not run `--help`, an abbreviation must not guess
        self.parser = subparsers.add_parser(
            name, parents=[common], help=help, description=help, allow_abbrev=False
        )
        self.commands = self.parser.add_subparsers(
            dest=f"{name}_command", metavar="COMMAND", parser_class=type(self.parser)
        )
        self.parser.set_defaults(func=self._no_command)

    def _no_command(self, args: argparse.Namespace) -> int:
        self.parser.print_help(sys.stderr)
        return EXIT_BAD_INPUT

    def command(
        self, name: str, help: str, handler: Callable[[argparse.Namespace], int | None]
    ) -> argparse.ArgumentParser:
        """Add `autofm <group> <name>`, run by `handler(args)`; return its parser for flags."""
        parser = self.commands.add_parser(
            name, parents=[self.common], help=help, description=help, allow_abbrev=False
        )
        parser.set_defaults(func=handler)
        return parser


class LazyChoices:
    """argparse `choices` read from `module.attribute` when first needed (checking a value,
    printing help), so that building the parser does not import the module. Give the argument
    a `metavar` too: argparse lists the choices in the usage line otherwise."""

    def __init__(self, module: str, attribute: str):
        self.module, self.attribute = module, attribute

    def _values(self) -> tuple:
        return tuple(getattr(importlib.import_module(self.module), self.attribute))

    def __contains__(self, value: object) -> bool:
        return value in self._values()

    def __iter__(self) -> Iterator:
        return iter(self._values())

    def __len__(self) -> int:
        return len(self._values())


def number_type(
    *, minimum: float | None = None, exclusive: bool = False, integer: bool = False
) -> Callable[[str], float | int]:
    """An argparse `type` that accepts a finite number (an integer if `integer`) ≥ `minimum`
    (> if `exclusive`); anything else is a one-line argparse error naming the flag."""

    def parse(text: str) -> float | int:
        # imported here: building the parser stays light (numpy only when a value is parsed)
        from autofm.core.errors import ValidationError
        from autofm.core.validation import check_number, number_requirement

        try:
            value = int(text) if integer else float(text)
            return check_number(value, "it", minimum=minimum, exclusive=exclusive, integer=integer)
        except (ValueError, ValidationError):
            requirement = number_requirement(minimum, exclusive, integer)
            raise argparse.ArgumentTypeError(f"must be {requirement}, got {text!r}") from None

    return parse


POSITIVE_INT = number_type(minimum=1, integer=True)
NON_NEGATIVE_INT = number_type(minimum=0, integer=True)
POSITIVE_FLOAT = number_type(minimum=0, exclusive=True)
NON_NEGATIVE_FLOAT = number_type(minimum=0)


def declare_outputs(parser: argparse.ArgumentParser, **kinds: str) -> None:
    """Declare arguments of `parser` (by dest) that name outputs, each with its kind: "file",
    "folder" or "checkpoint" (a stem); `check_outputs` checks them before the command runs."""
    from autofm.core.io import OUTPUT_KINDS

    unknown = {kind for kind in kinds.values() if kind not in OUTPUT_KINDS}
    if unknown:
        raise ValueError(f"output kinds must be among {OUTPUT_KINDS}, got {sorted(unknown)}")
    declared = dict(parser.get_default("output_kinds") or {})
    declared.update(kinds)
    parser.set_defaults(output_kinds=declared)


def check_outputs(args: argparse.Namespace) -> None:
    """ValidationError (one line) for the first declared output of the command that cannot be
    written; nothing is created."""
    from autofm.core.io import check_writable

    for dest, kind in (getattr(args, "output_kinds", None) or {}).items():
        value = getattr(args, dest, None)
        if value is not None:
            name = "output" if dest == "out" else dest.replace("_", "-")
            check_writable(value, f"{name} {kind}", kind)


def add_out(parser: argparse.ArgumentParser, help: str, *, kind: str, **kwargs) -> None:
    """`--out PATH`: where the command writes its result, of `kind` "checkpoint" (a stem),
    "file" or "folder" (checked before the command runs)."""
    parser.add_argument("--out", help=help, **kwargs)
    declare_outputs(parser, out=kind)


def add_init(parser: argparse.ArgumentParser, help: str | None = None) -> None:
    """`--init CHECKPOINT`: start training from these weights (a shipped name or a path)."""
    parser.add_argument(
        "--init", help=help or "start from the weights of this checkpoint (a shipped name or path)"
    )


def add_seed(parser: argparse.ArgumentParser, default: int = 0) -> None:
    """`--seed N`: every random choice of the command follows it."""
    parser.add_argument(
        "--seed", type=int, default=default, help=f"random seed (default {default})"
    )


def add_report(parser: argparse.ArgumentParser, help: str | None = None) -> None:
    """`--report PATH`: also write a self-contained HTML report there."""
    parser.add_argument("--report", help=help or "write a self-contained HTML report here")
    declare_outputs(parser, report="file")


def add_threads(parser: argparse.ArgumentParser) -> None:
    """`--threads N`: torch threads (default: $AUTOFM_THREADS, else torch's own)."""
    parser.add_argument(
        "--threads", type=POSITIVE_INT, help="torch threads (default $AUTOFM_THREADS)"
    )


def add_max_seconds(parser: argparse.ArgumentParser, default: float | None = None) -> None:
    """`--max-seconds S`: a wall-clock budget; training stops (and has annealed) by then."""
    parser.add_argument(
        "--max-seconds",
        type=NON_NEGATIVE_FLOAT,
        default=default,
        help="wall-clock budget: stop (annealed, saved) after this many seconds"
        + (f" (default {default:g})" if default else ""),
    )
