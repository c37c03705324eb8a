"""Instrumentation overhead: microseconds added per call, against the bare SDK call.

The real google-genai SDK calls ``gemini-slo emulate`` (its own process, ``--time-scale 0``:
no model latency, so the HTTP round trip is all there is), in two shapes: a non-streamed
``generate_content`` and a streamed ``generate_content_stream`` (up to 256 output tokens,
thinking off: about 16 chunks). Three variants run in the same process, interleaved batch
by batch (round-robin, rotating which goes first), so that drift affects them alike:

* ``bare``: an uninstrumented client;
* ``gemini-slo``: a client patched with ``instrument(client)`` (all its signals recorded);
* ``official``: ``opentelemetry-instrumentation-google-genai`` (1.3b0, ``skip_dep_check``)
  with an SDK ``MeterProvider`` (in-memory reader) and ``TracerProvider`` (batch processor,
  in-memory exporter), as a user would run it; enabled around its batches only.

Every call is timed (wall clock, and CPU time of this process: the emulator runs in
another one); added cost = median per-call time of the variant - that of the bare client.
A second bare client is timed the same way as an A/A control: its "added cost" is the noise
floor. The same is also measured without HTTP (the SDK's methods replaced by canned
responses), which isolates the wrappers' own cost.

    .venv/bin/python bench/overhead.py [--rounds 40] [--batch 40]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from gemini_slo.emulator.testing import RemoteEmulator
from gemini_slo.instrumentation import Registry, instrument, observe, uninstrument
from google import genai
from google.genai import models as genai_models
from google.genai import types

MODEL = "gemini-2.5-flash"
CONFIG = types.GenerateContentConfig(
    max_output_tokens=256, thinking_config=types.ThinkingConfig(thinking_budget=0)
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Official:
    """The official instrumentation with real SDK providers, switchable per batch."""

    def __init__(self) -> None:
        from opentelemetry.instrumentation.google_genai import GoogleGenAiSdkInstrumentor
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        self.instrumentor = GoogleGenAiSdkInstrumentor()
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.tracer_provider = TracerProvider()
        self.spans = InMemorySpanExporter()
        self.tracer_provider.add_span_processor(BatchSpanProcessor(self.spans))

    def on(self) -> None:
        self.instrumentor.instrument(
            skip_dep_check=True,
            meter_provider=self.meter_provider,
            tracer_provider=self.tracer_provider,
        )

    def off(self) -> None:
        self.instrumentor.uninstrument()
        self.spans.clear()


def one_call(client: genai.Client, stream: bool) -> None:
    if stream:
        for _ in client.models.generate_content_stream(
            model=MODEL, contents="Tell me about SLOs", config=CONFIG
        ):
            pass
    else:
        client.models.generate_content(model=MODEL, contents="Tell me about SLOs", config=CONFIG)


def timed(fn: Callable[[], None]) -> tuple[float, float]:
    """(wall seconds, client-process CPU seconds) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


Results = dict[str, list[tuple[float, float]]]
Variant = tuple[Callable[[], None], Callable[[], None], Callable[[], None]]


def paired(variants: dict[str, Variant], rounds: int, batch: int) -> Results:
    """Time every call of every variant, interleaved; return per-call (wall, cpu) lists.

    Variants without a setup (plain clients) alternate call by call, in an order that
    rotates; a variant that must be switched on and off (the official instrumentation
    patches the SDK's classes) runs as one batch per round between them.
    """
    plain = [n for n, (setup, _, _) in variants.items() if setup is noop]
    switched = [n for n in variants if n not in plain]
    results: Results = {name: [] for name in variants}
    for r in range(rounds + 1):  # round 0 is a warm-up, not kept
        keep = r > 0
        for name in switched:
            setup, fn, teardown = variants[name]
            setup()
            times = [timed(fn) for _ in range(batch)]
            teardown()
            if keep:
                results[name].extend(times)
        for i in range(batch):
            k = (r + i) % len(plain)
            for name in plain[k:] + plain[:k]:
                t = timed(variants[name][1])
                if keep:
                    results[name].append(t)
    return results


def added_us(results: Results, name: str, which: int) -> float:
    """Median per-call time of the variant minus the bare one's, microseconds; which: 0 wall,
    1 CPU. Medians: robust to the HTTP path's heavy tail."""
    median = statistics.median
    return (
        median(t[which] for t in results[name]) - median(t[which] for t in results["bare"])
    ) * 1e6


def report(title: str, results: Results) -> dict[str, float]:
    out: dict[str, float] = {}
    for which, clock in ((0, "wall"), (1, "cpu")):
        bare_us = statistics.median(t[which] for t in results["bare"]) * 1e6
        ours = added_us(results, "gemini-slo", which)
        official = added_us(results, "official", which)
        ratio = official / ours if ours > 0 else float("inf")
        decorated = (
            f" | @observe +{added_us(results, '@observe', which):6.1f} us"
            if "@observe" in results
            else ""
        )
        control = (
            f" | A/A control {added_us(results, 'control', which):+6.1f} us"
            if "control" in results
            else ""
        )
        print(
            f"  {title:<38} {clock:<4} bare {bare_us:8.1f} us/call | gemini-slo +{ours:6.1f} us"
            f" | official +{official:7.1f} us | official/ours {ratio:5.1f}x{decorated}{control}"
        )
        out[f"{clock}_ours"], out[f"{clock}_official"], out[f"{clock}_ratio"] = (
            ours,
            official,
            ratio,
        )
    return out


def noop() -> None:
    pass


def observed_call(client: genai.Client, stream: bool) -> Callable[[], None]:
    """A call through an @observe-decorated function (uninstrumented client): the decorator
    reads usage from the returned response, or from the last chunk the generator yields."""
    registry = Registry()
    if stream:

        @observe(workload="bench", registry=registry)
        def chunks() -> Iterator[types.GenerateContentResponse]:
            yield from client.models.generate_content_stream(
                model=MODEL, contents="Tell me about SLOs", config=CONFIG
            )

        def consume() -> None:
            for _ in chunks():
                pass

        return consume

    @observe(workload="bench", registry=registry)
    def answer() -> types.GenerateContentResponse:
        return client.models.generate_content(
            model=MODEL, contents="Tell me about SLOs", config=CONFIG
        )

    def call() -> None:
        answer()

    return call


def http_bench(
    url: str, rounds: int, batch: int, official: Official
) -> dict[str, dict[str, float]]:
    options = types.HttpOptions(base_url=url)
    # One client per variant (own connection pool), and a second bare one as an A/A control
    # that shows the noise floor of the comparison.
    bare, control, ours, decorated, theirs = (
        genai.Client(api_key="bench", http_options=options) for _ in range(5)
    )
    instrument(ours, workload="bench", registry=Registry())
    out = {}
    for stream in (False, True):
        variants = {
            "bare": (noop, lambda stream=stream: one_call(bare, stream), noop),
            "control": (noop, lambda stream=stream: one_call(control, stream), noop),
            "gemini-slo": (noop, lambda stream=stream: one_call(ours, stream), noop),
            "@observe": (noop, observed_call(decorated, stream), noop),
            "official": (official.on, lambda stream=stream: one_call(theirs, stream), official.off),
        }
        title = "emulator, " + ("streamed" if stream else "non-streamed")
        out[title] = report(title, paired(variants, rounds, batch))
    uninstrument(ours)
    return out


def stub_bench(
    url: str, rounds: int, batch: int, official: Official
) -> dict[str, dict[str, float]]:
    """The same, with the SDK's HTTP layer replaced by canned responses (no network)."""
    client = genai.Client(api_key="bench", http_options=types.HttpOptions(base_url=url))
    response = client.models.generate_content(
        model=MODEL, contents="Tell me about SLOs", config=CONFIG
    )
    chunks = list(
        client.models.generate_content_stream(
            model=MODEL, contents="Tell me about SLOs", config=CONFIG
        )
    )
    originals = {
        name: genai_models.Models.__dict__[name]
        for name in ("generate_content", "generate_content_stream")
    }

    def canned(self: Any, *, model: str, contents: Any, config: Any = None) -> Any:
        return response

    def canned_stream(self: Any, *, model: str, contents: Any, config: Any = None) -> Any:
        yield from chunks

    genai_models.Models.generate_content = canned  # type: ignore[method-assign]
    genai_models.Models.generate_content_stream = canned_stream  # type: ignore[method-assign]
    try:
        bare = genai.Client(api_key="bench", http_options=types.HttpOptions(base_url=url))
        ours = genai.Client(api_key="bench", http_options=types.HttpOptions(base_url=url))
        instrument(ours, workload="bench", registry=Registry())
        out = {}
        for stream in (False, True):
            variants = {
                "bare": (noop, lambda stream=stream: one_call(bare, stream), noop),
                "gemini-slo": (noop, lambda stream=stream: one_call(ours, stream), noop),
                "official": (
                    official.on,
                    lambda stream=stream: one_call(bare, stream),
                    official.off,
                ),
            }
            title = f"no network, {'streamed' if stream else 'non-streamed'} ({len(chunks) if stream else 1} chunks)"
            out[title] = report(title, paired(variants, rounds, batch * 5))
        uninstrument(ours)
    finally:
        for name, fn in originals.items():
            setattr(genai_models.Models, name, fn)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--batch", type=int, default=40)
    args = parser.parse_args()

    port = free_port()
    exe = Path(sys.executable).parent / "gemini-slo"
    process = subprocess.Popen(
        [str(exe), "emulate", "--port", str(port), "--time-scale", "0", "--no-quotas"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ},
    )
    try:
        url = f"http://127.0.0.1:{port}"
        RemoteEmulator(url).wait_ready()
        official = Official()
        print(
            f"overhead per call, {args.rounds} interleaved rounds x {args.batch} calls per variant (medians)"
        )
        http = http_bench(url, args.rounds, args.batch, official)
        stub = stub_bench(url, args.rounds, args.batch, official)
    finally:
        process.terminate()
        process.wait(timeout=10)
    targets = {"emulator, non-streamed": 25.0, "emulator, streamed": 40.0}
    ok = True
    print("targets (<= 25 us non-streamed, <= 40 us streamed, >= 10x less than official):")
    for title, limit in targets.items():
        for clock in ("wall", "cpu"):
            figures = http[title]
            verdict = figures[f"{clock}_ours"] <= limit and figures[f"{clock}_ratio"] >= 10
            ok &= verdict
            print(
                f"  {title:<24} {clock:<4}: +{figures[f'{clock}_ours']:.1f} us, "
                f"{figures[f'{clock}_ratio']:.1f}x less than official: {'met' if verdict else 'NOT met'}"
            )
    del stub
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
