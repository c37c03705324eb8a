"""The demo behind ``gemini-slo demo``: the whole system on the example spec, with a fault and a page.

What runs (every process a child of this one, stopped on exit, Ctrl-C or SIGTERM):

1. the emulator (a local Gemini API), the agent with the example spec made fast
   (``alerting.window_scale``: a 1h alert window lasts a minute), and, when the binaries are
   on PATH, Prometheus evaluating the generated rules and Alertmanager with the generated
   routes, every receiver pointed at a webhook of ours that prints each page;
2. both reference workloads: ``chat`` (latency mode, streaming, Poisson arrivals through an
   admission queue) and ``batch`` (throughput mode, long generations, high parallelism);
3. a healthy phase (every objective met, shown by ``gemini-slo status``), then a latency
   regression injected into the chat model (an emulator fault), the pages arriving (the
   first one, then one for every latency and time-to-first-token objective), the fault
   cleared and the alerts resolving;
4. ``gemini-slo status``, then **everything stays up**: the agent's SLO page URL first,
   then Prometheus, Alertmanager and the emulator, with the workloads still running, until
   Ctrl-C (or ``--duration`` seconds; ``--exit-after-scenario`` stops at once, for CI).

The emulator runs at ``--time-scale 0.3``: its default profile models a realistic
gemini-2.5-flash whose p95 time to first token (~0.7 s) breaks the example's 300 ms
objective, and the demo's healthy phase should be healthy.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from gemini_slo.contract import alert_names as names
from gemini_slo.contract import signals as S
from gemini_slo.contract.spec import ObjectiveKind, SloSpec, Workload, load_spec
from gemini_slo.emulator.testing import RemoteEmulator
from gemini_slo.lab import stack as st
from gemini_slo.lab.webhook import ReceivedAlert, WebhookReceiver


def _say(text: str = "") -> None:
    print(text, flush=True)


def _phase(title: str) -> None:
    _say()
    _say(f"== {title}")


def _print_alert(started: float) -> Callable[[ReceivedAlert], None]:
    # Alertmanager re-sends a group's whole state on every change: print transitions only.
    last: dict[frozenset[tuple[str, str]], str] = {}

    def show(alert: ReceivedAlert) -> None:
        key = frozenset(alert.labels.items())
        if last.get(key) == alert.status:
            return
        last[key] = alert.status
        kind = "PAGE" if alert.severity == "critical" else "ticket"
        _say(f"  webhook +{alert.received_at - started:5.1f}s {kind}: {alert.describe()}")

    return show


def _status(full: st.FullStack) -> None:
    result = subprocess.run(
        st.cli_argv("status", "--agent", full.agent_url),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    _say(result.stdout.rstrip() or result.stderr.rstrip())


def _urls(full: st.FullStack) -> None:
    """Where to look, the SLO page first."""
    _say(f"  SLO page      {full.page_url}")
    if full.stack is not None:
        _say(f"  Prometheus    {full.stack.prometheus_url}/alerts")
        if full.stack.alertmanager_url:
            _say(f"  Alertmanager  {full.stack.alertmanager_url}")
    _say(f"  emulator      {full.emulator_url}/_emulator/stats")


def _stay_up(full: st.FullStack, args: argparse.Namespace) -> None:
    """Keep everything running (the loads too) until Ctrl-C or ``--duration`` seconds."""
    if args.exit_after_scenario:
        return
    forever = args.duration is None
    _say(
        "  everything keeps running; Ctrl-C stops it"
        if forever
        else f"  everything keeps running for {args.duration:g}s (--duration); Ctrl-C stops it sooner"
    )
    end = math.inf if forever else time.monotonic() + args.duration
    try:
        while time.monotonic() < end:
            time.sleep(min(2.0, max(0.0, end - time.monotonic())))
            full.restart_finished_loads()
            for proc in (full.emulator, full.agent):
                if proc is not None and not proc.running():
                    raise st.StackError(f"{proc.name} exited:\n{proc.log_tail()}")
    except KeyboardInterrupt:
        _say()


def _first(spec: SloSpec, mode: S.Mode) -> Workload | None:
    workloads = spec.by_mode(mode)
    return workloads[0] if workloads else None


def _page_of(workload: str) -> Callable[[ReceivedAlert], bool]:
    """A latency-mode page of ``workload`` (firing or resolved)."""
    pages = (names.LATENCY_BURN, names.TTFT_BURN, names.AVAILABILITY_BURN)

    def match(alert: ReceivedAlert) -> bool:
        return (
            alert.severity == names.Severity.CRITICAL
            and alert.labels.get(S.LABEL_WORKLOAD) == workload
            and alert.name in pages
        )

    return match


def _objective_pages(workload: Workload) -> dict[str, str]:
    """objective -> alert name of every latency and TTFT objective a latency fault must page."""
    out = {}
    for o in workload.objectives:
        if o.kind is ObjectiveKind.LATENCY:
            out[o.name] = names.LATENCY_BURN
        elif o.kind is ObjectiveKind.TTFT:
            out[o.name] = names.TTFT_BURN
    return out


def _wait_objective_pages(
    hook: WebhookReceiver, workload: Workload, since: float, deadline: float
) -> dict[str, ReceivedAlert]:
    """The first page of each latency and TTFT objective of ``workload``, until ``deadline``."""
    wanted = _objective_pages(workload)
    found: dict[str, ReceivedAlert] = {}
    for objective, alert in wanted.items():

        def match(a: ReceivedAlert, objective: str = objective, alert: str = alert) -> bool:
            return (
                a.firing
                and a.name == alert
                and a.severity == names.Severity.CRITICAL
                and a.labels.get(S.LABEL_WORKLOAD) == workload.name
                and a.labels.get("objective") == objective
            )

        page = hook.wait_for(match, max(0.0, deadline - time.time()), since=since)
        if page is not None:
            found[objective] = page
    return found


def _wait_resolved(
    hook: WebhookReceiver, is_page: Callable[[ReceivedAlert], bool], timeout: float
) -> float | None:
    """Wait until every page that fired has been notified resolved; return when."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        latest: dict[frozenset[tuple[str, str]], ReceivedAlert] = {}
        for alert in hook.alerts:
            if is_page(alert):
                latest[frozenset(alert.labels.items())] = alert
        if latest and all(not a.firing for a in latest.values()):
            return max(a.received_at for a in latest.values())
        time.sleep(1)
    return None


def _wait_quiet(seconds: float, full: st.FullStack) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(min(10.0, max(0.0, end - time.monotonic())))
        for proc in (full.emulator, full.agent, *full.loads):
            if proc is not None and not proc.running():
                raise st.StackError(f"{proc.name} exited:\n{proc.log_tail()}")
        if full.stack is not None:
            generated = "|".join(S.GENERATED_TOKEN_TYPES)
            tokens = full.stack.query_value(
                f'sum(rate({S.TOKENS.prometheus}{{{S.LABEL_TOKEN_TYPE}=~"{generated}"}}[30s]))'
            )
            calls = full.stack.query_value(f"sum(rate({S.CALLS.prometheus}[30s]))")
            if tokens is not None and calls is not None:
                _say(
                    f"  Prometheus sees {calls:.1f} calls/s and {tokens:,.0f} generated tokens/s"
                    " (both workloads, last 30s)"
                )


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo (``args``: the options of ``gemini-slo demo``); 0 when the page arrived and resolved (or without Prometheus, when done)."""
    workdir = (
        Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="gemini-slo-demo-"))
    )
    monitoring: bool | None = False if args.no_monitoring else None
    full = st.FullStack(
        workdir,
        spec=Path(args.spec) if args.spec else None,
        window_scale=args.window_scale,
        time_scale=args.time_scale,
        monitoring=monitoring,
    )
    with st.sigterm_as_exit():
        try:
            return _run(full, args)
        except st.StackError as exc:
            _say(f"demo failed: {exc}")
            return 1
        except KeyboardInterrupt:
            _say("\n  interrupted")
            return 130
        finally:
            _phase("stopping everything")
            full.stop()
            _say(f"  files kept in {workdir}")


def _run(full: st.FullStack, args: argparse.Namespace) -> int:
    _phase(
        "starting the emulator, the agent"
        + (", Prometheus and Alertmanager" if full.monitoring else "")
    )
    if not full.monitoring:
        _say(f"  Prometheus/Alertmanager not used (install them: {st.INSTALL_HINT})")
    full.start()
    _say(f"  SLO page  {full.page_url}  (open it now: it follows the whole demo)")
    _say(f"  agent     OTLP {full.otlp_url}, /metrics and /api/slo at {full.agent_url}")
    if full.stack is not None:
        _say(
            f"  Prometheus {full.stack.prometheus_url}   Alertmanager {full.stack.alertmanager_url}"
        )
    _say(f"  emulator  {full.emulator_url}  (time scale {args.time_scale:g})")
    _say(f"  spec      {full.spec_path} (alert windows divided by {args.window_scale:g})")
    started = time.time()
    if full.stack is not None and full.stack.webhook is not None:
        full.stack.webhook.add_listener(_print_alert(started))

    spec = load_spec(full.spec_path)
    chat, batch = _first(spec, S.Mode.LATENCY), _first(spec, S.Mode.THROUGHPUT)
    if chat is None:
        raise st.StackError(f"{full.spec_path} has no latency-mode workload to inject a fault into")
    # Long enough for the scenario; while the stack stays up afterwards, a load that ends is
    # started again (runs of bounded length: a load keeps every call it made in memory).
    total = args.healthy_seconds + args.page_timeout + args.resolve_timeout + 120
    full.start_load(
        "latency", "--workload", chat.name, "--model", chat.models[0],
        "--rate", f"{args.chat_rate:g}", name=chat.name, duration=total,
    )  # fmt: skip
    shape = f"{chat.name} at {args.chat_rate:g}/s"
    if batch is not None:
        full.start_load(
            "throughput", "--workload", batch.name, "--model", batch.models[0],
            "--concurrency", str(args.batch_concurrency), name=batch.name, duration=total,
        )  # fmt: skip
        shape += f", {batch.name} x{args.batch_concurrency}"
        jobs = getattr(args, "batch_jobs", 0)
        if jobs:  # Batch API jobs of the same workload, for the dashboard's Batch row
            full.start_load(
                "throughput", "--workload", batch.name, "--model", batch.models[0],
                "--batch", str(jobs), "--job-every", "10", name=f"{batch.name}-jobs",
                duration=total,
            )  # fmt: skip
            shape += f" + Batch API jobs of {jobs}"
    full.wait_for_traffic([w.name for w in (chat, batch) if w is not None])
    _phase(f"healthy phase: {shape}, {args.healthy_seconds:.0f}s")
    _wait_quiet(args.healthy_seconds, full)
    _phase("agent status at the end of the healthy phase")
    _status(full)

    model = chat.models[0]
    is_page = _page_of(chat.name)
    emulator = RemoteEmulator(full.emulator_url)
    _phase(f"injecting a latency regression: {model} x{args.fault_factor:g}")
    fault = emulator.set_fault("latency_multiplier", model=model, factor=args.fault_factor)
    fault_at = time.time()
    ok = True
    if full.stack is not None and full.stack.webhook is not None:
        page = full.stack.webhook.wait_for(
            lambda a: a.firing and is_page(a), args.page_timeout, since=fault_at
        )
        if page is None:
            _say(f"  no page within {args.page_timeout:.0f}s (see {full.workdir})")
            ok = False
        else:
            _say(f"  paged {page.received_at - fault_at:.1f}s after the fault: {page.name}")
            # Every percentile objective the fault breaks must page, not only the first.
            pages = _wait_objective_pages(
                full.stack.webhook, chat, fault_at, fault_at + args.page_timeout
            )
            for objective in _objective_pages(chat):
                got = pages.get(objective)
                if got is None:
                    _say(f"  no page for {objective} within {args.page_timeout:.0f}s")
                    ok = False
                else:
                    after = got.received_at - fault_at
                    _say(f"  {objective} paged {after:.1f}s after the fault: {got.name}")
        _phase("agent status during the incident")
        _status(full)
        emulator.clear_fault(fault)
        cleared_at = time.time()
        _phase(f"fault cleared; waiting for every {chat.name} page to resolve")
        if page is not None:
            resolved_at = _wait_resolved(full.stack.webhook, is_page, args.resolve_timeout)
            if resolved_at is None:
                _say(f"  still firing after {args.resolve_timeout:.0f}s")
                ok = False
            else:
                _say(f"  all resolved {resolved_at - cleared_at:.1f}s after the fault cleared")
    else:
        _wait_quiet(args.fault_seconds, full)
        _phase("agent status during the incident")
        _status(full)
        emulator.clear_fault(fault)
        _phase("fault cleared")
        _wait_quiet(min(args.fault_seconds, 30.0), full)

    _phase("gemini-slo status")
    _status(full)
    _phase("where to look")
    _urls(full)
    if full.stack is None:
        _say(
            f"  Prometheus and Alertmanager were not used; install them ({st.INSTALL_HINT})"
            " and run `gemini-slo demo` again to see the page arrive"
        )
    if full.generated is not None:
        _say(f"  Grafana dashboards: {full.generated.root} (*.json; import them into Grafana)")
        for path in full.generated.dashboards:
            _say(f"    {path}")
        _say(f"  rules: {', '.join(str(p) for p in full.generated.rule_files)}")
    _say(f"  agent: {full.agent_url}/metrics and {full.agent_url}/api/slo")
    _stay_up(full, args)
    return 0 if ok else 1
