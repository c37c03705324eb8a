"""``gemini-slo status``: print each workload's SLO status from a running agent.

::

    gemini-slo status [--agent http://127.0.0.1:9464] [--token-file F] [--json]

Reads ``GET /api/slo`` and prints one table per workload (objective, target, current
value over the agent's 5-minute window, met, error budget left over the agent's lifetime).
A workload without traffic reads "no traffic": neither met nor failed. A latency or TTFT
objective whose incoming histogram has no bucket at its threshold reads "no bucket at the
threshold" (a foreign emitter without ``otel_views``): its SLI cannot be counted. Calls the
price table could not price are named per model ("12% of calls unpriced for model X"), and
a cost objective reads "unpriced calls" (neither met nor failed) while they are too many.
A workload with a ``batch:`` block gets a second table, its batch objectives over the
agent's lifetime ("no batch jobs" until the instrumentation reports one).
Exit status: 0, or 2 when the agent cannot be reached or the token file cannot be read;
with ``--check``, 1 when a measured objective is not met (never for an idle workload).
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from gemini_slo.agent.display import NO_TRAFFIC, UNBUCKETED, format_value
from gemini_slo.cli.errors import reports_errors
from gemini_slo.cli.inputs import read_token_file
from rich.console import Console
from rich.table import Table

DEFAULT_AGENT = "http://127.0.0.1:9464"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``gemini-slo status``."""
    parser.add_argument(
        "--agent", default=DEFAULT_AGENT, help=f"agent base URL (default {DEFAULT_AGENT})"
    )
    parser.add_argument("--token-file", type=Path, default=None, help="bearer token file")
    parser.add_argument("--json", action="store_true", help="print the raw JSON")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when a measured objective is not met"
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")


def fetch_status(agent: str, token: str | None = None, timeout: float = 10.0) -> dict[str, Any]:
    """GET ``{agent}/api/slo`` as a dict."""
    url = agent.rstrip("/")
    if not url.endswith("/api/slo"):
        url += "/api/slo"
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        result: dict[str, Any] = json.loads(response.read())
        return result


def _fmt(value: Any, unit: str) -> str:
    if isinstance(value, bool):
        return "yes" if value else "NO"
    return format_value(None if value is None else float(value), unit)


def _met(objective: dict[str, Any]) -> str:
    if objective.get("state") == NO_TRAFFIC:
        return f"[dim]{NO_TRAFFIC}[/]"
    met = objective.get("met")
    text = "-" if met is None else ("[green]yes[/]" if met else "[red]NO[/]")
    if objective.get("threshold_bucketed") is False:
        # The incoming histogram cannot be counted at the threshold: say it, never "-".
        unbucketed = f"[yellow]{UNBUCKETED}[/]"
        return unbucketed if met is None else f"{text}, {unbucketed}"
    return text


def render(status: dict[str, Any], console: Console) -> None:
    """Print one table per workload."""
    agent = status.get("agent", {})
    console.print(
        f"agent up {agent.get('uptime_seconds', 0):.0f}s, {agent.get('series', 0)} series; "
        f"values over the last {agent.get('window', '5m')}, error budget over the agent's lifetime"
    )
    for workload in status.get("workloads", []):
        mode = workload["mode"]
        headline: list[str] = []
        if mode == "latency":
            lat = workload.get("latency_seconds", {})
            headline = [f"{p} {_fmt(lat.get(p), 'seconds')}" for p in ("p50", "p95", "p99")]
            headline.append(
                f"TTFT p95 {_fmt(workload.get('ttft_seconds', {}).get('p95'), 'seconds')}"
            )
        else:
            tps = workload.get("tokens_per_second", {})
            headline = [f"{w} {_fmt(v, 'tokens_per_second')}" for w, v in tps.items()]
            headline.append(
                f"cost {_fmt(workload.get('cost_per_million_tokens'), 'usd_per_million_tokens')}"
            )
        headline.append(f"availability {_fmt(workload.get('availability'), 'ratio')}")
        headline.append(f"utilization {_fmt(workload.get('utilization'), 'ratio')}")
        if workload.get("traffic") is False:
            headline = [NO_TRAFFIC]
        table = Table(
            title=f"{workload['name']} ({mode} mode): " + ", ".join(headline),
            title_justify="left",
        )
        for column in ("objective", "wants", "current", "met", "budget left"):
            table.add_column(column)
        for o in workload.get("objectives", []):
            table.add_row(
                o["name"],
                o.get("summary", ""),
                _fmt(o.get("value"), o.get("unit", "")),
                _met(o),
                _fmt(o.get("error_budget_remaining"), "ratio"),
            )
        console.print(table)
        _render_batch(workload, console)
        unpriced = workload.get("unpriced") or {}
        for model, share in (unpriced.get("models") or {}).items():
            console.print(
                f"[yellow]{_fmt(share, 'ratio')} of calls unpriced for model {model}[/] "
                "(not in the price table: they cost $0; see `gemini-slo prices`)",
                highlight=False,
            )


def _render_batch(workload: dict[str, Any], console: Console) -> None:
    """The workload's batch objectives (agent lifetime): a table of their own, since their
    time frame is not the calls' 5-minute window."""
    batch = workload.get("batch") or []
    if not batch:
        return
    table = Table(
        title=f"{workload['name']} batch jobs (over the agent's lifetime)", title_justify="left"
    )
    for column in ("objective", "wants", "current", "met", "jobs", "budget left"):
        table.add_column(column)
    for o in batch:
        met = o.get("met")
        text = (
            f"[dim]{o.get('state', '-')}[/]"
            if met is None
            else ("[green]yes[/]" if met else "[red]NO[/]")
        )
        table.add_row(
            o["name"],
            o.get("summary", ""),
            _fmt(o.get("value"), o.get("unit", "")),
            text,
            f"{o.get('jobs', 0):.0f}",
            _fmt(o.get("error_budget_remaining"), "ratio"),
        )
    console.print(table)


@reports_errors("status")
def run(args: argparse.Namespace) -> int:
    """Entry point of ``gemini-slo status``."""
    token = read_token_file(args.token_file) if args.token_file is not None else None
    try:
        status = fetch_status(args.agent, token, args.timeout)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"cannot read the agent's status at {args.agent}: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        render(status, Console())
    unmet = [
        o
        for w in status.get("workloads", [])
        for o in (*w.get("objectives", []), *w.get("batch", []))
        if o.get("met") is False
    ]
    return 1 if unmet and args.check else 0
