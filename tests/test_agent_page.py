"""The agent's SLO page without a browser: history ring, burn rates, SVG, HTML, HTTP, idle state.

The browser tests (tests/test_agent_page_browser.py) drive the same page through Chromium
during a real fault; these pin the arithmetic and the markup on hand-made inputs.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import urllib.error
import urllib.request
from dataclasses import replace
from html.parser import HTMLParser
from typing import Any

import pytest
from gemini_slo.agent import page, svg
from gemini_slo.agent.burn_rates import objective_burns, pair_threshold
from gemini_slo.agent.history import MAX_POINTS, History, HistorySettings, history_settings
from gemini_slo.agent.slo_status import STATE_NO_TRAFFIC, SloStatus
from gemini_slo.agent.store import Store, StoreLimits
from gemini_slo.agent.testing import otlp_request, post_otlp, running_agent, sum_metric
from gemini_slo.agent.windows import Windows
from gemini_slo.contract import agent_series, signals
from gemini_slo.contract.burn_windows import BURN_WINDOWS, Policy, resolve
from gemini_slo.contract.spec import Objective, SloSpec, Workload, default_spec_path, load_spec

SPEC = load_spec(default_spec_path())
CHAT = SPEC.workload("chat")
P95 = CHAT.objective("latency_p95")


class ScriptedStatus(SloStatus):
    """A real SloStatus over an empty store whose lifetime event counts a test sets."""

    def __init__(self, spec: SloSpec) -> None:
        super().__init__(spec, Store(StoreLimits(), windows=Windows()))
        self.counts: dict[tuple[str, str], tuple[float, float]] = {}

    def events(self, workload: Workload, objective: Objective) -> tuple[float, float] | None:
        return self.counts.get((workload.name, objective.name), (0.0, 0.0))


def _scaled(scale: float) -> SloSpec:
    return replace(SPEC, alerting=replace(SPEC.alerting, window_scale=scale, scrape_interval=1.0))


# ---- the ring ---------------------------------------------------------------------------


def test_history_covers_the_longest_alert_window_within_its_bound() -> None:
    """Unscaled: a point a minute over 3 days; the demo's scale 60: a point a second."""
    unscaled = history_settings(SPEC)
    assert unscaled.interval == 60 and unscaled.points == MAX_POINTS
    longest = max(w.long for w in BURN_WINDOWS)
    assert unscaled.span >= longest - unscaled.interval
    demo = history_settings(_scaled(60))
    assert demo.interval == 1 and demo.span >= longest / 60
    assert history_settings(_scaled(3600)).points < MAX_POINTS  # short windows: fewer points


def test_history_is_bounded_and_counts_stay_monotonic() -> None:
    """At most `points` snapshots; a lifetime counter that went down counts as a reset."""
    status = ScriptedStatus(SPEC)
    history = History(status, HistorySettings(interval=1, points=5), clock=lambda: 0.0)
    key = ("chat", "latency_p95")
    readings = [(0, 0), (5, 100), (10, 200), (2, 20), (4, 40), (6, 60), (8, 80)]
    for t, reading in enumerate(readings):
        status.counts[key] = (float(reading[0]), float(reading[1]))
        history.sample(now=float(t))
    assert len(history) == 5
    assert [p.at for p in history.series("chat", "p95")] == [2, 3, 4, 5, 6]
    # 10 bad of 200, then the group was forgotten and counting restarted from 2 of 20.
    counts = [history.counts_before("chat", "latency_p95", t) for t in (2, 3, 6)]
    assert counts == [(2, 10, 200), (3, 12, 220), (6, 18, 280)]
    assert all(math.isnan(p.value) for p in history.series("chat", "p95"))  # no calls: NaN


# ---- burn rates -------------------------------------------------------------------------


def test_burn_rate_is_the_error_ratio_over_the_budget_per_window() -> None:
    """Half the calls bad in the last 60s against a 5% budget burns 10x; older ones do not count.

    The page's threshold is the generated alert's: the fast pair's cap (1/12 of the calls
    bad) over a 5% budget is 1.67x, so 10x is burning."""
    spec = _scaled(60)  # 1h/5m -> 60s/5s
    status = ScriptedStatus(spec)
    history = History(status, HistorySettings(interval=1, points=400), clock=lambda: 0.0)
    key = ("chat", "latency_p95")
    bad = total = 0.0
    for t in range(121):
        if t > 60:  # 10 calls a second, from t=61 on half of them slow
            total += 10
            bad += 5
        elif t > 0:
            total += 10
            bad += 10  # the first minute: every call bad, outside the 60s window at t=120
        status.counts[key] = (bad, total)
        history.sample(now=float(t))
    (p95,) = [b for b in objective_burns(spec, history, CHAT, now=120.0) if b.objective == P95]
    fast = p95.pairs[0]
    assert fast.name == "1h/5m" and fast.policy is Policy.PAGE
    assert fast.long.seconds == 60 and fast.short.seconds == 5
    assert fast.long.burn == pytest.approx(0.5 / 0.05)
    assert fast.short.burn == pytest.approx(0.5 / 0.05)
    assert fast.threshold == pytest.approx(resolve(BURN_WINDOWS[0], 0.05, spec.period).burn_factor)
    assert fast.threshold == pytest.approx((1 / 12) / 0.05, rel=1e-5)
    assert fast.burning  # 10x is above the capped 1.67x page threshold
    slow = p95.pairs[1]  # 6h/30m -> 360s/30s: the ring holds 120s of it
    assert slow.long.covered == pytest.approx(120)
    assert slow.long.burn == pytest.approx((600 + 300) / 1200 / 0.05)  # 15x > 6x
    assert slow.burning


def test_a_loose_objective_burns_at_most_at_every_event_bad() -> None:
    """A 10% budget cannot burn 14.4x: the page uses the contract's resolved factor (the floor,
    1.5x), the same as the generated alert, and every call bad burns past it."""
    assert pair_threshold(SPEC, BURN_WINDOWS[0], 0.10) == pytest.approx(1.5)
    assert pair_threshold(SPEC, BURN_WINDOWS[0], 0.05) == pytest.approx(
        resolve(BURN_WINDOWS[0], 0.05, SPEC.period).burn_factor
    )
    p90 = replace(P95, name="latency_p90", target=0.9, percentile=0.9)
    chat = replace(CHAT, objectives=(p90,))
    spec = replace(_scaled(60), workloads=(chat, *SPEC.workloads[1:]))
    status = ScriptedStatus(spec)
    history = History(status, HistorySettings(interval=1, points=100), clock=lambda: 0.0)
    for t in range(70):
        status.counts[("chat", "latency_p90")] = (10.0 * t, 10.0 * t)
        history.sample(now=float(t))
    (burn,) = objective_burns(spec, history, chat, now=69.0)
    assert burn.pairs[0].long.burn == pytest.approx(10.0) and burn.pairs[0].burning


# ---- SVG --------------------------------------------------------------------------------


def test_svg_chart_gaps_references_and_escaping() -> None:
    """NaN is a gap (two path pieces), references are dashed lines, text is escaped."""
    points = [(0.0, 0.1), (1.0, 0.2), (2.0, math.nan), (3.0, 0.3), (4.0, 0.4)]
    out = svg.line_chart(
        "p95 <&>",
        [svg.Series("p95", points)],
        [svg.Reference("objective 500 ms", 0.5)],
        start=0,
        end=4,
        unit="seconds",
    )
    assert out.startswith("<svg") and out.endswith("</svg>")
    assert "p95 &lt;&amp;&gt;" in out and "<&>" not in out
    (path,) = re.findall(r'<path class="line s0" d="([^"]+)"', out)
    assert path.count("M") == 2
    assert 'class="ref"' in out and "objective 500 ms" in out
    assert "style=" not in out  # the CSP forbids inline styles: classes only
    empty = svg.line_chart("x", [svg.Series("a", [])], [], start=0, end=10, unit="ratio")
    assert "no data yet" in empty


def test_svg_axis_tops_are_round() -> None:
    """The y axis ends on 1, 2, 2.5 or 5 times a power of ten, at or above the data."""
    for value, top in ((0.0, 1.0), (0.42, 0.5), (0.51, 1.0), (17_215, 20_000), (2.2, 2.5)):
        assert svg.nice_axis(value)[0] == pytest.approx(top)


# ---- HTML -------------------------------------------------------------------------------


class _Refs(HTMLParser):
    """Every URL the page would make a browser fetch or follow, and every script."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.scripts = 0
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.scripts += tag == "script"
        self._in_style = tag == "style"
        for name, value in attrs:
            if name in ("src", "href", "action", "data", "xlink:href") and value is not None:
                self.urls.append(value)
            assert name != "style", f"inline style on <{tag}>"
            assert not name.startswith("on"), f"event handler on <{tag}>"

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False


def _render(**options: Any) -> str:
    status = ScriptedStatus(SPEC)
    history = History(status, clock=lambda: 1000.0)
    history.sample()
    return page.render(status, history, now=1000.0, **options)


def test_page_has_a_card_per_workload_and_nothing_to_fetch() -> None:
    """Every workload of the spec has a card; no script, no external URL, one hashed stylesheet."""
    html = _render()
    for workload in SPEC.workloads:
        assert f'data-workload="{workload.name}"' in html
        for objective in workload.objectives:
            assert f'data-objective="{objective.name}"' in html
    refs = _Refs()
    refs.feed(html)
    assert refs.scripts == 0
    assert refs.urls == ["data:,"]  # the empty favicon, so that the browser asks for none
    (style,) = refs.styles
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in page.CONTENT_SECURITY_POLICY
    assert "default-src 'none'" in page.CONTENT_SECURITY_POLICY
    assert '<meta http-equiv="refresh"' in html
    assert 'id="advice" data-available="false"' in html  # no advisor on this agent


class _Advisor:
    def __init__(self, answer: dict[str, Any] | Exception) -> None:
        self.answer = answer

    def advice(self) -> dict[str, Any]:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_advice_card_reads_the_advisor_json_and_escapes_it() -> None:
    """Verdicts in /api/advice's shape are shown; their text is escaped; a failure is a line."""
    answer = {
        "window": "1h",
        "workloads": [
            {
                "name": "chat",
                "declared_mode": "latency",
                "observed_mode": "throughput",
                "mismatch": True,
                "score": 0.61,
                "reasons": ["<script>alert(1)</script> long answers"],
            }
        ],
        "notes": [],
    }
    status = ScriptedStatus(SPEC)
    history = History(status)
    html = _gather(status, history, _Advisor(answer))
    assert 'data-workload="chat" data-mismatch="true"' in html and "+0.61" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    broken = _gather(status, history, _Advisor(RuntimeError("boom")))
    assert "The advisor could not answer: RuntimeError: boom" in broken


def _gather(status: SloStatus, history: History, advisor: _Advisor) -> str:
    import asyncio

    return asyncio.run(page.gather(status, history, advisor=advisor))


def test_prometheus_alerts_replace_the_agents_own_view() -> None:
    """With Prometheus' answer the alerts list is Prometheus'; when it fails, the agent's, with why."""
    from gemini_slo.agent.prometheus_alerts import parse_alerts

    payload = {
        "status": "success",
        "data": {
            "alerts": [
                {
                    "labels": {
                        "alertname": "GeminiSloLatencyBurnRate",
                        "severity": "critical",
                        signals.LABEL_WORKLOAD: "chat",
                        agent_series.LABEL_OBJECTIVE: "latency_p95",
                        "burn_window": "1h/5m",
                    },
                    "annotations": {"summary": "chat: latency_p95 burning"},
                    "state": "firing",
                    "activeAt": "2026-01-01T00:00:00Z",
                }
            ]
        },
    }
    alerts = parse_alerts(payload)
    html = _render(prometheus=page.PrometheusAlerts("http://127.0.0.1:9", alerts))
    chat = html[html.index('data-workload="chat"') : html.index('data-workload="batch"')]
    assert 'data-alert="GeminiSloLatencyBurnRate"' in chat and 'data-source="prometheus"' in chat
    failed = _render(prometheus=page.PrometheusAlerts("http://127.0.0.1:9", error="refused"))
    assert 'data-source="agent"' in failed and "Prometheus unavailable: refused" in failed


# ---- over HTTP, and the idle state ------------------------------------------------------


def _get(url: str, token: str | None = None) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


def test_page_over_http_with_the_same_token_rule_as_the_api() -> None:
    """GET / needs the bearer token when one is set, and carries the CSP."""
    with running_agent(token="s3cret") as agent:
        assert _get(agent.base_url + "/")[0] == 401
        assert _get(agent.base_url + "/", "wrong")[0] == 401
        code, headers, body = _get(agent.base_url + "/", "s3cret")
        assert code == 200 and headers["Content-Type"].startswith("text/html")
        assert headers["Content-Security-Policy"] == page.CONTENT_SECURITY_POLICY
        assert 'data-workload="chat"' in body and 'data-workload="batch"' in body


CALL = {
    signals.ATTR_WORKLOAD: "chat",
    signals.ATTR_MODE: "latency",
    signals.ATTR_REQUEST_MODEL: "gemini-2.5-flash",
    signals.ATTR_OUTCOME: "ok",
}


def test_an_idle_workload_is_no_traffic_neither_met_nor_failed() -> None:
    """batch without calls: every objective 'no traffic', met null, no met series; chat measured."""
    with running_agent() as agent:
        body = otlp_request([sum_metric(signals.CALLS.name, [(CALL, 9)])]).SerializeToString()
        assert post_otlp(agent.otlp_url + "/v1/metrics", body)[0] == 200
        status = {w["name"]: w for w in agent.slo()["workloads"]}
        metrics = agent.scrape()
    batch, chat = status["batch"], status["chat"]
    assert batch["traffic"] is False and batch["healthy"] is None
    assert {o["state"] for o in batch["objectives"]} == {STATE_NO_TRAFFIC}
    assert all(o["met"] is None and o["value"] is None for o in batch["objectives"])
    assert batch["tokens_per_second"] == {"1m": None, "5m": None}
    assert chat["traffic"] is True
    assert chat["objectives"][0]["state"] in ("met", "not met", "no data")
    availability = next(o for o in chat["objectives"] if o["name"] == "availability")
    assert availability["met"] is True and availability["state"] == "met"
    met = [
        line for line in metrics.splitlines() if line.startswith(agent_series.AGENT_OBJECTIVE_MET)
    ]
    assert met and all('gemini_slo_workload="chat"' in line for line in met)


def test_status_check_passes_on_an_idle_workload(capsys: pytest.CaptureFixture[str]) -> None:
    """`gemini-slo status --check`: an idle workload prints 'no traffic' and does not fail."""
    import argparse

    from gemini_slo.cli import status as status_cli

    parser = argparse.ArgumentParser()
    status_cli.add_arguments(parser)
    with running_agent() as agent:
        assert status_cli.run(parser.parse_args(["--agent", agent.base_url, "--check"])) == 0
        out = capsys.readouterr().out
        assert "no traffic" in out and "NO" not in out
        data = agent.slo()
    assert json.dumps(data)  # plain JSON, no NaN
