"""The ``gemini-slo`` command: one entry point, one subcommand per concern.

Each subcommand is a module of this package with two functions:
``add_arguments(parser: argparse.ArgumentParser) -> None`` and
``run(args: argparse.Namespace) -> int``. They are imported only when their subcommand
runs, so that ``gemini-slo emulate`` does not pay for the dashboard builders.

A ``run`` decorated with :func:`~gemini_slo.cli.errors.reports_errors` turns a
:class:`~gemini_slo.cli.errors.CommandError` into one line on stderr and exit status 2.
Options are never matched by prefix (``--token`` is not ``--token-file``), and an
argument not understood is reported by its option name only: its value may be a secret.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Protocol, cast

from gemini_slo.agent.logs import configure_logging


class _Subcommand(Protocol):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...
    def run(self, args: argparse.Namespace) -> int: ...


# name -> (module, one-line help). The module is imported lazily.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "emulate": ("gemini_slo.cli.emulate", "serve a local Gemini API emulator"),
    "agent": ("gemini_slo.cli.agent", "run the collector agent (OTLP in, /metrics out)"),
    "status": ("gemini_slo.cli.status", "print each workload's SLO status from an agent"),
    "advise": (
        "gemini_slo.cli.advise",
        "which mode each workload really is, objectives to start from",
    ),
    "prices": ("gemini_slo.cli.prices", "the price table, and what a given usage costs"),
    "generate": ("gemini_slo.cli.generate", "generate rules, routes and dashboards from slo.yaml"),
    "load": ("gemini_slo.cli.load", "run a reference latency or throughput load"),
    "demo": ("gemini_slo.cli.demo", "run the whole stack on the example spec"),
}

_HELP = ("-h", "--help")


def _load(name: str) -> _Subcommand | None:
    module_name, _ = SUBCOMMANDS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:  # not built yet; any other missing module is a real error
            return None
        raise
    return cast(_Subcommand, module)


def _global_options() -> argparse.ArgumentParser:
    """The options that stand before the command (a parent of the full parser)."""
    parser = argparse.ArgumentParser(prog="gemini-slo", add_help=False, allow_abbrev=False)
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    parser.add_argument(
        "--log-format",
        default="auto",
        choices=["auto", "json", "console"],
        help="auto: console on a terminal, JSON lines otherwise",
    )
    return parser


def _command(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv``, if any."""
    return next((a for a in argv if a in SUBCOMMANDS), None)


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    """Build the parser; only the subcommand named in ``argv`` is imported."""
    parser = argparse.ArgumentParser(
        prog="gemini-slo",
        description=__doc__.splitlines()[0],
        parents=[_global_options()],
        allow_abbrev=False,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    chosen = _command(argv)
    for name, (_, help_text) in SUBCOMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text, allow_abbrev=False)
        if name == chosen:
            module = _load(name)
            if module is not None:
                module.add_arguments(sp)
    return parser


def _unrecognized(arguments: Sequence[str]) -> str:
    """The error for arguments not understood: option names, never values.

    ``--token SECRET`` or ``--token=SECRET`` (for ``--token-file``) must not print the token.
    """
    names = [a.partition("=")[0] for a in arguments if a.startswith("-")]
    hidden = sum(not a.startswith("-") or "=" in a for a in arguments)
    text = "unrecognized arguments" + (": " + " ".join(names) if names else "")
    if hidden:
        text += f" ({hidden} value{'s' if hidden > 1 else ''} not shown)"
    return text


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    command = _command(argv)
    # An unknown option before the command would make argparse quote the word after it
    # (perhaps a secret) as an invalid command: check what stands there first.
    head = argv[: argv.index(command)] if command else argv
    _, misplaced = _global_options().parse_known_args([a for a in head if a not in _HELP])
    if any(a.startswith("-") for a in misplaced):
        parser.error(_unrecognized(misplaced))
    args, extra = parser.parse_known_args(argv)
    if extra:
        parser.error(_unrecognized(extra))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(args_list)
    args = _parse(parser, args_list)
    configure_logging(level=args.log_level, fmt=args.log_format)
    module = _load(args.command)
    if module is None:
        parser.error(f"'{args.command}' is not available in this build")
    try:
        return module.run(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
