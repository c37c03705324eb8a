"""Ground truth: what the emulator actually answered, for tests and benchmarks to compare with.

``GET /_emulator/stats`` returns::

    {"requests": {"<model>": {"<http status>": n}},
     "tokens": {"<model>": {"input": n, "output": n, "thoughts": n, "cached": n}},
     "methods": {"<model>": {"<method>": {"<http status>": n}}},
     "stream_errors": {"<model>": n}, "in_flight": n, "since_reset_s": s,
     "batches": {...}}

``batches`` is the Batch API's own ground truth (jobs by state, requests, tokens by type
per model; defined in ``batches.py``): creating a batch job is not counted in
``requests`` and its responses add nothing to ``tokens`` here.

Definitions (these are what a correct client-side instrumentation should reproduce):

- ``requests`` counts every request to a model endpoint (generateContent,
  streamGenerateContent, countTokens, embedContent, batchEmbedContents), keyed by the model
  (the profile's name for a served model, so aliases count under it; otherwise the name in
  the URL, ``models/`` stripped) and the HTTP status actually sent. A stream counts
  its status (200) once the headers are out, even if an error event follows
  (``stream_errors`` counts those) or the client goes away. A request that got no status at
  all because the client disconnected first (a stall, or a client timeout before the first
  byte) is counted under ``"499"`` (nginx's "client closed request"). Admin and ListModels
  calls are not counted.
- ``tokens`` are the usage of the last ``usageMetadata`` actually written to the client for
  each response: for a stream, the last chunk sent (chunks carry cumulative usage), so a
  stream cut by an error or a disconnect counts the chunks sent before it; a blocked prompt
  counts its prompt tokens. ``input`` = promptTokenCount (cached tokens included, as in the
  API), ``output`` = candidatesTokenCount, ``thoughts`` = thoughtsTokenCount, ``cached`` =
  cachedContentTokenCount. Errors write no usage and add no tokens. countTokens and
  embeddings add nothing to ``tokens`` (they are not billed as generation).

Counters only grow until ``POST /_emulator/reset``. Updated on the event loop thread; read
under a lock so that another thread gets a consistent copy.
"""

from __future__ import annotations

import threading
import time
from typing import Any


class Stats:
    """Counters of answered requests and of the usage written to clients."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._requests: dict[str, dict[str, int]] = {}
        self._methods: dict[str, dict[str, dict[str, int]]] = {}
        self._tokens: dict[str, dict[str, int]] = {}
        self._stream_errors: dict[str, int] = {}
        self.in_flight = 0

    def record_status(self, model: str, method: str, status: int) -> None:
        """Count one answered request."""
        key = str(status)
        with self._lock:
            by_status = self._requests.setdefault(model, {})
            by_status[key] = by_status.get(key, 0) + 1
            by_method = self._methods.setdefault(model, {}).setdefault(method, {})
            by_method[key] = by_method.get(key, 0) + 1

    def record_usage(
        self, model: str, prompt: int, output: int, thoughts: int, cached: int
    ) -> None:
        """Add the final usage written for one response."""
        with self._lock:
            tokens = self._tokens.get(model)
            if tokens is None:
                tokens = self._tokens[model] = {"input": 0, "output": 0, "thoughts": 0, "cached": 0}
            tokens["input"] += prompt
            tokens["output"] += output
            tokens["thoughts"] += thoughts
            tokens["cached"] += cached

    def record_stream_error(self, model: str) -> None:
        """Count one error event written inside a stream."""
        with self._lock:
            self._stream_errors[model] = self._stream_errors.get(model, 0) + 1

    def reset(self) -> None:
        """Zero every counter (in-flight requests keep counting when they finish)."""
        with self._lock:
            self._requests.clear()
            self._methods.clear()
            self._tokens.clear()
            self._stream_errors.clear()
            self._started = time.monotonic()

    def snapshot(self) -> dict[str, Any]:
        """A deep copy in the documented JSON shape."""
        with self._lock:
            return {
                "requests": {m: dict(s) for m, s in self._requests.items()},
                "tokens": {m: dict(t) for m, t in self._tokens.items()},
                "methods": {
                    m: {k: dict(s) for k, s in by.items()} for m, by in self._methods.items()
                },
                "stream_errors": dict(self._stream_errors),
                "in_flight": self.in_flight,
                "since_reset_s": round(time.monotonic() - self._started, 3),
            }
