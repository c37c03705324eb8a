"""The emulator driven by the real google-genai SDK over real HTTP: call shapes, usage, seeds."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gemini_slo.emulator.model import count_text_tokens
from gemini_slo.emulator.testing import EmulatorHandle, async_running_emulator, running_emulator
from google import genai
from google.genai import types

FLASH = "gemini-2.5-flash"


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorHandle]:
    """One fast emulator (no model latency) for the whole module."""
    with running_emulator(seed=3, time_scale=0.0) as handle:
        yield handle


@pytest.fixture(autouse=True)
def _clean(emu: EmulatorHandle) -> None:
    """Each test starts from zero ground truth and no faults."""
    emu.clear_faults()
    emu.reset_stats()


def client_for(emu: EmulatorHandle, **http: Any) -> genai.Client:
    """A real SDK client pointed at the emulator."""
    return genai.Client(api_key="test", http_options=types.HttpOptions(base_url=emu.url, **http))


def usage_tuple(usage: types.GenerateContentResponseUsageMetadata | None) -> tuple[int, ...]:
    """(input, output, thoughts, cached) as the SDK parsed them, None read as 0."""
    assert usage is not None
    return (
        usage.prompt_token_count or 0,
        usage.candidates_token_count or 0,
        usage.thoughts_token_count or 0,
        usage.cached_content_token_count or 0,
    )


def truth_tuple(emu: EmulatorHandle, model: str) -> tuple[int, ...]:
    """(input, output, thoughts, cached) from the emulator's ground truth."""
    tokens = emu.stats()["tokens"].get(model, {})
    return tuple(tokens.get(k, 0) for k in ("input", "output", "thoughts", "cached"))


def add(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """Element-wise sum."""
    return tuple(x + y for x, y in zip(a, b, strict=True))


def test_sync_generate_has_real_shape_and_usage(emu: EmulatorHandle) -> None:
    """A sync call parses into text, finish reason, usage, model version and response id."""
    client = client_for(emu)
    response = client.models.generate_content(model=FLASH, contents="one two three four")
    assert response.text
    candidate = response.candidates[0]  # type: ignore[index]
    assert candidate.finish_reason == types.FinishReason.STOP
    assert candidate.content.role == "model"  # type: ignore[union-attr]
    usage = response.usage_metadata
    assert usage is not None
    assert usage.prompt_token_count == 4
    assert usage.candidates_token_count == count_text_tokens(response.text)
    assert usage.total_token_count == (
        usage.prompt_token_count
        + (usage.candidates_token_count or 0)
        + (usage.thoughts_token_count or 0)
    )
    assert usage.thoughts_token_count  # flash thinks by default
    assert response.model_version == FLASH
    assert response.response_id
    assert emu.stats()["requests"] == {FLASH: {"200": 1}}
    assert truth_tuple(emu, FLASH) == usage_tuple(usage)


def test_four_call_shapes_match_ground_truth(emu: EmulatorHandle) -> None:
    """Sync, async, stream and async stream: the usage the SDK parsed equals the ground truth."""
    client = client_for(emu)
    seen = (0, 0, 0, 0)
    r = client.models.generate_content(model=FLASH, contents="hello sync")
    seen = add(seen, usage_tuple(r.usage_metadata))

    chunks = list(client.models.generate_content_stream(model=FLASH, contents="hello stream"))
    assert len(chunks) > 1
    # Cumulative usage: the last chunk counts, and it is the only one with a finish reason.
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP  # type: ignore[index]
    assert all(c.candidates[0].finish_reason is None for c in chunks[:-1])  # type: ignore[index]
    outputs = [c.usage_metadata.candidates_token_count for c in chunks]  # type: ignore[union-attr]
    assert outputs == sorted(outputs)
    text = "".join(c.text or "" for c in chunks)
    assert count_text_tokens(text) == outputs[-1]
    seen = add(seen, usage_tuple(chunks[-1].usage_metadata))

    async def run_async() -> tuple[int, ...]:
        total = (0, 0, 0, 0)
        r = await client.aio.models.generate_content(model=FLASH, contents="hello async")
        total = add(total, usage_tuple(r.usage_metadata))
        last = None
        stream = await client.aio.models.generate_content_stream(model=FLASH, contents="hi")
        async for chunk in stream:
            last = chunk
        assert last is not None
        return add(total, usage_tuple(last.usage_metadata))

    seen = add(seen, asyncio.run(run_async()))
    assert emu.stats()["requests"] == {FLASH: {"200": 4}}
    assert truth_tuple(emu, FLASH) == seen


def test_thinking_budget_and_max_output_tokens(emu: EmulatorHandle) -> None:
    """Budget 0 turns thinking off, a budget caps it, maxOutputTokens caps the output."""
    client = client_for(emu)
    off = client.models.generate_content(
        model=FLASH,
        contents="x",
        config=types.GenerateContentConfig(thinking_config=types.ThinkingConfig(thinking_budget=0)),
    )
    assert not off.usage_metadata.thoughts_token_count  # type: ignore[union-attr]
    capped = client.models.generate_content(
        model=FLASH,
        contents="x [[emulator:output_tokens=500]]",
        config=types.GenerateContentConfig(
            thinking_config=types.ThinkingConfig(thinking_budget=5), max_output_tokens=40
        ),
    )
    usage = capped.usage_metadata
    assert usage is not None
    assert 1 <= (usage.thoughts_token_count or 0) <= 5
    assert (usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0) == 40
    assert capped.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS  # type: ignore[index]
    with pytest.raises(genai.errors.ClientError) as info:
        client.models.generate_content(
            model="gemini-2.5-pro",
            contents="x",
            config=types.GenerateContentConfig(
                thinking_config=types.ThinkingConfig(thinking_budget=0)
            ),
        )
    assert info.value.code == 400


def test_blocked_prompt_has_no_candidates(emu: EmulatorHandle) -> None:
    """A marker, or the block fault, gives promptFeedback.blockReason and no candidates."""
    client = client_for(emu)
    r = client.models.generate_content(model=FLASH, contents="please [[emulator:block]]")
    assert not r.candidates
    assert r.prompt_feedback is not None
    assert r.prompt_feedback.block_reason == types.BlockedReason.SAFETY
    assert r.usage_metadata.prompt_token_count == 2  # type: ignore[union-attr]
    emu.set_fault("block", model=FLASH)
    chunks = list(client.models.generate_content_stream(model=FLASH, contents="fine"))
    assert len(chunks) == 1
    assert not chunks[0].candidates
    assert chunks[0].prompt_feedback.block_reason == types.BlockedReason.SAFETY  # type: ignore[union-attr]
    assert emu.stats()["tokens"][FLASH] == {"input": 3, "output": 0, "thoughts": 0, "cached": 0}


def test_safety_finish_reason(emu: EmulatorHandle) -> None:
    """A marker, or the safety fault, ends the answer early with finishReason SAFETY."""
    client = client_for(emu)
    r = client.models.generate_content(
        model=FLASH, contents="[[emulator:safety]] [[emulator:output_tokens=100]]"
    )
    assert r.candidates[0].finish_reason == types.FinishReason.SAFETY  # type: ignore[index]
    assert (r.usage_metadata.candidates_token_count or 0) < 100  # type: ignore[union-attr]
    emu.set_fault("safety")
    chunks = list(client.models.generate_content_stream(model=FLASH, contents="ok"))
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.SAFETY  # type: ignore[index]


def test_cached_content_counts_in_prompt(emu: EmulatorHandle) -> None:
    """Naming cachedContent adds cached tokens, which are part of promptTokenCount."""
    client = client_for(emu)
    r = client.models.generate_content(
        model=FLASH,
        contents="a b c",
        config=types.GenerateContentConfig(cached_content="cachedContents/demo"),
    )
    usage = r.usage_metadata
    assert usage is not None
    assert usage.cached_content_token_count == 2048
    assert usage.prompt_token_count == 3 + 2048
    emu.set_fault("cache_hit", fraction=0.5)
    r = client.models.generate_content(model=FLASH, contents="a b c d")
    assert r.usage_metadata.cached_content_token_count == 2  # type: ignore[union-attr]
    assert emu.stats()["tokens"][FLASH]["cached"] == 2050


def test_count_tokens_embeddings_and_models(emu: EmulatorHandle) -> None:
    """countTokens, embed_content (batchEmbedContents) and the model list work through the SDK."""
    client = client_for(emu)
    assert client.models.count_tokens(model=FLASH, contents="a b c").total_tokens == 3
    result = client.models.embed_content(
        model="gemini-embedding-001",
        contents=["same text", "other", "same text"],
        config=types.EmbedContentConfig(output_dimensionality=16),
    )
    vectors = [e.values for e in result.embeddings]  # type: ignore[union-attr]
    assert [len(v) for v in vectors] == [16, 16, 16]  # type: ignore[arg-type]
    assert vectors[0] == vectors[2] != vectors[1]
    names = [m.name for m in client.models.list()]
    assert "models/gemini-2.5-flash" in names
    assert "models/gemini-embedding-001" in names
    assert client.models.get(model=FLASH).output_token_limit == 65536
    methods = emu.stats()["methods"]
    assert methods[FLASH] == {"countTokens": {"200": 1}}
    assert methods["gemini-embedding-001"] == {"batchEmbedContents": {"200": 1}}


def _run_calls(seed: int) -> list[tuple[str, tuple[int, ...]]]:
    with running_emulator(seed=seed, time_scale=0.0) as emu:
        client = client_for(emu)
        out = []
        for prompt in ("first", "second", "third"):
            r = client.models.generate_content(model=FLASH, contents=prompt)
            out.append((r.text or "", usage_tuple(r.usage_metadata)))
        chunks = list(client.models.generate_content_stream(model=FLASH, contents="s"))
        out.append(("".join(c.text or "" for c in chunks), usage_tuple(chunks[-1].usage_metadata)))
        return out


def test_same_seed_same_results_different_seed_different() -> None:
    """The response sequence is a function of the seed."""
    assert _run_calls(11) == _run_calls(11)
    assert _run_calls(11) != _run_calls(12)


def test_reset_restarts_the_seeded_sequence(emu: EmulatorHandle) -> None:
    """After reset_stats the per-model sequence starts again, so results repeat."""
    client = client_for(emu)
    first = client.models.generate_content(model=FLASH, contents="q").text
    emu.reset_stats()
    assert client.models.generate_content(model=FLASH, contents="q").text == first


def test_async_running_emulator_in_current_loop() -> None:
    """The async context manager serves from the caller's own event loop."""

    async def scenario() -> None:
        async with async_running_emulator(seed=1, time_scale=0.0) as emu:
            client = client_for(emu)
            r = await client.aio.models.generate_content(
                model="gemini-2.5-flash-lite", contents="x"
            )
            assert r.text
            assert emu.stats()["requests"] == {"gemini-2.5-flash-lite": {"200": 1}}

    asyncio.run(scenario())


def test_unknown_model_is_404(emu: EmulatorHandle) -> None:
    """An unknown model is the API's 404 NOT_FOUND."""
    client = client_for(emu)
    with pytest.raises(genai.errors.ClientError) as info:
        client.models.generate_content(model="gemini-0.1-nope", contents="x")
    assert info.value.code == 404
    assert info.value.status == "NOT_FOUND"
    assert emu.stats()["requests"] == {"gemini-0.1-nope": {"404": 1}}


def test_concurrent_traffic_with_stream_errors_matches_ground_truth(emu: EmulatorHandle) -> None:
    """100 concurrent async calls, a third of the streams cut by errors: usage still adds up."""
    emu.set_fault("stream_error", status=503, after_chunks=2, rate=0.3)
    client = client_for(emu)

    async def one_stream(i: int) -> tuple[tuple[int, ...], bool]:
        last = None
        failed = False
        try:
            stream = await client.aio.models.generate_content_stream(
                model=FLASH, contents=f"stream {i} [[emulator:output_tokens=80]]"
            )
            async for chunk in stream:
                last = chunk
        except genai.errors.ServerError:
            failed = True
        return (usage_tuple(last.usage_metadata) if last else (0, 0, 0, 0)), failed

    async def one_call(i: int) -> tuple[tuple[int, ...], bool]:
        r = await client.aio.models.generate_content(model=FLASH, contents=f"call {i}")
        return usage_tuple(r.usage_metadata), False

    async def scenario() -> list[tuple[tuple[int, ...], bool]]:
        jobs = [one_stream(i) for i in range(50)] + [one_call(i) for i in range(50)]
        return await asyncio.gather(*jobs)

    results = asyncio.run(scenario())
    seen = (0, 0, 0, 0)
    for usage, _ in results:
        seen = add(seen, usage)
    failures = sum(failed for _, failed in results)
    assert 5 <= failures <= 30
    stats = emu.stats()
    assert stats["stream_errors"] == {FLASH: failures}
    assert stats["requests"] == {FLASH: {"200": 100}}
    assert truth_tuple(emu, FLASH) == seen


def test_both_api_versions_are_served(emu: EmulatorHandle) -> None:
    """The SDK's default (v1) and v1beta paths reach the same emulator."""
    for version in ("v1", "v1beta"):
        client = client_for(emu, api_version=version)
        assert client.models.generate_content(model=FLASH, contents="x").text
    assert emu.stats()["requests"] == {FLASH: {"200": 2}}


def test_aliases_count_under_their_model(tmp_path: Path) -> None:
    """A profile alias serves its model; requests and tokens are keyed by the model's name."""
    path = tmp_path / "alias.yaml"
    path.write_text(
        "models:\n  base: {ttft_median_s: 0, ttft_sigma: 0, aliases: [base-latest]}\n",
        encoding="utf-8",
    )
    with running_emulator(profile=path, time_scale=0.0) as handle:
        client = client_for(handle)
        r = client.models.generate_content(model="base-latest", contents="x")
        stats = handle.stats()
        assert stats["requests"] == {"base": {"200": 1}}
        assert truth_tuple(handle, "base") == usage_tuple(r.usage_metadata)
