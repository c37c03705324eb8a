"""Batch job instrumentation overhead: what the patch adds to a ``batches.get`` poll.

A polling loop calls ``client.batches.get`` on the same jobs again and again; the patch
reads each returned job and updates its record (a finished job: one set lookup). Against
an in-process emulator (its own thread; jobs already SUCCEEDED with 20 inline responses, the
biggest object a poll returns), two clients poll the same job, interleaved call by call
with the order rotating: ``bare`` (uninstrumented) and ``patched`` (``instrument(client)``);
a second bare client is the A/A control (its "added cost" is the noise floor). Figures are
medians of per-call wall time, and the added cost and ratio against ``bare``.

Also, without HTTP: the cost of one ``track_batch`` observation of a finished job (the
steady state of a polling loop) and of a job's first, terminal observation (records,
tokens, cost of 20 responses), against reading the job (``view_of``) alone.

    .venv/bin/python bench/batch_overhead.py [--rounds 300]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from gemini_slo.emulator.batches import BatchTiming
from gemini_slo.emulator.testing import running_emulator
from gemini_slo.instrumentation import Registry, instrument, track_batch
from gemini_slo.instrumentation._batches import view_of
from google import genai
from google.genai import types

MODEL = "gemini-2.5-flash"


def _client(url: str) -> genai.Client:
    return genai.Client(api_key="k", http_options=types.HttpOptions(base_url=url))


def _median_us(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6


def http_polls(rounds: int) -> None:
    """Interleaved polls of one finished job: bare, patched, bare again (A/A)."""
    with running_emulator(batch=BatchTiming(queue_s=0.0, requests_per_s=1e6)) as emulator:
        clients = {"bare": _client(emulator.url), "patched": _client(emulator.url)}
        clients["bare (A/A)"] = _client(emulator.url)
        instrument(clients["patched"], workload="bench", registry=Registry())
        src = [{"contents": [{"parts": [{"text": f"item {i}"}]}]} for i in range(20)]
        name = clients["bare"].batches.create(model=MODEL, src=src).name or ""
        time.sleep(0.05)
        for c in clients.values():  # warm up: connections, the job's record
            c.batches.get(name=name)
        times: dict[str, list[float]] = {k: [] for k in clients}
        order = list(clients)
        for i in range(rounds):
            rotated = order[i % len(order) :] + order[: i % len(order)]
            for key in rotated:
                start = time.perf_counter()
                clients[key].batches.get(name=name)
                times[key].append(time.perf_counter() - start)
    base = _median_us(times["bare"])
    print(f"batches.get of a finished job with 20 inline responses, {rounds} rounds:")
    for key, samples in times.items():
        median = _median_us(samples)
        print(
            f"  {key:<11} median {median:8.1f} us   added {median - base:+7.1f} us   "
            f"ratio {median / base:.3f}"
        )


def observations(rounds: int) -> None:
    """track_batch on REST JSON, without HTTP: steady-state poll and first terminal sight."""
    responses = [
        {"response": {"usageMetadata": {"promptTokenCount": 100, "candidatesTokenCount": 400}}}
        for _ in range(20)
    ]

    def job(i: int) -> dict[str, Any]:
        return {
            "name": f"batches/j{i}",
            "metadata": {
                "state": "BATCH_STATE_SUCCEEDED",
                "model": f"models/{MODEL}",
                "createTime": "2026-12-02T10:00:00Z",
                "endTime": "2026-12-02T11:00:00Z",
                "output": {"inlinedResponses": {"inlinedResponses": responses}},
            },
        }

    registry = Registry()
    jobs = [job(i) for i in range(rounds)]
    track_batch(jobs[0], registry=registry)
    read, steady, first = [], [], []
    for i, j in enumerate(jobs):
        start = time.perf_counter()
        view_of(j)
        read.append(time.perf_counter() - start)
        start = time.perf_counter()
        track_batch(jobs[0], registry=registry)  # already finished: counted once
        steady.append(time.perf_counter() - start)
        if i:
            start = time.perf_counter()
            track_batch(j, registry=registry)
            first.append(time.perf_counter() - start)
    base = _median_us(read)
    print(f"track_batch without HTTP (REST JSON, 20 responses), {rounds} jobs:")
    for label, samples in (
        ("view_of only", read),
        ("poll, ended", steady),
        ("first, ended", first),
    ):
        median = _median_us(samples)
        print(f"  {label:<13} median {median:7.1f} us   ratio to view_of {median / base:.2f}")


def main() -> None:
    """Print both measurements."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    http_polls(args.rounds)
    observations(args.rounds)


if __name__ == "__main__":
    main()
