"""Done-when for batch jobs: the real google-genai SDK's ``client.batches`` against the
emulator, instrumented, exported over OTLP to a real agent: the agent's counters for jobs,
requests, tokens and cost equal the emulator's ground truth exactly."""

from __future__ import annotations

import time

import pytest
from gemini_slo.agent.batch_status import KIND_COMPLETION, KIND_FAILURE_RATIO, KIND_QUEUE_TIME
from gemini_slo.agent.testing import running_agent
from gemini_slo.contract import signals as S
from gemini_slo.emulator.batches import BatchTiming
from gemini_slo.emulator.testing import running_emulator
from gemini_slo.instrumentation import Registry, instrument, pricing, uninstrument
from gemini_slo.instrumentation._export_otlp import OtlpExporter
from gemini_slo.instrumentation._values import PICO, Usage
from google import genai
from google.genai import types
from opentelemetry.sdk.resources import Resource
from prometheus_client.parser import text_string_to_metric_families

MODELS = ("gemini-2.5-flash", "gemini-2.5-flash-lite")
#: The example spec's throughput workload, with a ``batch:`` block (p95 within 24h, 1%, 6h).
WORKLOAD = "batch"
TERMINAL = {"JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"}


def scrape_totals(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the batch families, keyed by name and (model, state/outcome/type)."""
    keep = (S.LABEL_MODEL, S.LABEL_BATCH_STATE, S.LABEL_OUTCOME, S.LABEL_TOKEN_TYPE)
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not sample.name.startswith("gemini_slo_client_batch_"):
                continue
            assert sample.labels[S.LABEL_WORKLOAD] == WORKLOAD
            assert sample.labels[S.LABEL_MODE] == "throughput"
            labels = tuple((k, v) for k, v in sorted(sample.labels.items()) if k in keep)
            key = (sample.name, labels)
            out[key] = out.get(key, 0.0) + sample.value
    return out


def test_sdk_batches_through_the_agent_equal_the_truth() -> None:
    """Jobs on two models (succeeded, partially failed, failed, cancelled), polled many
    times, listed and read twice, exported twice: the agent's job, request, token and cost
    counters equal the emulator's truth, cost being the table at the batch price; /api/slo's
    batch objectives equal the truth too (failure ratio = failed / finished jobs, cancelled
    left out; every job done within 24h; nothing pending)."""
    timing = BatchTiming(queue_s=0.2, requests_per_s=50.0)
    with running_emulator(seed=7, batch=timing) as emulator, running_agent() as agent:
        client = genai.Client(
            api_key="k", http_options=types.HttpOptions(base_url=emulator.url, api_version="v1beta")
        )
        registry = Registry()
        instrument(client, workload=WORKLOAD, mode="throughput", registry=registry)
        exporter = OtlpExporter(
            registry,
            agent.otlp_url + "/v1/metrics",
            Resource.create({S.RESOURCE_SERVICE_NAME: "batch-app"}),
            interval=3600,
        )
        try:
            names = []
            for i, model in enumerate(MODELS):
                src = [
                    {"contents": [{"parts": [{"text": f"row {i} {j}"}], "role": "user"}]}
                    for j in range(6 + i)
                ]
                names.append(client.batches.create(model=model, src=src).name or "")
            emulator.set_fault("batch_request_errors", model=MODELS[0], rate=0.5)
            names.append(client.batches.create(model=MODELS[0], src=src).name or "")
            emulator.clear_faults()
            emulator.set_fault("batch_fail", model=MODELS[1], at=0.3)
            names.append(client.batches.create(model=MODELS[1], src=src[:3]).name or "")
            emulator.clear_faults()
            cancelled = client.batches.create(model=MODELS[1], src=src[:2]).name or ""
            client.batches.cancel(name=cancelled)
            names.append(cancelled)
            assert exporter.export_once()  # mid-flight: jobs pending, nothing finished
            pending = set(names)
            deadline = time.monotonic() + 20
            while pending and time.monotonic() < deadline:
                for name in list(pending):
                    job = client.batches.get(name=name)
                    if job.state and job.state.value in TERMINAL:
                        pending.discard(name)
                time.sleep(0.05)
            assert not pending
            for name in names:  # results fetched twice, and listed
                client.batches.get(name=name)
            assert len(list(client.batches.list())) == len(names)
            assert exporter.export_once()
        finally:
            exporter.shutdown()
            uninstrument(client)
        truth = emulator.stats()["batches"]
        got = scrape_totals(agent.scrape())
        (status,) = [w for w in agent.slo()["workloads"] if w["name"] == WORKLOAD]

    def value(signal: S.Signal, model: str, **labels: str) -> float:
        name = signal.prometheus
        want = tuple(sorted({S.LABEL_MODEL: model, **labels}.items()))
        return got.get((name, want), 0.0)

    for model in MODELS:
        assert value(S.BATCH_JOBS_SUBMITTED, model) == truth["submitted"][model]
        states = {
            state.removeprefix("BATCH_STATE_").lower(): n
            for state, n in truth["jobs"][model].items()
        }
        for state in S.BATCH_TERMINAL_STATES:
            finished = value(S.BATCH_JOBS_FINISHED, model, **{S.LABEL_BATCH_STATE: state.value})
            assert finished == states.get(state.value, 0), (model, state)
        assert (
            got[(S.BATCH_JOB_REQUESTS.prometheus + "_sum", ((S.LABEL_MODEL, model),))]
            == (truth["submitted_requests"][model])
        )
        for outcome, n in truth["requests"][model].items():
            assert value(S.BATCH_REQUESTS, model, **{S.LABEL_OUTCOME: outcome}) == n
        tokens = truth["tokens"][model]
        for token_type in ("input", "output", "thoughts", "cached"):
            assert (
                value(S.BATCH_TOKENS, model, **{S.LABEL_TOKEN_TYPE: token_type})
                == (tokens[token_type])
            )
        usage = Usage(tokens["input"], tokens["output"], tokens["thoughts"], tokens["cached"])
        cost = pricing.active_table().cost_pico(model, usage, "batch")
        assert cost is not None and cost > 0
        assert value(S.BATCH_COST, model) == cost / PICO
        for state in S.BATCH_ACTIVE_STATES:
            assert value(S.BATCH_JOBS_ACTIVE, model, **{S.LABEL_BATCH_STATE: state.value}) == 0
    assert truth["requests"][MODELS[0]].get("error", 0) > 0  # the partial failure happened
    assert truth["jobs"][MODELS[1]].get("BATCH_STATE_FAILED") == 1

    judged = failed = 0
    for model in MODELS:
        for api_state, n in truth["jobs"][model].items():
            state = api_state.removeprefix("BATCH_STATE_").lower()
            if state in {x.value for x in S.BATCH_FAILED_STATES}:
                failed += n
            if state in {x.value for x in S.BATCH_TERMINAL_STATES} and state != "cancelled":
                judged += n
    batch = {o["kind"]: o for o in status["batch"]}
    assert batch[KIND_FAILURE_RATIO]["jobs"] == judged
    assert batch[KIND_FAILURE_RATIO]["value"] == pytest.approx(failed / judged)
    assert batch[KIND_FAILURE_RATIO]["met"] is (failed / judged <= 0.01)
    assert batch[KIND_COMPLETION]["jobs"] == judged
    assert batch[KIND_COMPLETION]["value"] == 1.0  # jobs of a fraction of a second
    assert batch[KIND_COMPLETION]["met"] is True
    assert batch[KIND_QUEUE_TIME]["value"] == 0.0
    assert batch[KIND_QUEUE_TIME]["met"] is True
