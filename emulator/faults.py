"""The fault registry: run-time faults, per model or for all, for a duration or until cleared.

Kinds and their parameters (all optional unless marked):

==================  ==========================================================================
latency_multiplier  ``factor`` (required): time to first token and decode time times factor
extra_delay         ``seconds`` (required): a fixed delay before the first byte (also
                    before an injected error: with error_rate, an error after a wait)
error_rate          ``status`` (default 503), ``rate`` (default 1.0): answer that HTTP error,
                    with the API's error JSON (a 429 carries RetryInfo, ``retry_delay_s``)
stall               ``rate`` (default 1.0), ``after_chunks`` (streams; default 0 = before the
                    headers), ``seconds`` (default 3600): hold the request open without
                    answering until the client disconnects (after ``seconds``: a 504);
                    ``after_chunks`` past the stream's end holds its final chunk
stream_error        ``status`` (default 500), ``after_chunks`` (default 1), ``rate`` (1.0):
                    a stream sends that many events (at most all but the last), then an
                    error event, then ends; non-streamed calls are not affected
token_rate          ``factor`` (required): decode rate times factor (0.5 = half as fast)
block               ``rate`` (default 1.0): the prompt is blocked (promptFeedback, no candidates)
safety              ``rate`` (default 1.0): the answer stops early with finishReason SAFETY
cache_hit           ``fraction`` (required, 0..1): that share of the prompt is served from cache
batch_stuck         ``rate`` (default 1.0): a batch job created now never leaves PENDING
batch_fail          ``rate`` (default 1.0), ``at`` (default 0.5, 0..1): a batch job fails after
                    that share of its processing time, with no results
batch_request_errors ``status`` (default 500), ``rate`` (default 0.1): each request of a batch
                    job answers that error (a partial failure; see ``batches.py``)
==================  ==========================================================================

The ``batch_*`` kinds apply to batch jobs when they are created, never to online requests.

When several faults apply, factors multiply, delays add, and for errors and stalls the
oldest applicable fault wins. ``rate`` draws use an RNG seeded like the response RNG (see
``model.py``, with its own stream of numbers: adding a fault does not change the text or
usage of the responses), so faulted runs are reproducible too. ``extra_delay`` and
``stall`` seconds are wall-clock seconds, not scaled by ``time_scale``. Time is
``time.monotonic()``.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from gemini_slo.emulator.model import Knobs

FAULT_KINDS = (
    "latency_multiplier",
    "extra_delay",
    "error_rate",
    "stall",
    "stream_error",
    "token_rate",
    "block",
    "safety",
    "cache_hit",
    "batch_stuck",
    "batch_fail",
    "batch_request_errors",
)

_PARAMS: dict[str, dict[str, tuple[type, Any]]] = {
    # kind -> param -> (type, default); a default of None marks a required parameter.
    "latency_multiplier": {"factor": (float, None)},
    "extra_delay": {"seconds": (float, None)},
    "error_rate": {"status": (int, 503), "rate": (float, 1.0), "retry_delay_s": (float, 1.0)},
    "stall": {"rate": (float, 1.0), "after_chunks": (int, 0), "seconds": (float, 3600.0)},
    "stream_error": {"status": (int, 500), "after_chunks": (int, 1), "rate": (float, 1.0)},
    "token_rate": {"factor": (float, None)},
    "block": {"rate": (float, 1.0)},
    "safety": {"rate": (float, 1.0)},
    "cache_hit": {"fraction": (float, None)},
    "batch_stuck": {"rate": (float, 1.0)},
    "batch_fail": {"rate": (float, 1.0), "at": (float, 0.5)},
    "batch_request_errors": {"status": (int, 500), "rate": (float, 0.1)},
}


class FaultError(ValueError):
    """A fault specification that cannot be applied."""


@dataclass(frozen=True, slots=True)
class Fault:
    """One active fault."""

    id: str
    kind: str
    model: str
    params: dict[str, Any]
    created_at: float
    expires_at: float | None

    def applies_to(self, model: str, now: float) -> bool:
        """Whether this fault is live for ``model`` at ``now``."""
        live = self.expires_at is None or now < self.expires_at
        return live and (self.model in ("*", model))

    def to_json(self, now: float) -> dict[str, Any]:
        """The admin API's view of the fault."""
        return {
            "id": self.id,
            "kind": self.kind,
            "model": self.model,
            "params": dict(self.params),
            "remaining_s": None if self.expires_at is None else max(0.0, self.expires_at - now),
        }


@dataclass(slots=True)
class Decision:
    """What the active faults decided for one request."""

    knobs: Knobs = field(default_factory=Knobs)
    error: int | None = None
    retry_delay_s: float = 1.0
    stall_after_chunks: int | None = None
    stall_seconds: float = 3600.0
    stream_error: int | None = None
    stream_error_after: int = 1


def _coerce(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    spec = _PARAMS[kind]
    unknown = set(params) - set(spec)
    if unknown:
        raise FaultError(f"{kind}: unknown parameters {sorted(unknown)}; known: {sorted(spec)}")
    out: dict[str, Any] = {}
    for name, (typ, default) in spec.items():
        value = params.get(name, default)
        if value is None:
            raise FaultError(f"{kind}: parameter '{name}' is required")
        try:
            out[name] = typ(value)
        except (TypeError, ValueError) as exc:
            raise FaultError(f"{kind}: '{name}' must be a {typ.__name__}") from exc
        if out[name] < 0:
            raise FaultError(f"{kind}: '{name}' must be >= 0")
    if "rate" in out and out["rate"] > 1:
        raise FaultError(f"{kind}: 'rate' is a probability (0..1)")
    if "status" in out and not 400 <= out["status"] <= 599:
        raise FaultError(f"{kind}: 'status' must be an HTTP error code (400..599)")
    if kind == "cache_hit" and out["fraction"] > 1:
        raise FaultError("cache_hit: 'fraction' is 0..1")
    if kind == "batch_fail" and out["at"] > 1:
        raise FaultError("batch_fail: 'at' is a share of the processing time (0..1)")
    return out


class FaultRegistry:
    """Thread-safe: the admin API and ``testing.EmulatorHandle`` change it from other threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: dict[str, Fault] = {}
        self._ids = itertools.count(1)

    def add(
        self, kind: str, model: str = "*", duration_s: float | None = None, **params: Any
    ) -> Fault:
        """Register a fault and return it (its ``id`` clears it)."""
        if kind not in _PARAMS:
            raise FaultError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}")
        if not isinstance(model, str) or not model:
            raise FaultError("'model' must be a model name or '*'")
        if duration_s is not None and (not isinstance(duration_s, int | float) or duration_s <= 0):
            raise FaultError("'duration_s' must be a positive number of seconds")
        clean = _coerce(kind, params)
        now = time.monotonic()
        with self._lock:
            fault = Fault(
                id=f"f{next(self._ids)}",
                kind=kind,
                model=model.removeprefix("models/"),
                params=clean,
                created_at=now,
                expires_at=None if duration_s is None else now + float(duration_s),
            )
            self._faults[fault.id] = fault
        return fault

    def remove(self, fault_id: str) -> bool:
        """Clear one fault; False when there was no such (live) fault."""
        with self._lock:
            return self._faults.pop(fault_id, None) is not None

    def clear(self) -> int:
        """Clear every fault and return how many there were."""
        with self._lock:
            n = len(self._faults)
            self._faults.clear()
            return n

    def active(self, now: float | None = None) -> list[Fault]:
        """The live faults, oldest first; expired ones are dropped here."""
        now = time.monotonic() if now is None else now
        with self._lock:
            expired = [
                f.id
                for f in self._faults.values()
                if f.expires_at is not None and now >= f.expires_at
            ]
            for fault_id in expired:
                del self._faults[fault_id]
            return list(self._faults.values())

    def decide(self, model: str, rng: random.Random, *, stream: bool) -> Decision:
        """Apply the live faults for ``model`` to one request."""
        decision = Decision()
        if not self._faults:  # the common case: no lock, no allocation beyond Decision
            return decision
        now = time.monotonic()
        knobs = decision.knobs
        for fault in self.active(now):
            if not fault.applies_to(model, now):
                continue
            p = fault.params
            kind = fault.kind
            if kind.startswith("batch_"):
                continue  # batch jobs read these when they are created (batches.py)
            if kind == "latency_multiplier":
                knobs.latency_factor *= p["factor"]
            elif kind == "extra_delay":
                knobs.extra_delay_s += p["seconds"]
            elif kind == "token_rate":
                knobs.token_rate_factor *= max(p["factor"], 1e-6)
            elif kind == "cache_hit":
                knobs.cache_fraction = max(knobs.cache_fraction, p["fraction"])
            elif rng.random() >= p["rate"]:
                continue  # a probabilistic fault that did not fire for this request
            elif kind == "error_rate" and decision.error is None:
                decision.error = p["status"]
                decision.retry_delay_s = p["retry_delay_s"]
            elif kind == "stall" and decision.stall_after_chunks is None:
                decision.stall_after_chunks = p["after_chunks"] if stream else 0
                decision.stall_seconds = p["seconds"]
            elif kind == "stream_error" and stream and decision.stream_error is None:
                decision.stream_error = p["status"]
                decision.stream_error_after = p["after_chunks"]
            elif kind == "block":
                knobs.block = True
            elif kind == "safety":
                knobs.safety = True
        return decision
