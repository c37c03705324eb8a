"""Fault injection and quotas, seen through the real google-genai SDK and the admin API."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from gemini_slo.emulator.testing import EmulatorHandle, RemoteEmulator, running_emulator
from google import genai
from google.genai import errors, types

FLASH = "gemini-2.5-flash"


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorHandle]:
    """One fast emulator (no model latency) for the whole module."""
    with running_emulator(seed=5, time_scale=0.0) as handle:
        yield handle


@pytest.fixture(autouse=True)
def _clean(emu: EmulatorHandle) -> None:
    """Each test starts from zero ground truth, no faults and default quotas."""
    emu.clear_faults()
    emu.reset_stats()
    emu.set_quota(FLASH, rpm=10000, tpm=8000000)


def client_for(url: str, **http: Any) -> genai.Client:
    """A real SDK client pointed at the emulator."""
    return genai.Client(api_key="test", http_options=types.HttpOptions(base_url=url, **http))


def wait_for(predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Poll until ``predicate`` holds (server-side bookkeeping after a disconnect is async)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


@pytest.mark.parametrize(
    ("status", "error_type", "rpc_status"),
    [
        (429, errors.ClientError, "RESOURCE_EXHAUSTED"),
        (500, errors.ServerError, "INTERNAL"),
        (503, errors.ServerError, "UNAVAILABLE"),
        (504, errors.ServerError, "DEADLINE_EXCEEDED"),
    ],
)
def test_injected_errors_surface_as_sdk_errors(
    emu: EmulatorHandle, status: int, error_type: type[errors.APIError], rpc_status: str
) -> None:
    """error_rate faults give the SDK's ClientError/ServerError with the right code and status."""
    client = client_for(emu.url)
    emu.set_fault("error_rate", model=FLASH, status=status)
    with pytest.raises(error_type) as info:
        client.models.generate_content(model=FLASH, contents="x")
    assert info.value.code == status
    assert info.value.status == rpc_status
    with pytest.raises(error_type):
        list(client.models.generate_content_stream(model=FLASH, contents="x"))
    # Other models are not affected by a per-model fault.
    assert client.models.generate_content(model="gemini-2.5-flash-lite", contents="x").text
    assert emu.stats()["requests"][FLASH] == {str(status): 2}
    assert FLASH not in emu.stats()["tokens"]


def test_429_carries_retry_info(emu: EmulatorHandle) -> None:
    """An injected 429 has a google.rpc.RetryInfo detail with the configured delay."""
    emu.set_fault("error_rate", status=429, retry_delay_s=7)
    client = client_for(emu.url)  # keep a reference: a collected client closes its session
    with pytest.raises(errors.ClientError) as info:
        client.models.generate_content(model=FLASH, contents="x")
    details = info.value.details["error"]["details"]
    assert {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"} in details


def test_error_rate_is_a_probability(emu: EmulatorHandle) -> None:
    """rate=0.5 fails about half of the requests (seeded, so the count is stable)."""
    emu.set_fault("error_rate", status=503, rate=0.5)
    client = client_for(emu.url)
    failures = 0
    for _ in range(40):
        try:
            client.models.generate_content(model=FLASH, contents="x")
        except errors.ServerError:
            failures += 1
    assert 8 <= failures <= 32
    assert emu.stats()["requests"][FLASH] == {"200": 40 - failures, "503": failures}


def test_sdk_retries_see_every_attempt(emu: EmulatorHandle) -> None:
    """With HttpRetryOptions the SDK retries a 503; the ground truth counts each attempt."""
    retry = types.HttpRetryOptions(attempts=3, initial_delay=0.01, max_delay=0.02)
    client = client_for(emu.url, retry_options=retry)
    emu.set_fault("error_rate", model=FLASH, status=503)
    with pytest.raises(errors.ServerError):
        client.models.generate_content(model=FLASH, contents="x")
    assert emu.stats()["requests"][FLASH] == {"503": 3}


def test_error_after_a_delay(emu: EmulatorHandle) -> None:
    """extra_delay with error_rate: the error comes after the wait (e.g. a gateway's 504)."""
    emu.set_fault("extra_delay", seconds=0.3)
    emu.set_fault("error_rate", status=504)
    client = client_for(emu.url)
    started = time.monotonic()
    with pytest.raises(errors.ServerError) as info:
        client.models.generate_content(model=FLASH, contents="x")
    assert info.value.code == 504
    assert time.monotonic() - started >= 0.3


def test_error_marker(emu: EmulatorHandle) -> None:
    """[[emulator:error=NNN]] fails just that request."""
    client = client_for(emu.url)
    with pytest.raises(errors.ServerError) as info:
        client.models.generate_content(model=FLASH, contents="[[emulator:error=503]]")
    assert info.value.code == 503


def test_quota_rpm_and_tpm_give_429_with_retry_info(emu: EmulatorHandle) -> None:
    """Exceeding requests or tokens per minute is a 429 with QuotaFailure and RetryInfo."""
    client = client_for(emu.url)
    emu.set_quota(FLASH, rpm=2, tpm=0)
    client.models.generate_content(model=FLASH, contents="x")
    client.models.generate_content(model=FLASH, contents="x")
    with pytest.raises(errors.ClientError) as info:
        client.models.generate_content(model=FLASH, contents="x")
    assert info.value.code == 429
    details = info.value.details["error"]["details"]
    types_ = [d["@type"] for d in details]
    assert "type.googleapis.com/google.rpc.QuotaFailure" in types_
    retry = next(d for d in details if d["@type"].endswith("RetryInfo"))
    assert 1 <= int(retry["retryDelay"].rstrip("s")) <= 60

    emu.reset_stats()
    emu.set_quota(FLASH, rpm=0, tpm=10)
    client.models.generate_content(model=FLASH, contents="one two three four five six")
    with pytest.raises(errors.ClientError) as info:
        client.models.generate_content(model=FLASH, contents="one two three four five six")
    assert info.value.code == 429
    assert emu.stats()["requests"][FLASH] == {"200": 1, "429": 1}


def test_sync_stall_times_out_on_the_client(emu: EmulatorHandle) -> None:
    """A stall never answers; the sync SDK raises httpx2.ReadTimeout and the server sees 499."""
    emu.set_fault("stall", model=FLASH)
    client = client_for(emu.url, timeout=400)
    started = time.monotonic()
    with pytest.raises(httpx2.TimeoutException):
        client.models.generate_content(model=FLASH, contents="x")
    assert time.monotonic() - started < 3
    wait_for(lambda: emu.stats()["requests"].get(FLASH) == {"499": 1})
    assert emu.stats()["in_flight"] == 0


def test_async_stall_times_out_and_mid_stream_stall(emu: EmulatorHandle) -> None:
    """The async SDK raises TimeoutError, before the headers or in the middle of a stream."""
    client = client_for(emu.url, timeout=400)

    async def scenario() -> int:
        fault = emu.set_fault("stall")
        with pytest.raises(TimeoutError):
            await client.aio.models.generate_content(model=FLASH, contents="x")
        emu.clear_fault(fault)
        emu.set_fault("stall", after_chunks=2)
        received = 0
        with pytest.raises(TimeoutError):
            stream = await client.aio.models.generate_content_stream(
                model=FLASH, contents="[[emulator:output_tokens=200]]"
            )
            async for _ in stream:
                received += 1
        return received

    assert asyncio.run(scenario()) == 2
    wait_for(lambda: emu.stats()["requests"].get(FLASH) == {"499": 1, "200": 1})
    # The stream wrote two chunks of 16 tokens before stalling: that usage is what counts.
    assert emu.stats()["tokens"][FLASH]["output"] == 32


def test_mid_stream_error_raises_while_iterating(emu: EmulatorHandle) -> None:
    """stream_error: chunks arrive, then the SDK raises the error event's code."""
    emu.set_fault("stream_error", status=503, after_chunks=3)
    client = client_for(emu.url)
    received = []
    with pytest.raises(errors.ServerError) as info:
        for chunk in client.models.generate_content_stream(
            model=FLASH, contents="[[emulator:output_tokens=200]]"
        ):
            received.append(chunk)
    assert info.value.code == 503
    assert len(received) == 3
    last = received[-1].usage_metadata
    assert last is not None
    stats = emu.stats()
    assert stats["requests"][FLASH] == {"200": 1}
    assert stats["stream_errors"] == {FLASH: 1}
    assert stats["tokens"][FLASH]["output"] == last.candidates_token_count == 48

    async def run_async() -> None:
        stream = await client.aio.models.generate_content_stream(model=FLASH, contents="x y")
        with pytest.raises(errors.ServerError):
            async for _ in stream:
                pass

    asyncio.run(run_async())


def test_non_streamed_calls_ignore_stream_error(emu: EmulatorHandle) -> None:
    """stream_error only affects streams."""
    emu.set_fault("stream_error")
    client = client_for(emu.url)
    assert client.models.generate_content(model=FLASH, contents="x").text


def _admin(url: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_admin_api_sets_lists_expires_and_clears_faults(emu: EmulatorHandle) -> None:
    """Faults through HTTP: create (201 + id), list, expire by duration, delete one, delete all."""
    status, fault = _admin(
        emu.url,
        "POST",
        "/_emulator/faults",
        {"kind": "extra_delay", "seconds": 0.01, "duration_s": 0.3},
    )
    assert status == 201
    assert fault["kind"] == "extra_delay"
    assert fault["model"] == "*"
    status, other = _admin(
        emu.url,
        "POST",
        "/_emulator/faults",
        {"kind": "error_rate", "model": FLASH, "params": {"status": 500, "rate": 0.1}},
    )
    assert status == 201
    listed = _admin(emu.url, "GET", "/_emulator/faults")[1]["faults"]
    assert {f["id"] for f in listed} == {fault["id"], other["id"]}
    time.sleep(0.35)
    listed = _admin(emu.url, "GET", "/_emulator/faults")[1]["faults"]
    assert [f["id"] for f in listed] == [other["id"]]
    assert _admin(emu.url, "DELETE", f"/_emulator/faults/{other['id']}")[0] == 200
    assert _admin(emu.url, "DELETE", f"/_emulator/faults/{other['id']}")[0] == 404
    _admin(emu.url, "POST", "/_emulator/faults", {"kind": "block"})
    assert _admin(emu.url, "DELETE", "/_emulator/faults") == (200, {"cleared": 1})
    assert _admin(emu.url, "GET", "/_emulator/faults")[1] == {"faults": []}


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "nope"},
        {"kind": "latency_multiplier"},
        {"kind": "error_rate", "status": 200},
        {"kind": "error_rate", "rate": 2},
        {"kind": "block", "duration_s": -1},
        {"kind": "stall", "colour": "red"},
    ],
)
def test_admin_api_rejects_bad_faults(emu: EmulatorHandle, spec: dict[str, Any]) -> None:
    """Bad fault specifications are a 400 with the error JSON, and nothing is registered."""
    status, body = _admin(emu.url, "POST", "/_emulator/faults", spec)
    assert status == 400
    assert body["error"]["status"] == "INVALID_ARGUMENT"
    assert emu.faults() == []


def test_remote_emulator_matches_handle(emu: EmulatorHandle) -> None:
    """RemoteEmulator drives the same admin API over HTTP."""
    remote = RemoteEmulator(emu.url)
    client = client_for(emu.url)
    remote.wait_ready()
    fault_id = remote.set_fault("error_rate", model=FLASH, status=503)
    assert [f["id"] for f in remote.faults()] == [fault_id]
    with pytest.raises(errors.ServerError):
        client.models.generate_content(model=FLASH, contents="x")
    assert remote.stats()["requests"] == {FLASH: {"503": 1}}
    remote.clear_fault(fault_id)
    remote.clear_fault(fault_id)  # already gone: not an error
    remote.set_quota(FLASH, rpm=1)
    client.models.generate_content(model=FLASH, contents="x")
    with pytest.raises(errors.ClientError):
        client.models.generate_content(model=FLASH, contents="x")
    remote.reset_stats()
    assert remote.stats()["requests"] == {}
    remote.clear_faults()


@pytest.fixture(scope="module")
def timed_emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorHandle]:
    """An emulator with a small, jitter-free latency model, for timing assertions."""
    path: Path = tmp_path_factory.mktemp("profile") / "timed.yaml"
    path.write_text(
        "models:\n"
        "  timed:\n"
        "    ttft_median_s: 0.1\n"
        "    ttft_sigma: 0\n"
        "    decode_tokens_per_s: 1000\n"
        "    decode_jitter: 0\n"
        "    output_tokens_median: 100\n"
        "    output_tokens_sigma: 0\n"
        "    chunk_tokens: 20\n",
        encoding="utf-8",
    )
    with running_emulator(seed=0, profile=path) as handle:
        yield handle


def _timed_call(emu: EmulatorHandle) -> float:
    client = client_for(emu.url)
    started = time.monotonic()
    client.models.generate_content(model="timed", contents="x")
    return time.monotonic() - started


def test_latency_model_and_latency_faults(timed_emu: EmulatorHandle) -> None:
    """0.1 s TTFT + 100 tokens at 1000/s; multiplier, extra delay and token rate change it."""
    base = _timed_call(timed_emu)
    assert 0.19 <= base < 1.5  # upper bounds are loose: CI machines are busy
    fault = timed_emu.set_fault("latency_multiplier", factor=3)
    assert 0.59 <= _timed_call(timed_emu) < 2.5
    timed_emu.clear_fault(fault)
    fault = timed_emu.set_fault("extra_delay", seconds=0.3)
    assert 0.49 <= _timed_call(timed_emu) < 2.0
    timed_emu.clear_fault(fault)
    fault = timed_emu.set_fault("token_rate", factor=0.25)  # decode 0.1 s -> 0.4 s
    assert 0.49 <= _timed_call(timed_emu) < 2.0
    timed_emu.clear_fault(fault)


def test_stream_time_to_first_chunk(timed_emu: EmulatorHandle) -> None:
    """A stream's first chunk comes after the TTFT, the rest at the decode rate."""
    client = client_for(timed_emu.url)
    started = time.monotonic()
    arrivals = [
        time.monotonic() - started
        for _ in client.models.generate_content_stream(model="timed", contents="x")
    ]
    assert len(arrivals) == 5  # 100 tokens in chunks of 20
    assert 0.1 <= arrivals[0] < 1.5
    assert 0.19 <= arrivals[-1] < 2.0


def test_fault_expires_by_duration(timed_emu: EmulatorHandle) -> None:
    """A fault with duration_s stops applying by itself."""
    timed_emu.set_fault("extra_delay", seconds=3.0, duration_s=0.2)
    time.sleep(0.25)
    assert _timed_call(timed_emu) < 2.0  # the 3 s delay no longer applies
    assert timed_emu.faults() == []
