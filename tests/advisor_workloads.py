"""Known workloads for the advisor's tests, in their own process: ``python advisor_workloads.py JSON``.

Through the real google-genai SDK and the instrumentation (``observe``, OTLP every second
to the agent), against an emulator:

* ``chat``: Poisson arrivals (``chat_rate``/s) of short streamed answers on gemini-2.5-flash,
  through an AdmissionQueue: clearly interactive;
* ``batch``: workers generating long answers (800-1500 tokens, not streamed) back to back on
  gemini-2.5-flash-lite, in phases ``batch_phases`` = ``[[workers, seconds], ...]`` with the
  concurrency limit following the phase: clearly batch;
* ``assistant`` (when ``assistant`` is true): both shapes under one name and one declared
  mode (latency): streamed short answers on gemini-2.5-flash and long generations on
  gemini-2.5-flash-lite.

Config keys: ``emulator``, ``endpoint`` (the agent's /v1/metrics), ``chat_rate``,
``batch_phases``, ``assistant``, ``seed``. Runs as long as the batch phases (chat and the
assistant stop with the last phase), then flushes.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from typing import Any

from gemini_slo.instrumentation import AdmissionQueue, QueueRejected, configure, flush, observe
from gemini_slo.instrumentation import shutdown as shutdown_instrumentation
from google import genai
from google.genai import types

CHAT_MODEL = "gemini-2.5-flash"
BATCH_MODEL = "gemini-2.5-flash-lite"
SHORT = types.GenerateContentConfig(
    max_output_tokens=32, thinking_config=types.ThinkingConfig(thinking_budget=0)
)
LONG = types.GenerateContentConfig(max_output_tokens=4096)


def make_chat(client: genai.Client, workload: str, queue: AdmissionQueue | None) -> Any:
    @observe(workload=workload, mode="latency", model=CHAT_MODEL, deadline=10.0, queue=queue)
    async def chat(prompt: str) -> Any:
        stream = await client.aio.models.generate_content_stream(
            model=CHAT_MODEL, contents=prompt, config=SHORT
        )
        async for chunk in stream:
            yield chunk

    return chat


def make_generate(client: genai.Client, workload: str, mode: str, limit: int | None) -> Any:
    @observe(workload=workload, mode=mode, model=BATCH_MODEL, concurrency_limit=limit)
    async def generate(prompt: str) -> Any:
        return await client.aio.models.generate_content(
            model=BATCH_MODEL, contents=prompt, config=LONG
        )

    return generate


async def arrivals(rate: float, until: float, rng: random.Random, call: Any) -> None:
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()

    async def one() -> None:
        try:
            async for _ in call("hello there, how are you today?"):
                pass
        except (QueueRejected, Exception):
            pass

    while loop.time() < until:
        await asyncio.sleep(rng.expovariate(rate))
        task = asyncio.create_task(one())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks, return_exceptions=True)


async def workers(n: int, until: float, rng: random.Random, call: Any) -> None:
    loop = asyncio.get_running_loop()

    async def worker() -> None:
        while loop.time() < until:
            length = rng.randint(800, 1500)
            try:
                await call(f"write a long report [[emulator:output_tokens={length}]]")
            except Exception:
                await asyncio.sleep(0.2)

    await asyncio.gather(*(worker() for _ in range(n)))


async def main(cfg: dict[str, Any]) -> None:
    client = genai.Client(api_key="test", http_options=types.HttpOptions(base_url=cfg["emulator"]))
    rng = random.Random(cfg.get("seed", 1))
    loop = asyncio.get_running_loop()
    phases = [(int(n), float(s)) for n, s in cfg["batch_phases"]]
    end = loop.time() + sum(s for _, s in phases)
    jobs = [
        arrivals(
            cfg["chat_rate"],
            end,
            rng,
            make_chat(client, "chat", AdmissionQueue(32, 0.5, name="chat")),
        )
    ]
    if cfg.get("assistant"):
        jobs.append(arrivals(cfg["chat_rate"] / 2, end, rng, make_chat(client, "assistant", None)))
        jobs.append(workers(3, end, rng, make_generate(client, "assistant", "latency", None)))

    async def batch() -> None:
        for n, seconds in phases:
            until = loop.time() + seconds
            if n:
                await workers(n, until, rng, make_generate(client, "batch", "throughput", n))
            else:
                await asyncio.sleep(max(0.0, until - loop.time()))

    jobs.append(batch())
    await asyncio.gather(*jobs)
    await client.aio.aclose()


if __name__ == "__main__":
    config = json.loads(sys.argv[1])
    configure(service_name="advisor-test", endpoint=config["endpoint"], export_interval=1.0)
    asyncio.run(main(config))
    flush()
    shutdown_instrumentation()
