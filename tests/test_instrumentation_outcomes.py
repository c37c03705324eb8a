"""Outcome and error type of a call (``_classify.py``, ``_usage.py``, public as ``outcomes``):
what google-genai raises, blocked responses."""

from __future__ import annotations

import asyncio

import pytest
from gemini_slo.contract import signals as S
from gemini_slo.instrumentation import (
    DeadlineExceeded,
    QueueRejected,
    Registry,
    observe,
    testing,
)
from gemini_slo.instrumentation.outcomes import BLOCKING_FINISH_REASONS, classify, outcome_of
from google.genai import errors as genai_errors
from google.genai import types


@pytest.fixture
def rec() -> testing.InMemoryRecorder:
    """A fresh registry and its reader."""
    return testing.InMemoryRecorder(Registry())


def test_classification_of_what_google_genai_raises() -> None:
    """429 -> rate_limited; other API errors -> error with the code; timeouts by class."""
    import httpx2

    assert classify(genai_errors.ClientError(429, {"error": {"code": 429}})) == (
        S.Outcome.RATE_LIMITED,
        "429",
    )
    assert classify(genai_errors.ServerError(503, {"error": {"code": 503}})) == (
        S.Outcome.ERROR,
        "503",
    )
    assert classify(genai_errors.ClientError(400, {"error": {"code": 400}})) == (
        S.Outcome.ERROR,
        "400",
    )
    assert classify(httpx2.ReadTimeout("slow")) == (S.Outcome.TIMEOUT, "httpx2.ReadTimeout")
    assert classify(TimeoutError()) == (S.Outcome.TIMEOUT, "TimeoutError")
    assert classify(httpx2.ConnectError("refused")) == (S.Outcome.ERROR, "httpx2.ConnectError")
    assert classify(ConnectionRefusedError()) == (S.Outcome.ERROR, "ConnectionRefusedError")
    assert classify(QueueRejected("q", "hopeless", 0.0)) == (
        S.Outcome.REJECTED,
        "gemini_slo.instrumentation.QueueRejected",
    )
    assert classify(DeadlineExceeded()) == (
        S.Outcome.TIMEOUT,
        "gemini_slo.instrumentation.DeadlineExceeded",
    )
    import aiohttp

    assert classify(aiohttp.ServerTimeoutError())[0] is S.Outcome.TIMEOUT


@pytest.mark.parametrize(
    ("response", "outcome"),
    [
        (
            testing.response(block_reason="SAFETY", candidates=[]),
            "blocked",
        ),
        (testing.response(candidates=[]), "blocked"),
        (testing.response(finish="SAFETY"), "blocked"),
        (testing.response(finish="MAX_TOKENS"), "ok"),
    ],
)
def test_blocked_responses(
    rec: testing.InMemoryRecorder, response: types.GenerateContentResponse, outcome: str
) -> None:
    """Blocked prompts, no candidates, SAFETY finishes: outcome blocked, nothing raised."""

    @observe(workload="chat", registry=rec.registry)
    def call() -> types.GenerateContentResponse:
        return response

    assert call() is response
    assert rec.value(S.CALLS, outcome=outcome) == 1


def test_outcome_of_a_finished_call() -> None:
    """outcome_of: the exception's class first; else a filtered answer is blocked, and a
    stream's usage-only last chunk (no candidates) is not; a cancelled call timed out."""
    assert outcome_of(asyncio.CancelledError()) == (
        S.Outcome.TIMEOUT,
        "asyncio.exceptions.CancelledError",
    )
    assert outcome_of(genai_errors.ClientError(429, {"error": {"code": 429}})) == (
        "rate_limited",
        "429",
    )
    usage_only = testing.response(candidates=[])
    assert outcome_of(None, usage_only) == ("blocked", None)
    assert outcome_of(None, usage_only, stream=True) == ("ok", None)
    for reason in sorted(BLOCKING_FINISH_REASONS):
        assert outcome_of(None, testing.response(finish=reason), stream=True) == ("blocked", None)
    assert outcome_of(None, testing.response(finish="MAX_TOKENS")) == ("ok", None)
    assert outcome_of(None, "not a response") == ("ok", None)
