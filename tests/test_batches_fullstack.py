"""Done-when for batch jobs, full stack: a stuck Batch API job raises the queue ticket.

Emulator (batch jobs queue 60 s x time scale 0.3 = 18 s), agent, Prometheus evaluating the
generated rules and Alertmanager routing to our webhook, on the example spec with
``window_scale: 60`` and the batch workload's ``max_queue_time`` at 40 s. ``gemini-slo load
--batch`` submits and polls jobs through the instrumented SDK. Healthy jobs leave the queue
after 18 s: no batch alert. Then the emulator's ``batch_stuck`` fault keeps new jobs
pending: ``GeminiSloBatchJobStuckInQueue`` (warning) must reach the webhook, and nothing may
page for the batch workload.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from gemini_slo.contract import alert_names as names
from gemini_slo.contract import signals as S
from gemini_slo.contract.spec import default_spec_path, load_spec
from gemini_slo.emulator.testing import RemoteEmulator
from gemini_slo.lab import stack as st
from gemini_slo.lab.webhook import ReceivedAlert

pytestmark = [
    pytest.mark.slow,
    pytest.mark.alertmanager,
    pytest.mark.prometheus,
    pytest.mark.timeout(600),
]

QUEUE_LIMIT = "40s"
HEALTHY_S = 40.0
TICKET_TIMEOUT_S = 150.0


def _spec(tmp_path: Path) -> Path:
    text = default_spec_path().read_text()
    assert "max_queue_time: 6h" in text
    path = tmp_path / "batch-slo.yaml"
    path.write_text(text.replace("max_queue_time: 6h", f"max_queue_time: {QUEUE_LIMIT}"))
    return path


def _batch_alert(workload: str) -> Any:
    def match(a: ReceivedAlert) -> bool:
        return a.labels.get(S.LABEL_WORKLOAD) == workload and a.name in (
            names.BATCH_STUCK,
            names.BATCH_FAILURE_BURN,
        )

    return match


def test_stuck_batch_job_raises_the_queue_ticket(require_binary: Any, tmp_path: Path) -> None:
    """Healthy batch jobs: no batch alert. A job stuck in PENDING: the stuck-in-queue
    ticket (warning, objective batch_queue_time) arrives at the webhook; no page."""
    require_binary("prometheus")
    require_binary("prometheus-alertmanager")
    with st.FullStack(
        tmp_path / "stack", spec=_spec(tmp_path), window_scale=60, time_scale=0.3, monitoring=True
    ) as full:
        assert full.stack is not None and full.stack.webhook is not None
        hook = full.stack.webhook
        batch = load_spec(full.spec_path).by_mode(S.Mode.THROUGHPUT)[0]
        assert batch.batch is not None and batch.batch.max_queue_time == 40
        full.start_load(
            "throughput", "--workload", batch.name, "--model", batch.models[0],
            "--batch", "3", "--job-every", "3", "--poll-every", "1",
            name="jobs", duration=400,
        )  # fmt: skip
        started = time.time()
        end = time.monotonic() + HEALTHY_S
        while time.monotonic() < end:
            full.check_alive()
            time.sleep(2)
        early = [a.describe() for a in hook.alerts if _batch_alert(batch.name)(a)]
        assert not early, f"batch alerts while every job was healthy: {early}"
        assert full.stack.query(
            f'{S.BATCH_JOBS_FINISHED.prometheus}{{gemini_slo_workload="batch"}}'
        )

        RemoteEmulator(full.emulator_url).set_fault("batch_stuck", model=batch.models[0])
        stuck_at = time.time()
        ticket = hook.wait_for(
            lambda a: (
                a.name == names.BATCH_STUCK
                and a.firing
                and a.labels.get(S.LABEL_WORKLOAD) == batch.name
            ),
            timeout=TICKET_TIMEOUT_S,
            since=stuck_at,
        )
        active = [f"{a['labels']}" for a in full.stack.alerts()]
        assert ticket is not None, f"no stuck-in-queue ticket; active alerts: {active}"
        assert ticket.severity == names.Severity.WARNING.value
        assert ticket.labels.get("objective") == "batch_queue_time"
        pages = [
            a.describe()
            for a in hook.alerts
            if a.received_at >= started
            and a.firing
            and a.severity == names.Severity.CRITICAL.value
            and a.labels.get(S.LABEL_WORKLOAD) == batch.name
        ]
        assert not pages, f"the batch workload was paged: {pages}"
        print(f"stuck-in-queue ticket {ticket.received_at - stuck_at:.0f}s after the fault")
