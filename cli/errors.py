"""The one kind of failure a subcommand reports without a traceback, and how it is reported."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable

Run = Callable[[argparse.Namespace], int]


class CommandError(Exception):
    """A mistake in what the user gave a subcommand: a file it cannot read, an invalid spec.

    The message names the file or option and the problem, never a secret's value.
    """


def reports_errors(command: str) -> Callable[[Run], Run]:
    """Make a subcommand's ``run`` print a CommandError as one line and return 2.

    The line is ``gemini-slo COMMAND: message``. On ``run`` itself, not in the entry point,
    so that ``run()`` called directly (as the tests do) behaves as the command does.
    """

    def decorate(run: Run) -> Run:
        @functools.wraps(run)
        def reporting(args: argparse.Namespace) -> int:
            try:
                return run(args)
            except CommandError as exc:
                print(f"gemini-slo {command}: {exc}", file=sys.stderr)
                return 2

        return reporting

    return decorate
