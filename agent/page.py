"""The agent's SLO page (``GET /``): one card per workload, readable without Grafana.

Each workload of the spec gets a card: its mode, each objective with what it wants, its
current value, whether it is met and the error budget left (with a bar); the burn rate over
every alert window pair; what is firing; and charts of the agent's in-memory history
(``agent/history.py``). A last card shows the mode advisor's verdicts when the agent has
the advisor (``/api/advice``), and says so when it does not.

Everything is served by the agent in one response: charts are SVG drawn here
(``agent/svg.py``), there is no script, no font, no image to fetch. The
Content-Security-Policy (:data:`CONTENT_SECURITY_POLICY`) forbids every other source: the
one stylesheet is allowed by its hash. The page refreshes itself (``<meta refresh>``).
"""

from __future__ import annotations

import base64
import hashlib
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any, Protocol

from gemini_slo.agent import svg
from gemini_slo.agent.burn_rates import ObjectiveBurn, PairBurn, objective_burns
from gemini_slo.agent.display import (
    CALLS_PER_SECOND,
    COUNT,
    NO_TRAFFIC,
    format_span,
    format_value,
)
from gemini_slo.agent.history import CHART_SPAN, CHART_WINDOW, History
from gemini_slo.agent.prometheus_alerts import ActiveAlert, PrometheusError, fetch_alerts
from gemini_slo.agent.slo_status import STATE_MET, STATE_NOT_MET, STATE_UNBUCKETED, SloStatus
from gemini_slo.contract.burn_windows import Policy
from gemini_slo.contract.durations import format_duration
from gemini_slo.contract.signals import Mode
from gemini_slo.contract.spec import Comparison, ObjectiveKind, SloSpec, Workload

#: Seconds between the page's own reloads.
REFRESH_SECONDS = 10

_STYLE = (
    """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f5f6f8; color: #1f2937;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header.top { background: #fff; border-bottom: 1px solid #e5e7eb; padding: 14px 28px; }
header.top h1 { margin: 0; font-size: 18px; font-weight: 650; }
header.top p { margin: 2px 0 0; color: #6b7280; font-size: 13px; }
main { max-width: 1240px; margin: 0 auto; padding: 20px 28px 8px; }
.card { background: #fff; border: 1px solid #e5e7eb; border-radius: 10px;
  padding: 16px 20px 18px; margin: 0 0 20px; }
.card > header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 8px 10px; }
.card h2 { margin: 0; font-size: 17px; font-weight: 650; }
.card h3 { margin: 16px 0 6px; font-size: 12px; font-weight: 650; color: #6b7280;
  text-transform: uppercase; letter-spacing: .04em; }
.card h3 span { text-transform: none; letter-spacing: 0; font-weight: 400; }
.muted { color: #6b7280; }
.small { font-size: 12px; }
.chip { display: inline-block; padding: 1px 9px; border-radius: 999px; font-size: 12px;
  font-weight: 600; background: #eef0f3; color: #374151; }
.chip.ok, .badge.ok { background: #e7f6ec; color: #176f3a; }
.chip.bad, .badge.bad { background: #fde8e8; color: #b42318; }
.chip.idle, .badge.idle { background: #eef0f3; color: #6b7280; }
.chip.warn { background: #fef3c7; color: #92400e; }
.headline { margin: 6px 0 0; color: #4b5563; }
.headline b { color: #111827; font-weight: 600; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid #f0f1f4; vertical-align: middle; }
th { font-size: 12px; font-weight: 600; color: #6b7280; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.name { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12.5px; }
.badge { display: inline-block; padding: 0 8px; border-radius: 6px; font-size: 12px; font-weight: 600; }
.budget { display: flex; align-items: center; gap: 8px; justify-content: flex-end; }
svg.bar { width: 90px; height: 8px; }
svg.bar .track { fill: #eef0f3; }
svg.bar .fill.ok { fill: #22a55b; } svg.bar .fill.low { fill: #e8a317; } svg.bar .fill.out { fill: #dc2626; }
.budget span.out { color: #b42318; font-weight: 600; }
td.burn { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.burn.burning { background: #fde8e8; color: #b42318; font-weight: 600; }
td.burn.hot { background: #fef3c7; color: #92400e; }
th .sub { display: block; font-weight: 400; color: #9ca3af; }
ul.alerts { list-style: none; margin: 0; padding: 0; }
ul.alerts li { padding: 5px 10px; border-left: 3px solid #d1d5db; margin: 0 0 4px;
  background: #fafafa; border-radius: 0 6px 6px 0; }
ul.alerts li.critical, ul.alerts li.page { border-color: #dc2626; background: #fef2f2; }
ul.alerts li.warning, ul.alerts li.ticket, ul.alerts li.unmet { border-color: #e8a317; background: #fffbeb; }
ul.alerts li.pending { border-style: dashed; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr));
  gap: 10px 22px; margin-top: 6px; }
footer { max-width: 1240px; margin: 0 auto; padding: 0 28px 28px; color: #9ca3af; font-size: 12px; }
"""
    + svg.STYLE
)

#: The hash that lets the page's one stylesheet through the CSP.
STYLE_HASH = "sha256-" + base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()

#: Nothing but this response's own stylesheet: no script, no fetch, no frame, no form.
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src '{STYLE_HASH}'; img-src data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)

#: Headers of every page response.
HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True, slots=True)
class PrometheusAlerts:
    """What Prometheus said (``alerts``) or why it could not be asked (``error``)."""

    url: str
    alerts: tuple[ActiveAlert, ...] = ()
    error: str | None = None


@dataclass(frozen=True, slots=True)
class AdviceView:
    """The mode advisor's JSON (``/api/advice``), or why there is none."""

    available: bool
    advice: Mapping[str, Any] | None = None
    error: str | None = None


# ======================================================================================
# Pieces
# ======================================================================================


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _number_attr(value: float | None) -> str:
    """A data attribute's value: the number with 6 significant digits, '' for none."""
    if value is None or not math.isfinite(value):
        return ""
    return f"{value:.6g}"


def _burn_text(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}×" if value < 100 else f"{value:,.0f}×"


def _budget_bar(remaining: float | None) -> str:
    if remaining is None:
        return '<span class="muted">-</span>'
    share = min(max(remaining, 0.0), 1.0)
    tone = "ok" if remaining >= 0.5 else "low" if remaining > 0 else "out"
    return (
        '<div class="budget">'
        f'<svg class="bar" viewBox="0 0 100 8" role="img" aria-label="{_e(format_value(remaining, "ratio"))} left">'
        '<rect class="track" width="100" height="8" rx="4"/>'
        f'<rect class="fill {tone}" width="{share * 100:.1f}" height="8" rx="4"/></svg>'
        f'<span class="{tone}">{_e(format_value(remaining, "ratio"))}</span></div>'
    )


def _state_badge(state: str) -> str:
    tone = {STATE_MET: "ok", STATE_NOT_MET: "bad", STATE_UNBUCKETED: "bad"}.get(state, "idle")
    return f'<span class="badge {tone}">{_e(state)}</span>'


def _headline(w: Mapping[str, Any]) -> str:
    if not w.get("traffic"):
        return f'<span class="muted">no call finished in the last {_e(w.get("window", ""))} and none in flight</span>'
    parts: list[tuple[str, str]] = []
    if w["mode"] == Mode.LATENCY.value:
        lat = w.get("latency_seconds") or {}
        for p in ("p50", "p95", "p99"):
            parts.append((p, format_value(lat.get(p), "seconds")))
        parts.append(
            ("TTFT p95", format_value((w.get("ttft_seconds") or {}).get("p95"), "seconds"))
        )
    else:
        tps = w.get("tokens_per_second") or {}
        for window, value in tps.items():
            parts.append((f"tokens/s {window}", format_value(value, "tokens_per_second")))
        parts.append(
            ("cost", format_value(w.get("cost_per_million_tokens"), "usd_per_million_tokens"))
        )
    parts.append(("availability", format_value(w.get("availability"), "ratio")))
    parts.append(("calls", format_value(w.get("calls_per_second"), CALLS_PER_SECOND)))
    parts.append(("utilization", format_value(w.get("utilization"), "ratio")))
    return " · ".join(f"{_e(k)} <b>{_e(v)}</b>" for k, v in parts)


def _unbucketed(o: Mapping[str, Any]) -> str:
    """A warning when the incoming histogram has no bucket at the threshold (agent/bucketing.py)."""
    if o.get("threshold_bucketed") is not False or o.get("state") == STATE_UNBUCKETED:
        return ""
    return f' <span class="badge bad" data-unbucketed="true">{_e(STATE_UNBUCKETED)}</span>'


def _objectives_table(w: Mapping[str, Any]) -> str:
    rows = []
    # Batch objectives (agent lifetime) follow the calls' objectives, marked as such.
    for o in (*w.get("objectives", []), *w.get("batch", [])):
        state = o.get("state", "")
        summary = o.get("summary", "")
        if "window" in o:  # a batch objective: its own time frame, said in its row
            summary = f"{summary} (over the {o['window']})"
        rows.append(
            f'<tr data-objective="{_e(o["name"])}" data-state="{_e(state)}" '
            f'data-value="{_number_attr(o.get("value"))}">'
            f'<td class="name">{_e(o["name"])}</td><td>{_e(summary)}</td>'
            f'<td class="num">{_e(format_value(o.get("value"), o.get("unit", "")))}</td>'
            f"<td>{_state_badge(state)}{_unbucketed(o)}</td>"
            f'<td class="num">{_budget_bar(o.get("error_budget_remaining"))}</td></tr>'
        )
    return (
        '<table class="objectives"><thead><tr><th>objective</th><th>wants</th>'
        f'<th class="num">now ({_e(w.get("window", ""))})</th><th>met</th>'
        '<th class="num">error budget left</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _pair_header(spec: SloSpec, pair: PairBurn) -> str:
    a = spec.alerting
    real = f"{format_duration(a.window(pair.window.long))}/{format_duration(a.window(pair.window.short))}"
    scaled = f" (here {real})" if real != pair.name else ""
    return (
        f'<th class="num">{_e(pair.name)} · {_e(pair.policy.value)}'
        f'<span class="sub">alerts above {_e(_burn_text(pair.threshold))}{_e(scaled)}</span></th>'
    )


def _burn_cell(pair: PairBurn) -> str:
    long, short = pair.long.burn, pair.short.burn
    tone = "burning" if pair.burning else "hot" if (long or 0) > pair.threshold else ""
    covered = (
        f" (over {format_duration(round(pair.long.covered))} so far)"
        if pair.long.covered + 1 < pair.long.seconds and long is not None
        else ""
    )
    title = f"long window {_burn_text(long)}, short window {_burn_text(short)}{covered}"
    return (
        f'<td class="burn {tone}" data-pair="{_e(pair.name)}" data-policy="{_e(pair.policy.value)}" '
        f'data-burn-long="{_number_attr(long)}" data-burn-short="{_number_attr(short)}" '
        f'data-threshold="{_number_attr(pair.threshold)}" '
        f'data-burning="{"true" if pair.burning else "false"}" title="{_e(title)}">'
        f'{_e(_burn_text(long))} <span class="muted">/ {_e(_burn_text(short))}</span></td>'
    )


def _burn_table(spec: SloSpec, burns: Sequence[ObjectiveBurn]) -> str:
    if not burns:
        return '<p class="muted small">No objective with an error budget.</p>'
    head = "".join(_pair_header(spec, p) for p in burns[0].pairs)
    rows = "".join(
        f'<tr data-objective="{_e(b.objective.name)}"><td class="name">{_e(b.objective.name)}</td>'
        + "".join(_burn_cell(p) for p in b.pairs)
        + "</tr>"
        for b in burns
    )
    return (
        f'<table class="burns"><thead><tr><th>objective</th>{head}</tr></thead>'
        f"<tbody>{rows}</tbody></table>"
        '<p class="muted small">Burn rate over the long / short window: how many times faster '
        "than the budget allows the objective spends it; a pair alerts when both are above its "
        "threshold.</p>"
    )


def _agent_alerts(w: Mapping[str, Any], burns: Sequence[ObjectiveBurn]) -> list[str]:
    """One line per objective burning (its pairs, page first), one per unmet floor or ceiling."""
    items = []
    for b in burns:
        burning = b.burning
        if not burning:
            continue
        pages = [p for p in burning if p.policy is Policy.PAGE]
        fastest = (pages or list(burning))[0]
        where = "; ".join(
            f"{policy.value}: {', '.join(p.name for p in burning if p.policy is policy)}"
            for policy in Policy
            if any(p.policy is policy for p in burning)
        )
        items.append(
            f'<li class="{"page" if pages else "ticket"}" data-objective="{_e(b.objective.name)}" '
            f'data-pairs="{_e(" ".join(p.name for p in burning))}" data-state="burning">'
            f"<b>{_e(b.objective.name)}</b> burning its budget over {_e(where)}: "
            f"{_e(_burn_text(fastest.long.burn))} / {_e(_burn_text(fastest.short.burn))} over "
            f"{_e(fastest.name)}, above {_e(_burn_text(fastest.threshold))}</li>"
        )
    for o in w.get("objectives", []):
        if o.get("state") == STATE_NOT_MET and o.get("error_budget_remaining") is None:
            items.append(
                f'<li class="unmet" data-objective="{_e(o["name"])}" data-state="not met">'
                f"<b>{_e(o['name'])}</b> not met: "
                f"{_e(format_value(o.get('value'), o.get('unit', '')))} "
                f"(wants {_e(o.get('summary', ''))})</li>"
            )
    return items


def _prometheus_alerts(workload: str, prometheus: PrometheusAlerts) -> list[str]:
    items = []
    for a in prometheus.alerts:
        if a.workload != workload:
            continue
        where = " ".join(x for x in (a.objective, a.burn_window) if x)
        items.append(
            f'<li class="{_e(a.severity)} {_e(a.state)}" data-alert="{_e(a.name)}" '
            f'data-objective="{_e(a.objective or "")}" data-state="{_e(a.state)}">'
            f"<b>{_e(a.name)}</b> {_e(where)} · {_e(a.state)} · {_e(a.severity)}"
            + (f'<br><span class="muted small">{_e(a.summary)}</span>' if a.summary else "")
            + "</li>"
        )
    return items


def _alerts_section(
    w: Mapping[str, Any], burns: Sequence[ObjectiveBurn], prometheus: PrometheusAlerts | None
) -> str:
    if prometheus is not None and prometheus.error is None:
        items = _prometheus_alerts(w["name"], prometheus)
        source = f"Prometheus at {prometheus.url} (pending and firing)"
    else:
        items = _agent_alerts(w, burns)
        source = "computed by the agent: burning pairs and unmet floors and ceilings"
        if prometheus is not None:
            source += f" (Prometheus unavailable: {prometheus.error})"
    body = "".join(items) or '<li class="quiet">nothing firing</li>'
    return (
        f'<h3>Alerts <span class="muted small">{_e(source)}</span></h3>'
        f'<ul class="alerts" data-source="{"prometheus" if prometheus and not prometheus.error else "agent"}">'
        f"{body}</ul>"
    )


def _refs(workload: Workload, kinds: Iterable[ObjectiveKind]) -> list[svg.Reference]:
    """The objectives' thresholds as reference lines, in the chart's unit."""
    out = []
    for kind in kinds:
        for o in workload.of_kind(kind):
            if kind is ObjectiveKind.AVAILABILITY:
                # Charted as the failed share: the line is what availability allows to fail.
                failed = round(1 - o.threshold, 12)
                out.append(
                    svg.Reference(f"availability: ≤ {format_value(failed, 'ratio')} failed", failed)
                )
                continue
            sign = "≤" if o.comparison is Comparison.AT_MOST else "≥"
            label = f"{o.name} {sign} {format_value(o.threshold, o.unit.value)}"
            out.append(svg.Reference(label, o.threshold))
    return out


def _chart_start(history: History, now: float) -> float:
    return max(history.started or now, now - CHART_SPAN)


def _charts(workload: Workload, history: History, now: float) -> str:
    start = _chart_start(history, now)

    def series(*columns: tuple[str, str]) -> list[svg.Series]:
        return [
            svg.Series(
                label, [(p.at, p.value) for p in history.series(workload.name, column, start)]
            )
            for column, label in columns
        ]

    def chart(title: str, lines: list[svg.Series], refs: list[svg.Reference], unit: str) -> str:
        return svg.line_chart(title, lines, refs, start=start, end=now, unit=unit)

    errors = chart(
        f"failed, timed out, shed ({CHART_WINDOW} window)",
        series(("error_ratio", "failed"), ("timeout_ratio", "timed out"), ("shed_ratio", "shed")),
        _refs(workload, (ObjectiveKind.AVAILABILITY, ObjectiveKind.ERROR_RATIO)),
        "ratio",
    )
    in_flight = chart(
        "calls in flight and the concurrency limit",
        # The limit first, so that a workload running at its limit shows its own line on top.
        series(("concurrency_limit", "limit"), ("in_flight", "in flight")),
        [],
        COUNT,
    )
    if workload.mode is Mode.LATENCY:
        charts = [
            chart(
                f"call duration ({CHART_WINDOW} window)",
                series(("p50", "p50"), ("p95", "p95"), ("p99", "p99")),
                _refs(workload, (ObjectiveKind.LATENCY,)),
                "seconds",
            ),
            chart(
                f"time to first chunk ({CHART_WINDOW} window)",
                series(("ttft_p95", "p95")),
                _refs(workload, (ObjectiveKind.TTFT,)),
                "seconds",
            ),
            errors,
            in_flight,
        ]
    else:
        charts = [
            chart(
                f"generated tokens per second ({CHART_WINDOW} window)",
                series(("tokens_per_second", "tokens/s")),
                _refs(workload, (ObjectiveKind.TOKENS_PER_SECOND,)),
                "tokens_per_second",
            ),
            in_flight,
            chart(
                f"cost per 1M tokens ({CHART_WINDOW} window)",
                series(("cost_per_million", "USD per 1M")),
                _refs(workload, (ObjectiveKind.COST_PER_MILLION_TOKENS,)),
                "usd_per_million_tokens",
            ),
            errors,
        ]
    return f'<div class="charts">{"".join(charts)}</div>'


def _workload_card(
    spec: SloSpec,
    workload: Workload,
    *,
    w: Mapping[str, Any],
    history: History,
    prometheus: PrometheusAlerts | None,
    now: float,
) -> str:
    burns = objective_burns(spec, history, workload, now)
    states = [o.get("state") for o in (*w.get("objectives", []), *w.get("batch", []))]
    unmet = states.count(STATE_NOT_MET)
    if not w.get("traffic"):
        chip = f'<span class="chip idle">{NO_TRAFFIC}</span>'
    elif unmet:
        chip = f'<span class="chip bad">{unmet} not met</span>'
    else:
        chip = '<span class="chip ok">every objective met</span>'
    healthy = w.get("healthy")
    return (
        f'<section class="card workload" id="workload-{_e(workload.name)}" '
        f'data-workload="{_e(workload.name)}" data-mode="{_e(workload.mode.value)}" '
        f'data-traffic="{"true" if w.get("traffic") else "false"}" '
        f'data-healthy="{"" if healthy is None else str(healthy).lower()}">'
        f"<header><h2>{_e(workload.name)}</h2>"
        f'<span class="chip">{_e(workload.mode.value)} mode</span>{chip}'
        f'<span class="muted small">{_e(", ".join(workload.models))}</span></header>'
        f'<p class="headline">{_headline(w)}</p>'
        f"<h3>Objectives</h3>{_objectives_table(w)}"
        f"<h3>Burn rates</h3>{_burn_table(spec, burns)}"
        f"{_alerts_section(w, burns, prometheus)}"
        f"<h3>The last {_e(format_span(now - _chart_start(history, now)))}</h3>"
        f"{_charts(workload, history, now)}"
        "</section>"
    )


def _advice_card(view: AdviceView) -> str:
    title = '<header><h2>Mode advisor</h2><span class="muted small">is each workload in the mode its traffic shows?</span></header>'
    if not view.available:
        return (
            f'<section class="card advice" id="advice" data-available="false">{title}'
            '<p class="muted">This agent has no mode advisor (no <code>/api/advice</code>): '
            "an agent with it shows here, per workload, the mode declared in the spec beside "
            "the mode the traffic shows, with the reasons.</p></section>"
        )
    if view.error is not None or view.advice is None:
        return (
            f'<section class="card advice" id="advice" data-available="true">{title}'
            f'<p class="muted">The advisor could not answer: {_e(view.error or "no answer")}</p></section>'
        )
    advice = view.advice
    rows = []
    for w in advice.get("workloads") or []:
        if not isinstance(w, Mapping):
            continue
        mismatch = bool(w.get("mismatch"))
        score = w.get("score")
        reasons = [str(r) for r in (w.get("reasons") or [])]
        rows.append(
            f'<tr data-workload="{_e(w.get("name", ""))}" data-mismatch="{str(mismatch).lower()}">'
            f'<td class="name">{_e(w.get("name", ""))}</td>'
            f"<td>{_e(w.get('declared_mode') or '-')}</td>"
            f"<td>{_e(w.get('observed_mode') or '-')}</td>"
            f'<td class="num">{_e("-" if not isinstance(score, int | float) else f"{score:+.2f}")}</td>'
            f'<td><span class="badge {"bad" if mismatch else "ok"}">{"mismatch" if mismatch else "agrees"}</span></td>'
            f'<td class="small">{_e("; ".join(reasons))}</td></tr>'
        )
    notes = "".join(f"<li>{_e(n)}</li>" for n in advice.get("notes") or [])
    window = advice.get("window", "")
    return (
        f'<section class="card advice" id="advice" data-available="true">{title}'
        "<table><thead><tr><th>workload</th><th>declared</th><th>observed</th>"
        '<th class="num">score</th><th></th><th>why</th></tr></thead>'
        f"<tbody>{''.join(rows) or '<tr><td colspan=6 class=muted>no traffic observed yet</td></tr>'}</tbody></table>"
        f'<p class="muted small">Over the last {_e(window)}; score -1 is latency, +1 throughput.</p>'
        + (f'<ul class="muted small">{notes}</ul>' if notes else "")
        + "</section>"
    )


# ======================================================================================
# The page
# ======================================================================================


def render(
    status: SloStatus,
    history: History,
    *,
    prometheus: PrometheusAlerts | None = None,
    advice: AdviceView | None = None,
    now: float | None = None,
    refresh: int = REFRESH_SECONDS,
    clock: Callable[[], float] = time.time,
) -> str:
    """The whole page as HTML."""
    now = clock() if now is None else now
    report = status.status()
    spec = status.spec
    agent = report["agent"]
    if spec is None:
        cards = '<section class="card"><p>The agent runs without a spec: no workload to show.</p></section>'
        about = "no spec"
    else:
        by_name = {w["name"]: w for w in report["workloads"]}
        cards = "".join(
            _workload_card(
                spec,
                workload,
                w=by_name[workload.name],
                history=history,
                prometheus=prometheus,
                now=now,
            )
            for workload in spec.workloads
        )
        about = f"spec {spec.source} · {spec.period_days}-day period"
        if spec.alerting.window_scale != 1:
            about += f" · alert windows divided by {spec.alerting.window_scale:g}"
    cards += _advice_card(advice or AdviceView(available=False))
    settings = history.settings
    return (
        "<!doctype html>"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta http-equiv="refresh" content="{int(refresh)}">'
        '<link rel="icon" href="data:,">'
        "<title>gemini-slo · SLOs</title>"
        f"<style>{_STYLE}</style></head><body>"
        '<header class="top"><h1>gemini-slo · service level objectives</h1>'
        f"<p>agent up {_e(format_span(agent['uptime_seconds']))} · "
        f"{_e(about)} · values over the last {_e(agent['window'])}, error budget over the "
        f"agent's lifetime · updated {_e(time.strftime('%H:%M:%S', time.localtime(now)))}, "
        f"refreshes every {int(refresh)} s</p></header>"
        f"<main>{cards}</main>"
        "<footer>Everything on this page is served by the agent. Burn rates and charts come "
        f"from its memory: one point every {_e(format_span(settings.interval))}, the last "
        f"{_e(format_span(settings.span))} at most. Prometheus' recording rules are the "
        "source of truth over the SLO period.</footer>"
        "</body></html>"
    )


class AdviceSource(Protocol):
    """What the page needs of the mode advisor: ``/api/advice``'s JSON."""

    def advice(self) -> Mapping[str, Any]:
        """The advisor's answer over its default window."""
        ...


async def gather(
    status: SloStatus,
    history: History,
    *,
    prometheus_url: str | None = None,
    advisor: AdviceSource | None = None,
) -> str:
    """Ask Prometheus (when given) and the advisor (when there is one), then render the page.

    Neither can break the page: a failure becomes a line on it.
    """
    prometheus = None
    if prometheus_url:
        try:
            prometheus = PrometheusAlerts(prometheus_url, await fetch_alerts(prometheus_url))
        except PrometheusError as exc:
            prometheus = PrometheusAlerts(prometheus_url, error=str(exc))
    if advisor is None:
        advice = AdviceView(available=False)
    else:
        try:
            advice = AdviceView(available=True, advice=advisor.advice())
        except Exception as exc:  # the advisor's bug is a line on the page, not a 500
            advice = AdviceView(available=True, error=f"{type(exc).__name__}: {exc}")
    return render(status, history, prometheus=prometheus, advice=advice)
