"""``gemini-slo demo``: the whole stack on the example spec, a fault, a page, a resolve.

Then everything stays up, the agent's SLO page first, until Ctrl-C (``--duration`` or
``--exit-after-scenario`` for CI and tests). The phases live in :mod:`gemini_slo.lab.demo`;
this module holds the options.
"""

from __future__ import annotations

import argparse

from gemini_slo.cli.errors import reports_errors


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``gemini-slo demo``."""
    parser.add_argument("--spec", default=None, help="slo.yaml (default: the example spec)")
    parser.add_argument(
        "--window-scale", type=float, default=60.0, help="divide alert windows by this (60)"
    )
    parser.add_argument(
        "--time-scale", type=float, default=0.3, help="emulator latency scale (0.3)"
    )
    parser.add_argument(
        "--healthy-seconds", type=float, default=60.0, help="healthy phase length (60)"
    )
    parser.add_argument(
        "--fault-factor", type=float, default=5.0, help="latency multiplier injected (5)"
    )
    parser.add_argument(
        "--page-timeout", type=float, default=180.0, help="wait this long for the page (180)"
    )
    parser.add_argument(
        "--resolve-timeout", type=float, default=180.0, help="and for the resolve (180)"
    )
    parser.add_argument(
        "--fault-seconds",
        type=float,
        default=60.0,
        help="without Prometheus: how long the fault lasts (60)",
    )
    parser.add_argument("--chat-rate", type=float, default=10.0, help="chat calls/s (10)")
    parser.add_argument(
        "--batch-concurrency", type=int, default=16, help="batch parallel calls (16)"
    )
    parser.add_argument(
        "--no-monitoring", action="store_true", help="leave out Prometheus and Alertmanager"
    )
    parser.add_argument(
        "--batch-jobs",
        type=int,
        default=0,
        metavar="N",
        help="the throughput workload also submits Batch API jobs of N requests (0: none)",
    )
    parser.add_argument("--workdir", default=None, help="keep files here (default: a temp dir)")
    after = parser.add_mutually_exclusive_group()
    after.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="SECONDS",
        help="after the scenario, keep everything running this long (default: until Ctrl-C)",
    )
    after.add_argument(
        "--exit-after-scenario",
        action="store_true",
        help="stop everything as soon as the scenario ends (CI, tests)",
    )


@reports_errors("demo")
def run(args: argparse.Namespace) -> int:
    """Run the demo; 0 when the page arrived and resolved (or without Prometheus, when done)."""
    from gemini_slo.cli.inputs import load_spec_file
    from gemini_slo.lab.demo import run_demo

    if args.spec is not None:
        load_spec_file(args.spec)  # a bad spec is one line, before anything starts

    return run_demo(args)
