"""The Batch API: jobs of inline requests, their states on a latency model of their own,
their faults, and their ground truth.

The Gemini Developer API runs a batch job asynchronously: ``batchGenerateContent`` answers
at once with the job (an Operation whose ``metadata`` is the batch) in
``BATCH_STATE_PENDING``; the job waits in a queue, runs its requests, and ends
``SUCCEEDED`` (the responses inline in ``metadata.output.inlinedResponses``), ``FAILED``,
``CANCELLED`` or ``EXPIRED``. google-genai 3.x maps ``BATCH_STATE_*`` to its ``JOB_STATE_*``.

Latency model (:class:`BatchTiming`, every figure times the emulator's ``time_scale``): a
job waits ``queue_s`` in the queue, then processes its requests at ``requests_per_s``;
a job not finished ``expire_s`` after its creation expires. States are computed from the
wall clock whenever a job is read (there is no background task): a job's transition
times are fixed when it is created, so ``createTime``, ``updateTime`` and ``endTime`` are
exact and a test with small timings is deterministic.

Faults (``POST /_emulator/faults``, applied to jobs created while they are live, per model
or ``*``): ``batch_stuck`` (the job never leaves PENDING, until it expires or is
cancelled), ``batch_fail`` (the job FAILS after the share ``at`` of its processing time,
with no results), ``batch_request_errors`` (each request answers the HTTP error
``status`` with probability ``rate``: a partial failure inside a succeeded job). The
prompt markers of ``model.py`` work per request too (``[[emulator:error=503]]`` makes that
one request's response an error).

Ground truth (the ``batches`` part of ``/_emulator/stats``)::

    {"jobs": {"<model>": {"<BATCH_STATE_...>": n}},   # every job in its current state
     "submitted": {"<model>": n}, "submitted_requests": {"<model>": n},
     "requests": {"<model>": {"ok": n, "error": n}},  # requests of succeeded jobs
     "tokens": {"<model>": {"input": n, "output": n, "thoughts": n, "cached": n}}}

``tokens`` and ``requests`` count the responses of jobs that SUCCEEDED (a failed, cancelled
or expired job delivers no results and bills nothing here); tokens are summed from each
response's ``usageMetadata`` with the definitions of ``stats.py``. Deleting a job
(``DELETE /{v}/batches/{id}``) removes it from ``jobs`` only.
"""

from __future__ import annotations

import itertools
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gemini_slo.emulator.errors import ApiError, invalid_argument
from gemini_slo.emulator.faults import FaultRegistry

PENDING = "BATCH_STATE_PENDING"
RUNNING = "BATCH_STATE_RUNNING"
SUCCEEDED = "BATCH_STATE_SUCCEEDED"
FAILED = "BATCH_STATE_FAILED"
CANCELLED = "BATCH_STATE_CANCELLED"
EXPIRED = "BATCH_STATE_EXPIRED"
TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELLED, EXPIRED})

_METADATA_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch"
MAX_INLINE_REQUESTS = 10_000
DEFAULT_PAGE_SIZE = 100


@dataclass(frozen=True, slots=True)
class BatchTiming:
    """The batch latency model (seconds, before ``time_scale``)."""

    queue_s: float = 60.0
    """Time a job waits in the queue before it runs."""
    requests_per_s: float = 20.0
    """Requests a running job processes per second."""
    expire_s: float = 172_800.0
    """A job not finished this long after its creation expires (the API says 48 hours)."""

    def __post_init__(self) -> None:
        if self.queue_s < 0 or self.expire_s <= 0 or self.requests_per_s <= 0:
            raise ValueError("batch timing: queue_s >= 0, requests_per_s > 0, expire_s > 0")


Answer = tuple[dict[str, Any], dict[str, int] | None]
"""One request's entry in ``inlinedResponses`` and its usage (None for an error)."""
Respond = Callable[[str, Any, random.Random, int | None], Answer]
"""The server's renderer: (model, request body, rng, injected error status) -> answer."""


@dataclass(slots=True)
class Job:
    """One batch job: its transition times are fixed at creation (see the module docstring)."""

    id: str
    model: str
    display_name: str
    created: float
    queue_end: float
    run_end: float
    expire_at: float
    fail_at: float | None
    answers: list[Answer]
    cancelled_at: float | None = None
    finalised: bool = False
    state: str = PENDING
    ended: float | None = None
    updated: float = 0.0

    def state_at(self, now: float) -> tuple[str, float]:
        """The job's state at ``now`` and the time it entered it."""
        if self.cancelled_at is not None and self.cancelled_at <= now:
            return CANCELLED, self.cancelled_at
        end = min(self.run_end, self.fail_at if self.fail_at is not None else math.inf)
        if end <= now and end < self.expire_at:
            return (FAILED if end != self.run_end else SUCCEEDED), end
        if self.expire_at <= now:
            return EXPIRED, self.expire_at
        if self.queue_end <= now:
            return RUNNING, self.queue_end
        return PENDING, self.created

    def processed(self, now: float) -> int:
        """Requests processed by ``now`` (for ``batchStats``)."""
        if self.state == SUCCEEDED:
            return len(self.answers)
        if self.state != RUNNING or self.run_end <= self.queue_end:
            return 0
        share = (now - self.queue_end) / (self.run_end - self.queue_end)
        return min(len(self.answers), max(0, int(len(self.answers) * share)))


def rfc3339(epoch: float) -> str:
    """``2026-12-02T13:50:57.123456Z``, as the API writes timestamps."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _requests_of(body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, dict) or not isinstance(body.get("batch"), dict):
        raise invalid_argument("* BatchGenerateContentRequest.batch: batch is not specified\n")
    batch = body["batch"]
    config = batch.get("inputConfig") or batch.get("input_config")
    if not isinstance(config, dict):
        raise invalid_argument("* GenerateContentBatch.input_config: input_config is required\n")
    if "fileName" in config or "file_name" in config:
        raise ApiError(
            501,
            "The emulator serves inline batch requests only (no file upload).",
            status="UNIMPLEMENTED",
        )
    wrapper = config.get("requests")
    items = wrapper.get("requests") if isinstance(wrapper, dict) else None
    if not isinstance(items, list) or not items:
        raise invalid_argument("* InputConfig.requests: requests must not be empty\n")
    if len(items) > MAX_INLINE_REQUESTS:
        raise invalid_argument(f"A batch holds at most {MAX_INLINE_REQUESTS} inline requests.")
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("request"), dict):
            raise invalid_argument(f"Invalid value at 'requests[{i}]': expected a request.")
    return items


class BatchBook:
    """Every batch job of one emulator, and the batch ground truth. Thread-safe."""

    def __init__(self, timing: BatchTiming, time_scale: float, seed: int) -> None:
        self.timing = timing
        self.time_scale = time_scale
        self.seed = seed
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._ids = itertools.count(1)
        self._clock: Callable[[], float] = time.time
        self._truth: dict[str, dict[str, dict[str, int]]] = {}
        self._job_states: dict[str, dict[str, int]] = {}
        self._submitted: dict[str, int] = {}
        self._submitted_requests: dict[str, int] = {}

    # -- creating ------------------------------------------------------------------------

    def create(self, model: str, body: Any, faults: FaultRegistry, respond: Respond) -> Job:
        """Validate a ``batchGenerateContent`` body and create its job (PENDING)."""
        items = _requests_of(body)
        batch = body["batch"]
        with self._lock:
            n = next(self._ids)
        rng = random.Random(f"{self.seed}:{model}:batch:{n}")
        stuck, fail_share, errors = self._faults(model, faults, rng)
        answers: list[Answer] = []
        for i, item in enumerate(items):
            request_rng = random.Random(f"{self.seed}:{model}:batch:{n}:{i}")
            injected = errors[0] if errors and rng.random() < errors[1] else None
            entry, usage = respond(model, item["request"], request_rng, injected)
            if "metadata" in item:
                entry["metadata"] = item["metadata"]
            answers.append((entry, usage))
        now = self._clock()
        scale = self.time_scale
        timing = self.timing
        queue_end = math.inf if stuck else now + timing.queue_s * scale
        run_end = queue_end + len(items) / timing.requests_per_s * scale
        fail_at = None if fail_share is None else queue_end + (run_end - queue_end) * fail_share
        job = Job(
            id=f"emu{self.seed}x{n:06d}",
            model=model,
            display_name=str(batch.get("displayName") or batch.get("display_name") or ""),
            created=now,
            queue_end=queue_end,
            run_end=run_end,
            expire_at=now + timing.expire_s * scale,
            fail_at=fail_at,
            answers=answers,
            updated=now,
        )
        with self._lock:
            self._jobs[job.id] = job
            self._submitted[job.model] = self._submitted.get(job.model, 0) + 1
            self._submitted_requests[job.model] = self._submitted_requests.get(job.model, 0) + len(
                items
            )
            self._move(job.model, None, PENDING)
        self.advance(now)
        return job

    def _faults(
        self, model: str, faults: FaultRegistry, rng: random.Random
    ) -> tuple[bool, float | None, tuple[int, float] | None]:
        stuck = False
        fail_share: float | None = None
        errors: tuple[int, float] | None = None
        now = time.monotonic()
        for fault in faults.active(now):
            if not fault.applies_to(model, now):
                continue
            p = fault.params
            if fault.kind == "batch_stuck" and rng.random() < p["rate"]:
                stuck = True
            elif fault.kind == "batch_fail" and fail_share is None and rng.random() < p["rate"]:
                fail_share = p["at"]
            elif fault.kind == "batch_request_errors" and errors is None:
                errors = (p["status"], p["rate"])
        return stuck, fail_share, errors

    # -- state ---------------------------------------------------------------------------

    def _move(self, model: str, old: str | None, new: str) -> None:
        states = self._job_states.setdefault(model, {})
        if old is not None:
            states[old] -= 1
        states[new] = states.get(new, 0) + 1

    def advance(self, now: float | None = None) -> None:
        """Bring every job to its state at ``now``; record the truth of jobs that finished."""
        now = self._clock() if now is None else now
        with self._lock:
            for job in self._jobs.values():
                if job.finalised:
                    continue
                state, since = job.state_at(now)
                if state == job.state:
                    continue
                self._move(job.model, job.state, state)
                job.state, job.updated = state, since
                if state in TERMINAL:
                    job.ended = since
                    job.finalised = True
                    if state == SUCCEEDED:
                        self._deliver(job)

    def _deliver(self, job: Job) -> None:
        requests = self._truth.setdefault("requests", {}).setdefault(job.model, {})
        tokens = self._truth.setdefault("tokens", {}).setdefault(
            job.model, {"input": 0, "output": 0, "thoughts": 0, "cached": 0}
        )
        for _, usage in job.answers:
            outcome = "ok" if usage is not None else "error"
            requests[outcome] = requests.get(outcome, 0) + 1
            if usage is not None:
                for key, value in usage.items():
                    tokens[key] += value

    def get(self, job_id: str) -> Job:
        """The job, brought up to date (404 if unknown)."""
        self.advance()
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise ApiError(404, f"Batch batches/{job_id} not found.")
        return job

    def cancel(self, job_id: str) -> None:
        """Cancel a pending or running job (400 FAILED_PRECONDITION once it has ended)."""
        job = self.get(job_id)
        with self._lock:
            if job.finalised:
                raise ApiError(
                    400, "The batch is already in a terminal state.", status="FAILED_PRECONDITION"
                )
            job.cancelled_at = self._clock()
        self.advance()

    def delete(self, job_id: str) -> None:
        """Forget a job (its truth stays counted)."""
        job = self.get(job_id)
        with self._lock:
            self._jobs.pop(job.id, None)
            self._job_states[job.model][job.state] -= 1

    def page(self, size: int | None, token: str | None) -> tuple[list[Job], str | None]:
        """A page of jobs, newest first, and the next page's token."""
        self.advance()
        size = DEFAULT_PAGE_SIZE if not size or size <= 0 else min(size, 1000)
        try:
            start = int(token) if token else 0
        except ValueError:
            raise invalid_argument("Invalid page token.") from None
        with self._lock:
            jobs = sorted(self._jobs.values(), key=lambda j: (j.created, j.id), reverse=True)
        chunk = jobs[start : start + size]
        more = start + size < len(jobs)
        return chunk, (str(start + size) if more else None)

    # -- JSON ----------------------------------------------------------------------------

    def to_json(self, job: Job) -> dict[str, Any]:
        """The job as the API returns it: an Operation whose ``metadata`` is the batch."""
        now = self._clock()
        processed = job.processed(now)
        total = len(job.answers)
        failed = sum(1 for _, usage in job.answers[:processed] if usage is None)
        metadata: dict[str, Any] = {
            "@type": _METADATA_TYPE,
            "model": f"models/{job.model}",
            "displayName": job.display_name,
            "createTime": rfc3339(job.created),
            "updateTime": rfc3339(job.updated),
            "batchStats": {
                "requestCount": str(total),
                "successfulRequestCount": str(processed - failed),
                "failedRequestCount": str(failed),
                "pendingRequestCount": str(total - processed),
            },
            "state": job.state,
            "name": f"batches/{job.id}",
        }
        if job.ended is not None:
            metadata["endTime"] = rfc3339(job.ended)
        if job.state == SUCCEEDED:
            responses = [entry for entry, _ in job.answers]
            metadata["output"] = {"inlinedResponses": {"inlinedResponses": responses}}
        out: dict[str, Any] = {"name": f"batches/{job.id}", "metadata": metadata}
        if job.finalised:
            out["done"] = True
        if job.state == FAILED:
            out["error"] = {"code": 13, "message": "The batch failed while it was running."}
        return out

    # -- ground truth --------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The ``batches`` part of ``/_emulator/stats`` (see the module docstring)."""
        self.advance()
        with self._lock:
            truth = self._truth
            return {
                "jobs": {
                    m: {s: n for s, n in states.items() if n}
                    for m, states in self._job_states.items()
                },
                "submitted": dict(self._submitted),
                "submitted_requests": dict(self._submitted_requests),
                "requests": {m: dict(c) for m, c in truth.get("requests", {}).items()},
                "tokens": {m: dict(c) for m, c in truth.get("tokens", {}).items()},
            }

    def reset(self) -> None:
        """Forget every job and zero the truth."""
        with self._lock:
            self._jobs.clear()
            self._truth.clear()
            self._job_states.clear()
            self._submitted.clear()
            self._submitted_requests.clear()
