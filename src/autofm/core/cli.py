"""What every system's command group shares: how it is made, how it behaves without a command,
and the flags that mean the same everywhere.

A system's `cli.register(subparsers, common)` starts with `group = CommandGroup(subparsers,
common, "gam", "help")` and adds commands with `group.command("fit", "help", handler)`. Given
no command, a group prints its help on stderr and exits with 2, like any other bad input.
Shared flags: `--json`, `--quiet`, `--debug` (from `common`), and for the commands that take
them `add_out`, `add_init`, `add_seed`, `add_report`, `add_threads`, `add_max_seconds`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

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


def add_out(parser: argparse.ArgumentParser, help: str, **kwargs) -> None:
    """`--out PATH`: where the command writes its result (a checkpoint stem, a file, a folder)."""
    parser.add_argument("--out", help=help, **kwargs)


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


def add_threads(parser: argparse.ArgumentParser) -> None:
    """`--threads N`: torch threads (default: $AUTOFM_THREADS, else torch's own)."""
    parser.add_argument("--threads", type=int, help="torch threads (default $AUTOFM_THREADS)")


def add_max_seconds(parser: argparse.ArgumentParser, default: float | None = None) -> None:
    """`--max-seconds S`: a wall-clock budget; training stops (and has annealed) by then."""
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=default,
        help="wall-clock budget: stop (annealed, saved) after this many seconds"
        + (f" (default {default:g})" if default else ""),
    )
