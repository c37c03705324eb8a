"""``gemini-slo generate``: rules, routes, promtool tests, runbook and dashboards from a spec.

gemini-slo generate --spec slo.yaml --out DIR      # writes DIR/alerts/..., DIR/dashboards/...
gemini-slo generate --check --out .                # exit 1 when committed copies are stale
gemini-slo generate --window-scale 60 --scrape-interval 2s --out /tmp/demo   # short windows
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import structlog
from gemini_slo.cli.errors import CommandError, reports_errors
from gemini_slo.cli.inputs import load_spec_file
from gemini_slo.contract.durations import parse_duration
from gemini_slo.contract.spec import SpecError, default_spec_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``gemini-slo generate``."""
    parser.add_argument(
        "--spec",
        type=Path,
        default=None,
        help="the SLO spec (default: the packaged example, contract/slo.yaml)",
    )
    parser.add_argument("--out", type=Path, default=Path("."), help="output directory (default: .)")
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 and list the files under --out that are stale",
    )
    parser.add_argument(
        "--window-scale",
        type=float,
        default=None,
        help="override alerting.window_scale (divide every alert window; e.g. 60 for demos)",
    )
    parser.add_argument(
        "--scrape-interval",
        default=None,
        help="override alerting.scrape_interval (e.g. 2s; rate windows stay >= 4 scrapes)",
    )


def _duration(text: str) -> float:
    # The spec's own duration grammar, with the option named where the spec names a field.
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise SpecError("--scrape-interval", 0, "", str(exc)) from None
    if seconds <= 0:
        raise SpecError("--scrape-interval", 0, "", "expected a duration > 0")
    return seconds


@reports_errors("generate")
def run(args: argparse.Namespace) -> int:
    """Generate (or check) every artifact; 0 on success, 1 when stale, 2 on a bad spec."""
    from gemini_slo.cli.artifacts import artifacts, stale, write

    log = structlog.get_logger("gemini_slo.generate")
    path = args.spec or default_spec_path()
    spec = load_spec_file(path)
    try:
        alerting = spec.alerting
        if args.window_scale is not None:
            if args.window_scale < 1:
                raise SpecError("--window-scale", 0, "", "expected a number >= 1")
            alerting = dataclasses.replace(alerting, window_scale=args.window_scale)
        if args.scrape_interval is not None:
            alerting = dataclasses.replace(
                alerting, scrape_interval=_duration(args.scrape_interval)
            )
        spec = dataclasses.replace(spec, alerting=alerting)
    except SpecError as exc:  # an override: the same one line as a spec error
        raise CommandError(str(exc)) from None
    files = artifacts(spec)
    if args.check:
        bad = stale(files, args.out)
        for rel in bad:
            print(
                f"stale: {args.out / rel} (run: gemini-slo generate --out {args.out})",
                file=sys.stderr,
            )
        return 1 if bad else 0
    written = write(files, args.out)
    log.info("generated", spec=str(path), out=str(args.out), files=len(written))
    return 0
