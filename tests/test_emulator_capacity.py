"""The emulator's capacity model over HTTP: a pool's latency grows with its requests in flight.

Two models in one pool interfere (a burst of long generations on one slows the other's time
to first token); a model outside the pool does not notice the burst.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
from gemini_slo.emulator.capacity import Pool
from gemini_slo.emulator.profile import load_profile, with_pools
from gemini_slo.emulator.testing import async_running_emulator

CHAT = "gemini-2.5-flash"
BATCH = "gemini-2.5-pro"
OTHER = "gemini-2.5-flash-lite"
TIME_SCALE = 0.1


def _body(text: str, model: str) -> dict[str, object]:
    config: dict[str, object] = {"maxOutputTokens": 4096}
    if model != BATCH:  # 2.5 Pro cannot turn thinking off
        config["thinkingConfig"] = {"thinkingBudget": 0}
    return {"contents": [{"role": "user", "parts": [{"text": text}]}], "generationConfig": config}


async def _first_byte(session: aiohttp.ClientSession, url: str, model: str) -> float:
    """Seconds to the headers of a stream (time to first token comes before them)."""
    started = time.perf_counter()
    async with session.post(
        f"{url}/v1beta/models/{model}:streamGenerateContent?alt=sse",
        json=_body("hi [[emulator:output_tokens=4]]", model),
        headers={"x-goog-api-key": "k"},
    ) as response:
        assert response.status == 200
        elapsed = time.perf_counter() - started
        await response.read()
    return elapsed


async def _generate(session: aiohttp.ClientSession, url: str, model: str) -> None:
    async with session.post(
        f"{url}/v1beta/models/{model}:generateContent",
        json=_body("long [[emulator:output_tokens=400]]", model),
        headers={"x-goog-api-key": "k"},
    ) as response:
        assert response.status == 200
        await response.read()


async def _median_ttft(session: aiohttp.ClientSession, url: str, model: str, n: int = 5) -> float:
    values = sorted([await _first_byte(session, url, model) for _ in range(n)])
    return values[n // 2]


def test_a_shared_pool_slows_the_other_model_and_spares_models_outside() -> None:
    """With 12 long generations in a pool of 4, the pool's other model answers later; a model
    outside the pool answers as fast as before."""
    profile = with_pools(
        load_profile(),
        {"shared": Pool("shared", capacity=4, ttft_gain=1.5)},
        {CHAT: "shared", BATCH: "shared"},
    )

    async def scenario() -> tuple[float, float, float, float, dict[str, object]]:
        async with (
            async_running_emulator(seed=3, profile=profile, time_scale=TIME_SCALE) as emu,
            aiohttp.ClientSession() as session,
        ):
            quiet_chat = await _median_ttft(session, emu.url, CHAT)
            quiet_other = await _median_ttft(session, emu.url, OTHER)
            burst = [asyncio.create_task(_generate(session, emu.url, BATCH)) for _ in range(12)]
            await asyncio.sleep(0.3)  # the burst is planned and in flight
            busy_chat = await _median_ttft(session, emu.url, CHAT)
            busy_other = await _median_ttft(session, emu.url, OTHER)
            pools = emu.stats()["pools"]
            await asyncio.gather(*burst)
            return quiet_chat, busy_chat, quiet_other, busy_other, pools

    quiet_chat, busy_chat, quiet_other, busy_other, pools = asyncio.run(scenario())
    # 13 in a pool of 4: load 3.25, TTFT x (1 + 1.5 * 5.5) = x9.25 (the seeded draw varies).
    assert busy_chat > 3 * quiet_chat, (quiet_chat, busy_chat)
    assert busy_other < 2 * quiet_other + 0.05, (quiet_other, busy_other)
    assert pools["shared"]["peak_in_flight"] >= 13  # type: ignore[index]
    assert pools["shared"]["capacity"] == 4  # type: ignore[index]
