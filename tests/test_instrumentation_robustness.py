"""Regression tests from the correctness review: bookkeeping must never hurt the app."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from gemini_slo.contract import signals as S
from gemini_slo.instrumentation import Registry, _state, instrument, pricing, testing, uninstrument
from google import genai
from google.genai import models as genai_models
from google.genai import types


def _response() -> types.GenerateContentResponse:
    return testing.response(prompt=3, output=4)


def test_bad_pricing_file_never_raises_into_patched_calls(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """A GEMINI_SLO_PRICING file that cannot be read (configure() never called) used to make
    the registry's batch aggregation raise inside the app's SDK call (every DRAIN_AT-th call
    on the lean patch path), after the call had succeeded. The call must return its value;
    the calls are still counted (unpriced)."""
    answer = _response()
    monkeypatch.setattr(
        genai_models.Models, "generate_content", lambda self, **kw: answer, raising=True
    )
    monkeypatch.setenv("GEMINI_SLO_PRICING", str(tmp_path / "missing.yaml"))
    pricing.set_active_table(None)
    registry = Registry()
    client = genai.Client(api_key="test-key")
    instrument(client, workload="batch", mode="throughput", registry=registry)
    try:
        for _ in range(200):
            assert client.models.generate_content(model="gemini-2.5-flash", contents="x") is answer
    finally:
        uninstrument(client)
        monkeypatch.delenv("GEMINI_SLO_PRICING")
        pricing.set_active_table(None)
    rec = testing.InMemoryRecorder(registry)
    assert rec.value(S.CALLS, workload="batch") == 200
    assert rec.value(S.TOKENS, workload="batch", token_type="output") == 800


@pytest.mark.parametrize("log_calls", [False, True])
def test_async_stream_awaited_but_never_iterated_is_not_left_in_flight(
    monkeypatch: pytest.MonkeyPatch, log_calls: bool
) -> None:
    """``await client.aio.models.generate_content_stream(...)`` only builds the stream (the
    SDK sends the request at the first step). The async patch counted the call in flight at
    the await, so a stream that was never iterated stayed in flight forever (the sync patch
    counts from the first step). An iterated stream still counts once, in flight meanwhile."""

    async def fake_stream(self: Any, **kwargs: Any) -> Any:
        async def chunks() -> Any:
            yield _response()

        return chunks()

    monkeypatch.setattr(genai_models.AsyncModels, "generate_content_stream", fake_stream)
    monkeypatch.setattr(_state, "log_calls", log_calls)
    registry = Registry()
    rec = testing.InMemoryRecorder(registry)
    client = genai.Client(api_key="test-key")
    instrument(client, workload="chat", registry=registry)

    async def main() -> None:
        stream = await client.aio.models.generate_content_stream(
            model="gemini-2.5-flash", contents="x"
        )
        del stream
        stream = await client.aio.models.generate_content_stream(
            model="gemini-2.5-flash", contents="x"
        )
        async for _ in stream:
            assert rec.value(S.REQUESTS_IN_FLIGHT, workload="chat") == 1

    try:
        asyncio.run(main())
    finally:
        uninstrument(client)
    assert rec.value(S.REQUESTS_IN_FLIGHT, workload="chat") == 0
    assert rec.value(S.CALLS, workload="chat") == 1
    assert rec.value(S.TOKENS, workload="chat", token_type="output") == 4


def test_odd_usage_metadata_never_corrupts_the_series() -> None:
    """``record_response`` (and the patch) read ``usage_metadata`` from whatever they get. A
    test double (MagicMock) or an odd object gave non-int token counts, which the batch
    aggregation then added into the token counters: every later read (the exporter, the
    testing reader) raised, and the call stayed in flight. Non-int or negative counts now
    count as 0; the rest of the call, and the calls after it, are recorded."""
    from types import SimpleNamespace
    from unittest.mock import MagicMock

    from gemini_slo.instrumentation import observe

    registry = Registry()
    rec = testing.InMemoryRecorder(registry)
    with observe(workload="chat", model="gemini-2.5-flash", registry=registry) as call:
        call.record_response(MagicMock())
    odd = SimpleNamespace(
        usage_metadata=SimpleNamespace(prompt_token_count="7", candidates_token_count=-3)
    )
    with observe(workload="chat", model="gemini-2.5-flash", registry=registry) as call:
        call.record_response(odd)
    with observe(workload="chat", model="gemini-2.5-flash", registry=registry) as call:
        call.record_response(_response())
    assert rec.value(S.CALLS, workload="chat") == 3
    assert rec.value(S.REQUESTS_IN_FLIGHT, workload="chat") == 0
    assert rec.value(S.TOKENS, workload="chat", token_type="input") == 3
    assert rec.value(S.TOKENS, workload="chat", token_type="output") == 4
