"""Public helpers to run the emulator inside tests, demos and benchmarks.

Stable API (other packages' tests and the demo use exactly this)::

    from google import genai
    from google.genai import types
    from gemini_slo.emulator.testing import running_emulator

    with running_emulator(seed=1, time_scale=0.0) as emu:
        client = genai.Client(api_key="test", http_options=types.HttpOptions(base_url=emu.url))
        fault_id = emu.set_fault("error_rate", model="gemini-2.5-flash", status=503, rate=0.5)
        ...
        emu.clear_fault(fault_id)
        truth = emu.stats()  # {"requests": {...}, "tokens": {...}, ...}, see stats.py

- :func:`running_emulator` (context manager) starts a server on 127.0.0.1 and a free port in
  a background thread with its own event loop, and stops it on exit. ``**options`` are
  :class:`~gemini_slo.emulator.server.EmulatorConfig` fields: ``time_scale`` (0.0 = no model
  latency; faults' own delays still apply), ``quotas``, ``require_api_key``,
  ``max_body_bytes``.
- :func:`async_running_emulator` (async context manager) serves from the running event loop.
- :class:`EmulatorHandle`: ``url`` (the ``base_url`` for ``HttpOptions``), ``set_fault``,
  ``clear_fault``, ``clear_faults``, ``faults``, ``stats``, ``reset_stats``, ``set_quota``.
  Its methods act on the emulator directly (thread-safe), so they work from any thread and
  from inside the serving loop alike.
- :class:`RemoteEmulator`: the same methods over the admin HTTP API, for an emulator in
  another process (``gemini-slo emulate``), e.g. in benchmarks.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from gemini_slo.emulator.profile import Profile, load_profile
from gemini_slo.emulator.server import Emulator, EmulatorConfig, start_server


class EmulatorHandle:
    """A running in-process emulator."""

    def __init__(self, emulator: Emulator, url: str) -> None:
        self.emulator = emulator
        self.url = url
        """Base URL for ``types.HttpOptions(base_url=...)``, e.g. ``http://127.0.0.1:41234``."""

    def set_fault(
        self, kind: str, model: str = "*", duration_s: float | None = None, **params: Any
    ) -> str:
        """Inject a fault (kinds and parameters: ``gemini_slo.emulator.faults``); return its id.

        Raises ``ValueError`` (``FaultError``) for an unknown kind or bad parameters.
        """
        return self.emulator.faults.add(kind, model, duration_s, **params).id

    def clear_fault(self, fault_id: str) -> None:
        """Clear one fault (no error if it already expired)."""
        self.emulator.faults.remove(fault_id)

    def clear_faults(self) -> None:
        """Clear every fault."""
        self.emulator.faults.clear()

    def faults(self) -> list[dict[str, Any]]:
        """The live faults, as the admin API lists them."""
        now = time.monotonic()
        return [f.to_json(now) for f in self.emulator.faults.active(now)]

    def stats(self) -> dict[str, Any]:
        """Ground truth (shape and definitions: ``gemini_slo.emulator.stats``; ``pools`` too
        when the profile has pools, and ``batches``, as the admin API answers)."""
        return self.emulator.ground_truth()

    def reset_stats(self) -> None:
        """Zero the ground truth and the quota windows (and the seed sequence numbers)."""
        self.emulator.reset()

    def set_quota(self, model: str, rpm: int | None = None, tpm: int | None = None) -> None:
        """Override a model's per-minute quotas (0 = unlimited, None = unchanged)."""
        self.emulator.quotas.set_limits(model, rpm, tpm)


def _make_emulator(
    seed: int, profile: str | Path | Profile | None, options: dict[str, Any]
) -> Emulator:
    loaded = profile if isinstance(profile, Profile) else load_profile(profile)
    return Emulator(EmulatorConfig(seed=seed, profile=loaded, **options))


@contextmanager
def running_emulator(
    seed: int = 0, profile: str | Path | Profile | None = None, **options: Any
) -> Iterator[EmulatorHandle]:
    """Serve an emulator on 127.0.0.1 (free port) from a background thread while in the block.

    ``profile`` is a profile file, a loaded :class:`~gemini_slo.emulator.profile.Profile`
    (e.g. from ``profile.with_pools``), or None for the shipped one.
    """
    emulator = _make_emulator(seed, profile, options)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def serve() -> None:
        try:
            runner, port = await start_server(emulator)
        except BaseException as exc:  # reported to the caller's thread below
            box["error"] = exc
            ready.set()
            return
        box["port"] = port
        stop = asyncio.Event()
        box["stop"] = stop
        ready.set()
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    thread = threading.Thread(
        target=loop.run_until_complete, args=(serve(),), name="gemini-slo-emulator", daemon=True
    )
    thread.start()
    ready.wait(timeout=30)
    if "port" not in box:
        thread.join(timeout=5)
        raise RuntimeError("the emulator did not start") from box.get("error")
    try:
        yield EmulatorHandle(emulator, f"http://127.0.0.1:{box['port']}")
    finally:
        loop.call_soon_threadsafe(box["stop"].set)
        thread.join(timeout=30)
        loop.close()


@asynccontextmanager
async def async_running_emulator(
    seed: int = 0, profile: str | Path | Profile | None = None, **options: Any
) -> AsyncIterator[EmulatorHandle]:
    """Serve an emulator from the current event loop while in the block."""
    emulator = _make_emulator(seed, profile, options)
    runner, port = await start_server(emulator)
    try:
        yield EmulatorHandle(emulator, f"http://127.0.0.1:{port}")
    finally:
        await runner.cleanup()


class RemoteEmulator:
    """The admin API of an emulator at ``url`` (another process), with the handle's methods."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
            return json.loads(response.read() or b"null")

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        """Poll ``/_emulator/health`` until it answers (for a freshly started process)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self._call("GET", "/_emulator/health")
                return
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def set_fault(
        self, kind: str, model: str = "*", duration_s: float | None = None, **params: Any
    ) -> str:
        """Inject a fault; return its id."""
        spec = {"kind": kind, "model": model, "duration_s": duration_s, "params": params}
        return str(self._call("POST", "/_emulator/faults", spec)["id"])

    def clear_fault(self, fault_id: str) -> None:
        """Clear one fault (no error if it already expired)."""
        try:
            self._call("DELETE", f"/_emulator/faults/{fault_id}")
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise

    def clear_faults(self) -> None:
        """Clear every fault."""
        self._call("DELETE", "/_emulator/faults")

    def faults(self) -> list[dict[str, Any]]:
        """The live faults."""
        return list(self._call("GET", "/_emulator/faults")["faults"])

    def stats(self) -> dict[str, Any]:
        """Ground truth."""
        return dict(self._call("GET", "/_emulator/stats"))

    def reset_stats(self) -> None:
        """Zero the ground truth and the quota windows."""
        self._call("POST", "/_emulator/reset", {})

    def set_quota(self, model: str, rpm: int | None = None, tpm: int | None = None) -> None:
        """Override a model's per-minute quotas."""
        self._call("POST", "/_emulator/quotas", {"model": model, "rpm": rpm, "tpm": tpm})
