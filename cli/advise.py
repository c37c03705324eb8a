"""``gemini-slo advise``: which mode each workload really is, and the objectives to start from.

::

    gemini-slo advise [--agent URL | --prometheus URL] [--spec slo.yaml] [--window 1h]
                      [--format table|yaml|json] [--pool NAME=MODEL,MODEL ...]

From a running agent (``GET /api/advice``; the agent keeps an hour) or from Prometheus
(PromQL over any window it holds). Per workload: its traffic profile, the verdict
(latency, throughput or hybrid) with its score and three strongest reasons, the declared
mode and whether it contradicts the verdict, a proposed split for a hybrid; interference
between workloads that share a model or a pool, with a concurrency cap when the data
supports one; cost what-ifs at the batch and flex prices; and an slo.yaml to start from.

``--format yaml`` prints only that slo.yaml (``gemini-slo generate --spec`` reads it as it
is); ``json`` the whole advice. ``--spec`` names the declared modes (with ``--agent``, the
agent's own spec is used unless one is given). ``--pool shared=m1,m2`` says which models
share a pool (a quota project, provisioned throughput): interference is then looked for
between their workloads too. Exit status: 0; 2 when the source cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from gemini_slo.cli.errors import CommandError, reports_errors
from gemini_slo.cli.inputs import load_spec_file, read_token_file
from gemini_slo.contract.durations import parse_duration
from gemini_slo.contract.spec import SloSpec
from rich.console import Console
from rich.table import Table

DEFAULT_AGENT = "http://127.0.0.1:9464"
DEFAULT_WINDOW = "1h"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``gemini-slo advise``."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--agent", default=None, help=f"agent base URL (default {DEFAULT_AGENT})")
    source.add_argument("--prometheus", default=None, help="Prometheus base URL instead")
    parser.add_argument("--spec", type=Path, default=None, help="slo.yaml naming declared modes")
    parser.add_argument("--window", default=DEFAULT_WINDOW, help="e.g. 15m, 1h, 7d (default 1h)")
    parser.add_argument(
        "--step",
        default=None,
        help="with --prometheus: the sample step (default window/60, >= 15s)",
    )
    parser.add_argument("--format", choices=["table", "yaml", "json"], default="table")
    parser.add_argument(
        "--pool",
        action="append",
        default=[],
        metavar="NAME=MODEL,MODEL",
        help="models that share a pool (repeatable)",
    )
    parser.add_argument("--token-file", type=Path, default=None, help="agent bearer token file")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds (default 30)")


def _pools(items: list[str]) -> dict[str, tuple[str, ...]]:
    pools: dict[str, tuple[str, ...]] = {}
    for item in items:
        name, sep, models = item.partition("=")
        if not sep or not name or not models:
            raise ValueError(f"--pool {item!r}: expected NAME=MODEL,MODEL")
        pools[name] = tuple(m for m in models.split(",") if m)
    return pools


def fetch_advice(
    agent: str,
    window: str,
    pools: dict[str, tuple[str, ...]],
    token: str | None = None,
    timeout: float = 30.0,
) -> dict[str, Any]:
    """GET ``{agent}/api/advice`` as a dict."""
    query = [("window", window)] + [("pool", f"{n}:{','.join(m)}") for n, m in pools.items()]
    url = f"{agent.rstrip('/')}/api/advice?{urllib.parse.urlencode(query)}"
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        result: dict[str, Any] = json.loads(response.read())
        return result


def from_prometheus(
    url: str,
    window: str,
    spec: SloSpec | None,
    pools: dict[str, tuple[str, ...]],
    *,
    step: str | None = None,
    timeout: float = 30.0,
) -> dict[str, Any]:
    """The same advice computed here from Prometheus' answers."""
    from gemini_slo.agent.advice import analyse
    from gemini_slo.agent.traffic_prometheus import http_query, observe
    from gemini_slo.instrumentation import pricing

    seconds = parse_duration(window)
    observed = observe(
        http_query(url, timeout),
        window,
        seconds=seconds,
        step=parse_duration(step) if step else None,
    )
    advice = analyse(observed, spec, pricing.default_table(), window=window, pools=pools)
    return advice.to_json()


def redeclare(advice: dict[str, Any], spec: SloSpec) -> None:
    """Take the declared modes from ``spec`` (the agent's answer used its own spec)."""
    modes = {w.name: w.mode.value for w in spec.workloads}
    for w in advice.get("workloads", []):
        if w["name"] in modes and not w.get("foreign"):
            w["declared_mode"] = modes[w["name"]]
            observed = w["observed_mode"]
            w["mismatch"] = observed != "unknown" and observed != w["declared_mode"]


def _fmt(value: Any, kind: str = "") -> str:
    if value is None:
        return "-"
    v = float(value)
    if kind == "s":
        return f"{v * 1000:,.0f} ms" if v < 10 else f"{v:,.1f} s"
    if kind == "%":
        return f"{v * 100:.0f}%"
    if kind == "$":
        return f"${v:,.4g}"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def _profile_line(p: dict[str, Any]) -> str:
    d = p.get("duration_seconds") or {}
    t = p.get("ttft_seconds") or {}
    out = p.get("output_tokens_per_call") or {}
    inp = p.get("input_tokens_per_call") or {}
    parts = [
        f"{_fmt(p['calls_per_second'])} calls/s",
        f"{_fmt(p['generated_tokens_per_second'])} tok/s",
        f"streamed {_fmt(p['streamed_share'], '%')}",
        f"p95 {_fmt(d.get('p95'), 's')}",
        f"TTFT p95 {_fmt(t.get('p95'), 's')}"
        + (f" ({_fmt(p['ttft_share_of_duration'], '%')} of a call)" if t else ""),
        f"tokens/call in {_fmt(inp.get('p50'))}/{_fmt(inp.get('p95'))}, "
        f"out {_fmt(out.get('p50'))}/{_fmt(out.get('p95'))} (p50/p95)",
        f"burstiness {_fmt(p['burstiness'])}",
        f"in flight {_fmt(p['in_flight_mean'])} mean, {_fmt(p['in_flight_peak'])} peak",
        f"utilization {_fmt(p['utilization'], '%')}",
        f"queue wait p95 {_fmt(p['queue_wait_p95_seconds'], 's')}, shed {_fmt(p['shed_share'], '%')}",
        f"timeouts {_fmt(p['timeout_share'], '%')}, 429 {_fmt(p['rate_limited_share'], '%')}",
        f"cost {_fmt(p['cost_per_million_tokens'], '$')}/1M",
        f"batch-job share {_fmt(p['batch_job_share'], '%')}",
    ]
    return "; ".join(parts)


def render(advice: dict[str, Any], console: Console) -> None:
    """The table view."""
    console.print(
        f"mode advice from the {advice['source']} over {advice['window']} "
        f"({advice['seconds']:.0f} s of data)"
    )
    for note in advice.get("notes", []):
        console.print(f"[yellow]note:[/] {note}")
    table = Table(title="Verdicts", title_justify="left")
    for column in ("workload", "declared", "observed", "score", "why (strongest first)"):
        table.add_column(column)
    for w in advice["workloads"]:
        observed = w["observed_mode"]
        flag = f"[red]{observed} (declared {w['declared_mode']})[/]" if w["mismatch"] else observed
        table.add_row(
            w["name"],
            w["declared_mode"] or "-",
            flag,
            f"{w['score']:+.2f}",
            "\n".join(w["reasons"]),
        )
    console.print(table)
    for w in advice["workloads"]:
        console.print(f"[bold]{w['name']}[/]: {_profile_line(w['profile'])}")
        split = w.get("split")
        if split:
            for part in split["parts"]:
                console.print(
                    f"  split by {split['label']} = {part['value']}: {part['observed_mode']} "
                    f"({part['score']:+.2f}); {_profile_line(part['profile'])}"
                )
        for c in w.get("cost_what_ifs", []):
            if c["tier"] != "standard":
                console.print(
                    f"  at the {c['tier']} price: {_fmt(c['cost_per_million_tokens'], '$')}/1M, "
                    f"{_fmt(c['usd_per_month_at_this_rate'], '$')}/month at this rate "
                    f"(saves {_fmt(c['saving_usd_per_month'], '$')}/month)"
                )
    if advice["interference"]:
        console.print("[bold]Interference[/]")
        for i in advice["interference"]:
            mark = "[red]yes[/]" if i["detected"] else "no"
            console.print(
                f"  {i['latency_workload']} vs {i['other_workload']} (sharing {i['shares']}): "
                f"{mark}: {i['summary']}"
            )
    if advice.get("slo_yaml"):
        console.print(
            "[bold]Objectives to start from[/] (gemini-slo advise --format yaml > slo.yaml)"
        )
        console.print(advice["slo_yaml"], markup=False, highlight=False)


@reports_errors("advise")
def run(args: argparse.Namespace) -> int:
    """Entry point of ``gemini-slo advise``."""
    try:
        parse_duration(args.window)
        if args.step:
            parse_duration(args.step)
        pools = _pools(args.pool)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    spec = load_spec_file(args.spec) if args.spec else None
    token = read_token_file(args.token_file) if args.token_file is not None else None
    try:
        if args.prometheus:
            advice = from_prometheus(
                args.prometheus, args.window, spec, pools, step=args.step, timeout=args.timeout
            )
        else:
            agent = args.agent or DEFAULT_AGENT
            advice = fetch_advice(agent, args.window, pools, token, args.timeout)
            if spec is not None:
                redeclare(advice, spec)
    except (urllib.error.URLError, OSError, ValueError, RuntimeError) as exc:
        where = args.prometheus or args.agent or DEFAULT_AGENT
        print(f"cannot read the advice from {where}: {exc}", file=sys.stderr)
        return 2
    if args.format == "json":
        print(json.dumps(advice, indent=2))
    elif args.format == "yaml":
        print(advice.get("slo_yaml") or "# no workload with enough traffic in the window", end="")
    else:
        render(advice, Console(width=max(Console().width, 120)))
    return 0
