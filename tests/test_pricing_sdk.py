"""Embeddings are priced through the real google-genai SDK against the emulator: the input
tokens the API reports for ``embed_content`` cost the table's embedding price; a TTS model
stays unpriced, is counted as such, and is logged once by name."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from gemini_slo.contract import signals as S
from gemini_slo.emulator.testing import EmulatorHandle, running_emulator
from gemini_slo.instrumentation import (
    Registry,
    Usage,
    instrument,
    observe,
    pricing,
    testing,
    uninstrument,
)
from google import genai
from google.genai import types

EMBED = "gemini-embedding-001"


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorHandle]:
    """An emulator with no model latency."""
    with running_emulator(seed=5, time_scale=0.0, quotas=False) as handle:
        yield handle


def test_embed_content_is_priced_by_input_tokens(emu: EmulatorHandle) -> None:
    """embed_content's input tokens (as countTokens counts them) are recorded and cost the
    table's embedding input price; nothing is unpriced."""
    rec = testing.InMemoryRecorder(Registry())
    client = genai.Client(api_key="test", http_options=types.HttpOptions(base_url=emu.url))
    texts = ["a first text to embed", "another one", "and a third, somewhat longer, text"]
    expected_tokens = sum(
        client.models.count_tokens(model=EMBED, contents=t).total_tokens or 0 for t in texts
    )
    assert expected_tokens > 0
    instrument(client, workload="index", mode="throughput", registry=rec.registry)
    try:
        client.models.embed_content(model=EMBED, contents=texts)
    finally:
        uninstrument(client)
    assert rec.value(S.TOKENS, model=EMBED, token_type="input") == expected_tokens
    assert rec.value(S.UNPRICED_CALLS, model=EMBED) == 0
    pico = pricing.default_table().cost_pico(EMBED, Usage(expected_tokens))
    assert pico == expected_tokens * 150_000  # 0.15 USD per 1M tokens = 150,000 pico per token
    assert rec.value(S.COST, model=EMBED) == pico / 1e12


def test_unpriced_model_is_counted_and_logged_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A TTS model (a product of its own, not text flash) costs 0, counts as unpriced, and
    one warning names it however many calls there are; no prompt text is logged."""
    # A fresh log: which models were named is per process, and earlier tests name some.
    monkeypatch.setattr(pricing, "_unpriced_log", pricing._UnpricedLog())
    model = "gemini-2.5-flash-preview-tts"
    rec = testing.InMemoryRecorder(Registry())
    caplog.set_level(logging.WARNING, logger="gemini_slo.instrumentation.pricing")
    for _ in range(3):
        with observe(workload="voice", model=model, registry=rec.registry) as call:
            call.record_usage(prompt_tokens=12, output_tokens=40)
    assert rec.value(S.UNPRICED_CALLS, model=model) == 3
    assert rec.value(S.COST, model=model) == 0
    warnings = [r for r in caplog.records if model in r.getMessage()]
    assert len(warnings) == 1
    assert "unpriced" in warnings[0].getMessage()


def test_a_flood_of_unpriced_models_logs_a_bounded_number_of_lines(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1,000 distinct unpriced model names (a flood) log MAX_NAMED_UNPRICED warnings naming
    a model and one saying that further ones are not logged; every call is still counted."""
    monkeypatch.setattr(pricing, "_unpriced_log", pricing._UnpricedLog())
    rec = testing.InMemoryRecorder(Registry())
    caplog.set_level(logging.WARNING, logger="gemini_slo.instrumentation.pricing")
    for i in range(1000):
        with observe(workload="flood", model=f"junk-{i}", registry=rec.registry) as call:
            call.record_usage(prompt_tokens=1, output_tokens=1)
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(messages) == pricing.MAX_NAMED_UNPRICED + 1
    assert all("junk-" in m for m in messages[:-1])
    assert "further ones are not logged" in messages[-1]
    assert rec.value(S.UNPRICED_CALLS) == 1000


def test_vertex_embedding_statistics_are_priced() -> None:
    """A Vertex AI embedding response carries its tokens per embedding
    (statistics.token_count) and no usage_metadata: their sum is priced as input."""
    rec = testing.InMemoryRecorder(Registry())
    response = types.EmbedContentResponse(
        embeddings=[
            types.ContentEmbedding(
                values=[0.1, 0.2], statistics=types.ContentEmbeddingStatistics(token_count=n)
            )
            for n in (7.0, 5.0)
        ]
    )
    with observe(workload="index", model=EMBED, registry=rec.registry) as call:
        call.record_response(response)
    assert rec.value(S.TOKENS, model=EMBED, token_type="input") == 12
    assert rec.value(S.COST, model=EMBED) == 12 * 150_000 / 1e12
    assert rec.value(S.UNPRICED_CALLS, model=EMBED) == 0
