"""The in-process aggregation (``_registry.py``): exact counts under concurrent recording,
streams whose event is built in the batch."""

from __future__ import annotations

import sys
import threading
from typing import Any

import pytest
from gemini_slo.contract import signals as S
from gemini_slo.instrumentation import (
    Registry,
    observe,
    testing,
)
from google.genai import types


@pytest.fixture
def rec() -> testing.InMemoryRecorder:
    """A fresh registry and its reader."""
    return testing.InMemoryRecorder(Registry())


def test_threads_give_exact_counts(rec: testing.InMemoryRecorder) -> None:
    """64 threads recording at once: every call and token is counted exactly."""

    @observe(workload="chat", registry=rec.registry)
    def call() -> types.GenerateContentResponse:
        return testing.response(prompt=3, output=5, thoughts=1)

    barrier = threading.Barrier(64)

    def worker() -> None:
        barrier.wait()
        for _ in range(200):
            call()

    threads = [threading.Thread(target=worker) for _ in range(64)]
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert rec.value(S.CALLS) == 64 * 200
    assert rec.value(S.TOKENS, token_type="output") == 64 * 200 * 5
    assert rec.histogram(S.OPERATION_DURATION).count == 64 * 200
    assert rec.value(S.REQUESTS_IN_FLIGHT) == 0


def test_streams_left_to_the_batch_are_exact(rec: testing.InMemoryRecorder) -> None:
    """A stream that ends well is recorded when the registry aggregates (its event is built
    in the drain): 16 threads x 100 streams, every call, token and TTFT counted once, none
    left in flight, and a reader sees them all without waiting for a batch to fill."""

    @observe(workload="chat", registry=rec.registry)
    def stream() -> Any:
        yield testing.response(prompt=3, output=2)
        yield testing.response(prompt=3, output=5, finish="SAFETY")

    def worker() -> None:
        for _ in range(100):
            assert len(list(stream())) == 2

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert rec.value(S.CALLS, outcome="blocked") == 1600
    assert rec.value(S.TOKENS, token_type="output") == 1600 * 5
    assert rec.histogram(S.TIME_TO_FIRST_CHUNK).count == 1600
    assert rec.value(S.REQUESTS_IN_FLIGHT) == 0
    list(stream())  # one more: fewer than a batch pending, still read at once
    assert rec.value(S.CALLS) == 1601
