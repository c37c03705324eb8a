"""The mode advisor: rule table, scoring, interference fit, objectives, and known workloads.

The fast tests feed the pure pieces synthetic traffic. The slow ones run known workloads
(``advisor_workloads.py``: a clearly interactive ``chat``, a clearly batch ``batch`` and an
``assistant`` mixing both shapes under one name) through the real SDK, the instrumentation
and the agent, against an emulator whose models sit in capacity pools, and read the
agent's ``/api/advice``, its ``gemini_slo_advice_*`` series and ``gemini-slo advise``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from gemini_slo.agent import advice_objectives as objectives
from gemini_slo.agent.advice import analyse
from gemini_slo.agent.advice_interference import fit_line, interference
from gemini_slo.agent.advice_rules import MIN_CALLS, RULES, Verdict, score
from gemini_slo.agent.traffic import (
    Extras,
    Hist,
    Observed,
    ShapeKey,
    Step,
    Tally,
    Traffic,
    WorkloadInput,
    profile,
)
from gemini_slo.contract import agent_series, signals
from gemini_slo.contract.spec import parse_spec
from prometheus_client.parser import text_string_to_metric_families

HERE = Path(__file__).resolve().parent
GEMINI_SLO = Path(sys.executable).with_name("gemini-slo")


def gemini_slo(*args: str) -> str:
    """Run the installed command (as a user would) and return its standard output."""
    result = subprocess.run(
        [str(GEMINI_SLO), *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


CHAT_MODEL = "gemini-2.5-flash"
BATCH_MODEL = "gemini-2.5-flash-lite"


# ---- the rule table and the score -----------------------------------------------------


def test_every_rule_reads_a_known_figure_and_says_why() -> None:
    """Each rule names a figure Traffic answers to, a reason with the value, and a source."""
    sample = _traffic("x", streamed=True)
    for rule in RULES:
        assert rule.op in (">=", "<=") and rule.weight > 0, rule.id
        assert rule.mode in (Verdict.LATENCY, Verdict.THROUGHPUT), rule.id
        assert "{value}" in rule.reason and rule.source, rule.id
        assert rule.feature in Traffic.__dataclass_fields__ or rule.feature.endswith(
            ("_p50", "_p50_s")
        ), rule.id
        sample.feature(rule.feature)  # answers (None or a number), never raises
    assert len({r.id for r in RULES}) == len(RULES)


def test_score_weighs_the_evidence() -> None:
    """Clear figures give a mode, disagreeing ones hybrid, too little data unknown."""
    chat = {
        "streamed_share": 1.0,
        "ttft_share": 0.8,
        "output_tokens_p50": 40,
        "batch_job_share": 0.0,
    }
    batch = {
        "streamed_share": 0.0,
        "output_tokens_p50": 1500,
        "batch_job_share": 0.95,
        "utilization": 0.9,
    }
    mixed = {
        "streamed_share": 1.0,
        "output_tokens_p50": 1500,
        "batch_job_share": 0.95,
        "ttft_share": 0.1,
    }
    latency, throughput, hybrid = score(chat, 100), score(batch, 100), score(mixed, 100)
    assert latency.verdict is Verdict.LATENCY and latency.score < 0
    assert throughput.verdict is Verdict.THROUGHPUT and throughput.score > 0
    assert hybrid.verdict is Verdict.HYBRID
    assert score(chat, MIN_CALLS - 1).verdict is Verdict.UNKNOWN
    assert "streamed" in latency.reasons()[0]  # the strongest rule first
    assert all("answer" in r or "call" in r or "limit" in r for r in throughput.reasons())
    assert len(throughput.reasons()) == 3
    # The reasons of a verdict argue for it: no latency reason behind a throughput verdict.
    ids = {f.rule.id: f.rule.mode for f in throughput.findings}
    assert all(mode is Verdict.THROUGHPUT for mode in ids.values())


# ---- traffic profiles ------------------------------------------------------------------


def _hist(values: dict[float, float], total: float = 0.0) -> Hist:
    return Hist(values, total)


def _traffic(
    name: str, *, streamed: bool, calls: float = 200, seconds: float = 60.0, model: str = CHAT_MODEL
) -> Traffic:
    """A synthetic workload: streamed short chats, or long non-streamed generations."""
    key = ShapeKey(name, "latency" if streamed else "throughput", model, "generate_content")
    if streamed:
        tally = Tally(
            key,
            calls={"ok": calls},
            tokens={"input": calls * 10, "output": calls * 32},
            cost_usd=calls * 1e-4,
            duration=_hist({0.25: calls * 0.9, 0.5: calls * 0.1}, calls * 0.2),
            ttft=_hist({0.2: calls * 0.9, 0.4: calls * 0.1}, calls * 0.15),
            output_tokens=_hist({64.0: calls}),
            in_flight_mean=2.0,
            in_flight_peak=5.0,
        )
    else:
        tally = Tally(
            key,
            calls={"ok": calls},
            tokens={"input": calls * 10, "output": calls * 1500},
            cost_usd=calls * 6e-4,
            duration=_hist({5.0: calls * 0.5, 10.0: calls * 0.5}, calls * 6.0),
            output_tokens=_hist({1024.0: calls * 0.2, 4096.0: calls * 0.8}),
            in_flight_mean=15.0,
            in_flight_peak=16.0,
        )
    return profile(name, [tally], seconds, declared_mode=key.mode)


def test_profile_figures_follow_their_definitions() -> None:
    """Streamed share, TTFT share, tokens per call, rates and cost come out as defined."""
    chat = _traffic("chat", streamed=True)
    assert chat.streamed_share == pytest.approx(1.0)
    assert chat.ttft_share == pytest.approx(0.15 / 0.2)
    assert chat.calls_per_s == pytest.approx(200 / 60)
    assert chat.generated_tokens_per_s == pytest.approx(200 * 32 / 60)
    assert chat.output_per_call is not None and chat.output_per_call[0] == pytest.approx(32.0)
    assert chat.cost_per_million == pytest.approx(200e-4 / (200 * 42) * 1e6)
    assert chat.shed_share is None  # no queue: no evidence either way
    batch = _traffic("batch", streamed=False)
    assert batch.streamed_share == 0.0 and batch.ttft is None


def test_hist_quantile_interpolates_like_histogram_quantile() -> None:
    """Linear inside the bucket, lower bound 0, +Inf answers the highest finite bound."""
    h = Hist.of((1.0, 2.0), (10, 10, 0))
    assert h.quantile(0.5) == pytest.approx(1.0)
    assert h.quantile(0.75) == pytest.approx(1.5)
    assert Hist.of((1.0,), (0, 4)).quantile(0.9) == pytest.approx(1.0)
    assert Hist({}).quantile(0.5) is None


def test_a_workload_of_two_shapes_is_hybrid_with_a_split() -> None:
    """Chats on one model and long generations on another, one name: hybrid, split by model."""
    tallies = []
    for streamed, model in ((True, CHAT_MODEL), (False, BATCH_MODEL)):
        key = ShapeKey("assistant", "latency", model, "generate_content")
        part = _traffic("assistant", streamed=streamed, model=model)
        tallies.append(_tally_of(part, key))
    observed = Observed(
        "agent", 60.0, (WorkloadInput("assistant", "latency", False, tuple(tallies), Extras()),)
    )
    advice = analyse(observed)
    (w,) = advice.workloads
    assert w.verdict is Verdict.HYBRID and w.mismatch
    assert w.split is not None and w.split.label == "model"
    parts = {value: s.verdict for value, _, s in w.split.parts}
    assert parts == {CHAT_MODEL: Verdict.LATENCY, BATCH_MODEL: Verdict.THROUGHPUT}
    assert "two shapes" in w.reasons[0]
    # Each part gets objectives of its own mode, as one valid spec.
    spec = parse_spec(advice.slo_yaml() or "")
    assert {(x.name, x.mode.value) for x in spec.workloads} == {
        ("assistant-gemini-2-5-flash", "latency"),
        ("assistant-gemini-2-5-flash-lite", "throughput"),
    }


def _tally_of(t: Traffic, key: ShapeKey) -> Tally:
    """Rebuild the tally behind a synthetic traffic (same figures, another key)."""
    streamed = bool(t.streamed_share)
    calls = t.calls
    return Tally(
        key,
        calls=dict(t.outcomes),
        tokens=dict(t.tokens),
        cost_usd=t.cost_usd,
        duration=_hist({0.25: calls * 0.9, 0.5: calls * 0.1}, calls * 0.2)
        if streamed
        else _hist({5.0: calls * 0.5, 10.0: calls * 0.5}, calls * 6.0),
        ttft=_hist({0.2: calls * 0.9, 0.4: calls * 0.1}, calls * 0.15) if streamed else None,
        output_tokens=_hist({64.0: calls})
        if streamed
        else _hist({1024.0: calls * 0.2, 4096.0: calls * 0.8}),
    )


# ---- interference ------------------------------------------------------------------------


def _steps(xs: list[float], ys: list[float | None], *, in_flight: bool) -> tuple[Step, ...]:
    return tuple(
        Step(float(i), 1.0, 10.0, x if in_flight else 1.0, y, y)
        for i, (x, y) in enumerate(zip(xs, ys, strict=True))
    )


def test_fit_and_cap_on_a_known_line() -> None:
    """p95 = 0.2 + 0.02 * in_flight: the slope is found and the cap keeps p95 under 0.3 s."""
    xs = [0, 2, 4, 6, 8, 10, 12, 0, 6, 12]
    ys = [0.2 + 0.02 * x + (0.005 if i % 2 else -0.005) for i, x in enumerate(xs)]
    fit = fit_line(list(zip(xs, ys, strict=True)))
    assert fit is not None and fit.slope == pytest.approx(0.02, rel=0.1) and fit.r2 > 0.95
    chat = _with_steps(_traffic("chat", streamed=True), _steps(xs, ys, in_flight=False))
    batch = _with_steps(
        _traffic("batch", streamed=False), _steps(xs, [None] * len(xs), in_flight=True)
    )
    found = interference(chat, batch, "pool shared", objective_s=0.3)
    assert found.detected and found.cap is not None and found.p95 is not None
    # The largest in-flight count whose fitted p95 stays within the objective: about 5.
    assert found.p95.at(found.cap) <= 0.3 < found.p95.at(found.cap + 1)
    assert found.cap in (4, 5) and f"cap batch at {found.cap}" in found.summary
    flat = interference(
        chat, _with_steps(batch, _steps([3.0] * 10, [None] * 10, in_flight=True)), "-"
    )
    assert not flat.detected and "does not support" in flat.summary


def test_no_interference_when_the_p95_ignores_the_load() -> None:
    """A flat p95 under a varying load: no interference, said with the fit's figures."""
    xs = [0, 4, 8, 12, 0, 4, 8, 12]
    ys = [0.2, 0.21, 0.19, 0.2, 0.21, 0.2, 0.2, 0.19]
    chat = _with_steps(_traffic("chat", streamed=True), _steps(xs, ys, in_flight=False))
    batch = _with_steps(_traffic("batch", streamed=False), _steps(xs, [None] * 8, in_flight=True))
    found = interference(chat, batch, "nothing declared")
    assert not found.detected and found.cap is None and "no interference" in found.summary


def _with_steps(t: Traffic, steps: tuple[Step, ...]) -> Traffic:
    from dataclasses import replace

    return replace(t, steps=steps)


# ---- objectives ----------------------------------------------------------------------------


def test_objectives_round_trip_through_the_spec_and_generate(tmp_path: Path) -> None:
    """The proposed slo.yaml validates as it is and `gemini-slo generate` accepts it."""
    chat = _traffic("chat", streamed=True)
    batch = _traffic("batch", streamed=False)
    text = objectives.document(
        [objectives.entry(chat, Verdict.LATENCY), objectives.entry(batch, Verdict.THROUGHPUT)]
    )
    spec = parse_spec(text)
    c, b = spec.workload("chat"), spec.workload("batch")
    assert c.objective("latency_p95").threshold >= chat.duration.p95  # type: ignore[union-attr,operator]
    assert c.objective("ttft_p95").threshold >= chat.ttft.p95  # type: ignore[union-attr,operator]
    assert c.objective("headroom").threshold == pytest.approx(0.6)
    floor = b.objective("tokens_per_second").threshold
    assert floor == pytest.approx(int(batch.sustained_tokens_per_s * 0.8))
    assert batch.sustained_tokens_per_s == batch.generated_tokens_per_s  # no steps: the window
    assert b.objective("cost_per_million_tokens").threshold >= batch.cost_per_million  # type: ignore[operator]
    assert objectives.workload_name("genai/Gemini 2.5!") == "genai-gemini-2-5"
    path = tmp_path / "slo.yaml"
    path.write_text(text, encoding="utf-8")
    gemini_slo("generate", "--spec", str(path), "--out", str(tmp_path / "out"))
    assert (tmp_path / "out" / "alerts" / "alert_rules.yaml").is_file()
    # Each workload's own fragment is a whole spec too.
    for entry in (objectives.entry(chat, Verdict.LATENCY),):
        assert parse_spec(objectives.fragment(entry)).workloads[0].name == "chat"


# ---- known workloads on the emulator (slow) ------------------------------------------------

SPEC = f"""version: gemini-slo/v1
workloads:
  - {{name: chat, mode: latency, models: [{CHAT_MODEL}], objectives: {{availability: 99%}}}}
  - {{name: batch, mode: throughput, models: [{BATCH_MODEL}]}}
  - {{name: assistant, mode: latency, objectives: {{availability: 99%}}}}
"""
PHASES = [[2, 6], [6, 6], [12, 6], [0, 6]]  # batch workers per phase, seconds


@dataclass
class Run:
    advice: dict[str, Any]
    scrape: str
    table: str
    yaml: str
    prometheus: dict[str, Any] | None = None

    def workload(self, name: str, source: dict[str, Any] | None = None) -> dict[str, Any]:
        return next(w for w in (source or self.advice)["workloads"] if w["name"] == name)

    def pair(self, a: str, b: str, source: dict[str, Any] | None = None) -> dict[str, Any]:
        return next(
            i
            for i in (source or self.advice)["interference"]
            if i["latency_workload"] == a and i["other_workload"] == b
        )


def _run(*, shared: bool, assistant: bool, prometheus: bool = False) -> Run:
    from gemini_slo.agent.testing import running_agent
    from gemini_slo.emulator.capacity import Pool
    from gemini_slo.emulator.profile import load_profile, with_pools
    from gemini_slo.emulator.testing import running_emulator

    if shared:
        pools = {"shared": Pool("shared", capacity=8)}
        members = {CHAT_MODEL: "shared", BATCH_MODEL: "shared"}
    else:
        pools = {"chat": Pool("chat", capacity=8), "batch": Pool("batch", capacity=8)}
        members = {CHAT_MODEL: "chat", BATCH_MODEL: "batch"}
    emulator_profile = with_pools(load_profile(), pools, members)
    with (
        running_emulator(seed=1, profile=emulator_profile, time_scale=0.2, quotas=False) as emu,
        running_agent(parse_spec(SPEC), snapshot_interval=1.0, maintenance_interval=1.0) as agent,
    ):
        stack = None
        if prometheus:
            from gemini_slo.lab.stack import Stack

            stack = Stack([f"127.0.0.1:{agent.agent.metrics_port}"], alertmanager=False).start()
        try:
            config = {
                "emulator": emu.url,
                "endpoint": agent.otlp_url + "/v1/metrics",
                "chat_rate": 20,
                "batch_phases": PHASES,
                "assistant": assistant,
            }
            app = subprocess.run(
                [sys.executable, str(HERE / "advisor_workloads.py"), json.dumps(config)],
                capture_output=True,
                text=True,
                timeout=180,
                check=False,
            )
            assert app.returncode == 0, app.stderr[-3000:]
            time.sleep(1.5)  # a last export and a frame after it
            advice = json.loads(gemini_slo("advise", "--agent", agent.base_url, "--format", "json"))
            table = gemini_slo("advise", "--agent", agent.base_url)
            yaml_text = gemini_slo("advise", "--agent", agent.base_url, "--format", "yaml")
            scraped = agent.scrape()
            from_prometheus = None
            if stack is not None:
                time.sleep(2.0)  # the last scrapes
                window = f"{int(advice['seconds']) + 5}s"
                argv = ["advise", "--prometheus", stack.prometheus_url, "--window", window]
                from_prometheus = json.loads(gemini_slo(*argv, "--step", "1s", "--format", "json"))
        finally:
            if stack is not None:
                stack.stop()
    return Run(advice, scraped, table, yaml_text, from_prometheus)


@pytest.mark.slow
def test_three_known_workloads_get_their_verdicts(tmp_path: Path) -> None:
    """chat: latency, batch: throughput, assistant (both shapes, one name): hybrid, flagged,
    split by model; in separate pools chat and batch do not interfere."""
    run = _run(shared=False, assistant=True)
    chat, batch, mixed = (run.workload(n) for n in ("chat", "batch", "assistant"))
    assert (chat["observed_mode"], chat["mismatch"]) == ("latency", False), chat["reasons"]
    assert (batch["observed_mode"], batch["mismatch"]) == ("throughput", False), batch["reasons"]
    assert (mixed["observed_mode"], mixed["mismatch"]) == ("hybrid", True), mixed["reasons"]
    assert chat["score"] < 0 < batch["score"]
    assert any("streamed" in r for r in chat["reasons"])
    assert any("backlog" in r or "long" in r for r in batch["reasons"])
    assert len(chat["reasons"]) == len(batch["reasons"]) == 3
    parts = {p["value"]: p["observed_mode"] for p in mixed["split"]["parts"]}
    assert mixed["split"]["label"] == "model"
    assert parts == {CHAT_MODEL: "latency", BATCH_MODEL: "throughput"}
    assert chat["profile"]["streamed_share"] == pytest.approx(1.0)
    assert batch["profile"]["streamed_share"] == pytest.approx(0.0)
    assert batch["profile"]["batch_job_share"] > 0.5
    # Separate pools: the batch's load does not move chat's p95.
    pair = run.pair("chat", "batch")
    assert not pair["detected"] and pair["cap_in_flight"] is None, pair["summary"]
    # Cost what-ifs at the batch and flex tiers, from the price table (half price).
    tiers = {c["tier"]: c for c in batch["cost_what_ifs"]}
    assert tiers["batch"]["cost_usd"] == pytest.approx(tiers["standard"]["cost_usd"] * 0.5)
    assert "flex" in tiers
    # The objectives validate and generate as they are.
    spec = parse_spec(run.yaml)
    assert {w.name for w in spec.workloads} >= {"chat", "batch"}
    path = tmp_path / "slo.yaml"
    path.write_text(run.yaml, encoding="utf-8")
    gemini_slo("generate", "--spec", str(path), "--out", str(tmp_path / "out"))
    # The verdict series, for the overview dashboard's row.
    modes = {
        s.labels[signals.LABEL_WORKLOAD]: (s.labels["declared"], s.labels["observed"])
        for f in text_string_to_metric_families(run.scrape)
        for s in f.samples
        if s.name == agent_series.ADVICE_MODE
    }
    assert modes["chat"] == ("latency", "latency")
    assert modes["assistant"] == ("latency", "hybrid")
    assert "assistant" in run.table and "hybrid" in run.table


@pytest.mark.slow
@pytest.mark.prometheus
def test_shared_pool_interference_is_detected_and_capped(require_binary: Any) -> None:
    """chat and batch in one pool: chat's p95 follows batch's in-flight, and a cap is proposed;
    Prometheus as the source gives the same verdicts."""
    require_binary("prometheus")
    run = _run(shared=True, assistant=False, prometheus=True)
    pair = run.pair("chat", "batch")
    assert pair["detected"], pair["summary"]
    assert pair["p95_fit"]["slope_s_per_call"] > 0
    assert isinstance(pair["cap_in_flight"], int) and pair["cap_in_flight"] >= 1, pair["summary"]
    assert f"cap batch at {pair['cap_in_flight']}" in pair["summary"]
    assert "cap batch at" in run.table
    assert run.prometheus is not None
    for name, mode in (("chat", "latency"), ("batch", "throughput")):
        assert run.workload(name, run.prometheus)["observed_mode"] == mode
    from_prometheus = run.pair("chat", "batch", run.prometheus)
    assert from_prometheus["detected"], from_prometheus["summary"]


def test_the_rule_table_in_the_docs_is_the_rule_table() -> None:
    """docs/advisor.md lists every rule with its figure, threshold, mode and weight."""
    text = (HERE.parent / "docs" / "advisor.md").read_text(encoding="utf-8")
    for rule in RULES:
        row = (
            f"| `{rule.id}` | `{rule.feature}` {rule.op} {rule.threshold:g} | "
            f"{rule.mode.value} | {rule.weight:g} |"
        )
        assert row in text, row
    # ...and no row for a rule that is not in the table.
    cells = [[c.strip() for c in line.split("|")[1:-1]] for line in text.splitlines()]
    rows = [c for c in cells if len(c) == 5 and c[2] in ("latency", "throughput")]
    assert len(rows) == len(RULES)


def test_api_advice_needs_the_token_and_answers_json() -> None:
    """/api/advice is behind the agent's token like /api/slo; a bad window is a 400."""
    import urllib.error
    import urllib.request

    from gemini_slo.agent.testing import running_agent

    with running_agent(token="s3cret") as agent:
        url = f"{agent.base_url}/api/advice"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=10)
        assert refused.value.code == 401
        request = urllib.request.Request(url + "?window=5m")
        request.add_header("Authorization", "Bearer s3cret")
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.loads(response.read())
        assert body["source"] == "agent" and body["workloads"] == [] and body["window"] == "5m"
        bad = urllib.request.Request(url + "?window=soon")
        bad.add_header("Authorization", "Bearer s3cret")
        with pytest.raises(urllib.error.HTTPError) as wrong:
            urllib.request.urlopen(bad, timeout=10)
        assert wrong.value.code == 400


# ---- the agent's recorder --------------------------------------------------------------------


def test_the_recorder_turns_store_totals_into_a_window() -> None:
    """Cumulative points at 5 s intervals become the window's calls, steps and in-flight;
    frames past the history are dropped and shapes beyond the bound are left out."""
    from gemini_slo.agent.store import Store
    from gemini_slo.agent.testing import gauge_metric, otlp_request, sum_metric
    from gemini_slo.agent.traffic_recorder import TrafficRecorder

    clock = [1000.0]
    store = Store(clock=lambda: clock[0])
    recorder = TrafficRecorder(store, history=60.0, checkpoint_interval=20.0)

    def attrs(workload: str) -> dict[str, str]:
        return {
            signals.ATTR_WORKLOAD: workload,
            signals.ATTR_MODE: "latency",
            signals.ATTR_OPERATION: "generate_content",
            signals.ATTR_PROVIDER: "gcp.gemini",
            signals.ATTR_REQUEST_MODEL: CHAT_MODEL,
        }

    for i in range(1, 5):
        clock[0] += 5.0
        a = attrs("chat")
        store.ingest(
            otlp_request(
                [
                    sum_metric(
                        signals.CALLS.name,
                        [({**a, signals.ATTR_OUTCOME: "ok"}, 10.0 * i)],
                        time_=i + 2,
                    ),
                    gauge_metric(signals.REQUESTS_IN_FLIGHT.name, [(a, float(i))], time_=i + 2),
                ]
            )
        )
        recorder.sample()
    observed = recorder.observe(3600.0)
    (chat,) = observed.workloads
    assert observed.seconds == pytest.approx(20.0)
    assert sum(chat.tallies[0].calls.values()) == pytest.approx(40.0)
    assert [s.calls for s in chat.extras.steps] == [10.0, 10.0, 10.0, 10.0]
    assert [s.in_flight for s in chat.extras.steps] == [1.0, 2.0, 3.0, 4.0]
    # An hour later only the frames of the history are kept (one at its edge as a base).
    clock[0] += 3600.0
    recorder.sample()
    assert recorder.frames == 2
    # The shape bound: a second workload is not followed, and the advice says so.
    small = TrafficRecorder(store, max_shapes=1)
    b = attrs("batch")
    store.ingest(
        otlp_request(
            [sum_metric(signals.CALLS.name, [({**b, signals.ATTR_OUTCOME: "ok"}, 5.0)], time_=9)]
        )
    )
    seen = small.observe(60.0)
    assert len({w.name for w in seen.workloads}) <= 1 and seen.untracked
    assert any("left out" in n for n in analyse(seen).notes)


def test_steps_are_matched_by_time_when_one_workload_starts_later() -> None:
    """The other workload's steps start later: points pair the same instants, not indexes."""
    xs = [0.0, 4.0, 8.0, 12.0, 16.0, 0.0, 8.0, 16.0]
    chat_steps = tuple(Step(float(i), 1.0, 10.0, 1.0, 0.2, 0.15) for i in range(4)) + tuple(
        Step(float(4 + i), 1.0, 10.0, 1.0, 0.2 + 0.02 * x, 0.15) for i, x in enumerate(xs)
    )
    batch_steps = tuple(Step(float(4 + i), 1.0, 5.0, x, None, None) for i, x in enumerate(xs))
    chat = _with_steps(_traffic("chat", streamed=True), chat_steps)
    batch = _with_steps(_traffic("batch", streamed=False), batch_steps)
    found = interference(chat, batch, "pool shared")
    assert found.detected and found.p95 is not None and found.p95.n == len(xs)
    assert found.p95.slope == pytest.approx(0.02)
