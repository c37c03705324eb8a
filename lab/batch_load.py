"""The batch shape of the throughput load: Gemini Batch API jobs instead of online calls.

``gemini-slo load --mode throughput --batch N`` submits one job of ``N`` inline requests
every ``--job-every`` seconds through ``client.aio.batches.create``, polls every job that
has not ended every ``--poll-every`` seconds (``batches.get``), and at the end waits (at
most ``drain_s``) for the jobs still queued or running. The client is instrumented with
``instrument(client, workload, "throughput")``, so every job is recorded by the batch
patch exactly as an app's would be: submitted, time in queue, time to completion, the
terminal state, the tokens and cost of the results (once per job, however often it is
polled). Against the emulator, jobs follow its batch latency model (``--batch-queue-s``,
``--batch-rate`` of ``gemini-slo emulate``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

from gemini_slo.instrumentation import instrument, uninstrument
from gemini_slo.lab.load import LoadConfig, LoadError, make_client

TERMINAL = frozenset(
    {"JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED"}
)


@dataclass(frozen=True, slots=True)
class BatchLoadConfig:
    """The batch shape: requests per job, how often a job is submitted and polled."""

    requests_per_job: int
    job_every_s: float = 10.0
    poll_every_s: float = 1.0

    def __post_init__(self) -> None:
        if self.requests_per_job <= 0:
            raise LoadError("--batch needs a positive number of requests per job")
        if self.job_every_s <= 0 or self.poll_every_s <= 0:
            raise LoadError("--job-every and --poll-every are positive seconds")


@dataclass(slots=True)
class BatchSummary:
    """What the batch load saw: jobs by final state (or still open), requests sent."""

    workload: str
    model: str
    requests_per_job: int
    jobs_submitted: int = 0
    requests_submitted: int = 0
    submit_errors: int = 0
    states: dict[str, int] = field(default_factory=dict)
    open_jobs: int = 0
    elapsed_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The summary as JSON."""
        return {
            "mode": "throughput",
            "shape": "batch",
            "workload": self.workload,
            "model": self.model,
            "requests_per_job": self.requests_per_job,
            "jobs_submitted": self.jobs_submitted,
            "requests_submitted": self.requests_submitted,
            "submit_errors": self.submit_errors,
            "jobs_by_state": dict(sorted(self.states.items())),
            "jobs_open_at_end": self.open_jobs,
            "elapsed_s": round(self.elapsed_s, 3),
        }

    def lines(self) -> list[str]:
        """A short plain-text report."""
        states = ", ".join(f"{k} {v}" for k, v in sorted(self.states.items())) or "none ended"
        return [
            f"batch load: {self.workload} ({self.model}), {self.jobs_submitted} jobs of "
            f"{self.requests_per_job} requests in {self.elapsed_s:.1f}s",
            f"  ended: {states}; still open: {self.open_jobs}; submit errors: {self.submit_errors}",
        ]


def _requests(n: int, job: int, emulator: bool, max_output_tokens: int) -> list[dict[str, Any]]:
    marker = f" [[emulator:output_tokens={max_output_tokens}]]" if emulator else ""
    return [
        {
            "contents": [
                {"parts": [{"text": f"Summarise document {job}-{i}.{marker}"}], "role": "user"}
            ],
            "config": {"max_output_tokens": max_output_tokens},
        }
        for i in range(n)
    ]


async def run_batch_load_async(
    config: LoadConfig, batch: BatchLoadConfig, stop: asyncio.Event | None = None
) -> BatchSummary:
    """Submit and poll batch jobs until the duration ends (or ``stop``), then drain."""
    config = config.resolved()
    stop = stop or asyncio.Event()
    client = make_client(config)
    if config.instrument:
        instrument(client, workload=config.workload, mode="throughput")
    summary = BatchSummary(config.workload, config.model, batch.requests_per_job)
    started = time.monotonic()
    end = started + config.duration_s
    open_jobs: set[str] = set()
    next_submit = started
    count = 0
    try:
        while not stop.is_set():
            now = time.monotonic()
            if now < end and now >= next_submit:
                next_submit += batch.job_every_s
                try:
                    job = await client.aio.batches.create(
                        model=config.model,
                        src=_requests(  # type: ignore[arg-type]
                            batch.requests_per_job,
                            count,
                            bool(config.emulator),
                            config.max_output_tokens,
                        ),
                        config={"display_name": f"{config.workload}-{count}"},
                    )
                    summary.jobs_submitted += 1
                    summary.requests_submitted += batch.requests_per_job
                    if job.name:
                        open_jobs.add(job.name)
                except Exception:  # an API error: counted, the load goes on
                    summary.submit_errors += 1
                count += 1
            await _poll(client, open_jobs, summary)
            if now >= end and (not open_jobs or now >= end + config.drain_s):
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=batch.poll_every_s)
    finally:
        summary.open_jobs = len(open_jobs)
        summary.elapsed_s = time.monotonic() - started
        if config.instrument:
            uninstrument(client)
        await client.aio.aclose()
    return summary


async def _poll(client: Any, open_jobs: set[str], summary: BatchSummary) -> None:
    for name in list(open_jobs):
        try:
            job = await client.aio.batches.get(name=name)
        except Exception:  # a transient error: poll again next time
            continue
        state = getattr(job.state, "value", None)
        if state in TERMINAL:
            open_jobs.discard(name)
            key = str(state).removeprefix("JOB_STATE_").lower()
            summary.states[key] = summary.states.get(key, 0) + 1
