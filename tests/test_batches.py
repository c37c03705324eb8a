"""The Batch API: the emulator's batch surface driven by the real google-genai SDK, and the
instrumentation's per-job records (counted once however often a job is read)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from gemini_slo.contract import signals as S
from gemini_slo.emulator.batches import BatchTiming
from gemini_slo.emulator.testing import EmulatorHandle, running_emulator
from gemini_slo.instrumentation import (
    Registry,
    instrument,
    observe_batch,
    pricing,
    track_batch,
    uninstrument,
)
from gemini_slo.instrumentation._values import PICO, Usage
from gemini_slo.instrumentation.testing import InMemoryRecorder
from google import genai
from google.genai import types

MODEL = "gemini-2.5-flash"
FAST = BatchTiming(queue_s=0.3, requests_per_s=40.0, expire_s=30.0)
TERMINAL = {"JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED"}


@pytest.fixture
def emulator() -> Iterator[EmulatorHandle]:
    with running_emulator(seed=3, batch=FAST) as handle:
        yield handle


def client_for(emulator: EmulatorHandle) -> genai.Client:
    return genai.Client(
        api_key="test-key",
        http_options=types.HttpOptions(base_url=emulator.url, api_version="v1beta"),
    )


def inline(n: int, extra: str = "") -> list[dict[str, Any]]:
    return [
        {"contents": [{"parts": [{"text": f"summarise item {i} {extra}"}], "role": "user"}]}
        for i in range(n)
    ]


def wait_done(client: genai.Client, name: str, timeout: float = 10.0) -> types.BatchJob:
    deadline = time.monotonic() + timeout
    while True:
        job = client.batches.get(name=name)
        assert job.state is not None
        if job.state.value in TERMINAL or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


# -- the emulator ------------------------------------------------------------------------


def test_job_moves_pending_running_succeeded_with_inline_results(
    emulator: EmulatorHandle,
) -> None:
    """A job is PENDING for its queue time, RUNNING while its requests are processed, then
    SUCCEEDED with one inline response per request; timestamps are the transition times."""
    client = client_for(emulator)
    job = client.batches.create(model=MODEL, src=inline(8), config={"display_name": "nightly"})
    assert job.state == types.JobState.JOB_STATE_PENDING
    assert job.name and job.name.startswith("batches/")
    assert job.display_name == "nightly" and job.model == f"models/{MODEL}"
    seen = []
    while True:
        job = client.batches.get(name=job.name)
        assert job.state is not None
        if not seen or seen[-1] != job.state.value:
            seen.append(job.state.value)
        if job.state.value in TERMINAL:
            break
        time.sleep(0.02)
    assert seen == ["JOB_STATE_PENDING", "JOB_STATE_RUNNING", "JOB_STATE_SUCCEEDED"]
    assert job.create_time and job.end_time
    # queue 0.3 s + 8 requests at 40/s = 0.5 s, exactly (the times are fixed at creation).
    assert (job.end_time - job.create_time).total_seconds() == pytest.approx(0.5, abs=1e-3)
    assert job.dest is not None and job.dest.inlined_responses is not None
    responses = job.dest.inlined_responses
    assert len(responses) == 8
    assert all(r.response is not None and r.response.text for r in responses)
    truth = emulator.stats()["batches"]
    assert truth["jobs"] == {MODEL: {"BATCH_STATE_SUCCEEDED": 1}}
    assert truth["submitted"] == {MODEL: 1} and truth["submitted_requests"] == {MODEL: 8}
    assert truth["requests"] == {MODEL: {"ok": 8}}
    output = sum(
        r.response.usage_metadata.candidates_token_count or 0
        for r in responses
        if r.response and r.response.usage_metadata
    )
    assert truth["tokens"][MODEL]["output"] == output > 0


def test_list_pages_cancel_and_delete(emulator: EmulatorHandle) -> None:
    """list pages through every job newest first; cancel ends a pending job CANCELLED with no
    results; cancelling an ended job is a 400; delete removes it from the listing."""
    client = client_for(emulator)
    names = [client.batches.create(model=MODEL, src=inline(2)).name for _ in range(3)]
    listed = [j.name for j in client.batches.list(config={"page_size": 2})]
    assert listed == list(reversed(names))
    client.batches.cancel(name=names[0])
    cancelled = client.batches.get(name=names[0])
    assert cancelled.state == types.JobState.JOB_STATE_CANCELLED
    assert cancelled.dest is None and cancelled.end_time is not None
    with pytest.raises(genai.errors.ClientError) as err:
        client.batches.cancel(name=names[0])
    assert err.value.code == 400
    client.batches.delete(name=names[0])
    assert names[0] not in [j.name for j in client.batches.list()]
    with pytest.raises(genai.errors.ClientError) as missing:
        client.batches.get(name=names[0])
    assert missing.value.code == 404
    truth = emulator.stats()["batches"]
    assert truth["submitted"] == {MODEL: 3}
    assert truth["jobs"][MODEL] == {"BATCH_STATE_PENDING": 2}


def test_faults_stuck_failed_and_partial(emulator: EmulatorHandle) -> None:
    """batch_stuck keeps a job PENDING (until it expires), batch_fail ends one FAILED with no
    results, batch_request_errors and the error marker give per-request error responses."""
    client = client_for(emulator)
    fault = emulator.set_fault("batch_stuck", model=MODEL)
    stuck = client.batches.create(model=MODEL, src=inline(1))
    emulator.clear_fault(fault)
    fault = emulator.set_fault("batch_fail", model=MODEL, at=0.5)
    failing = client.batches.create(model=MODEL, src=inline(4))
    emulator.clear_fault(fault)
    emulator.set_fault("batch_request_errors", model=MODEL, rate=1.0, status=503)
    partial = client.batches.create(model=MODEL, src=inline(3))
    emulator.clear_faults()
    marked = client.batches.create(
        model=MODEL, src=[*inline(2), *inline(1, "[[emulator:error=429]]")]
    )
    failed = wait_done(client, failing.name or "")
    assert failed.state == types.JobState.JOB_STATE_FAILED and failed.dest is None
    done = wait_done(client, partial.name or "")
    assert done.state == types.JobState.JOB_STATE_SUCCEEDED
    assert done.dest is not None and done.dest.inlined_responses is not None
    assert [r.error.code for r in done.dest.inlined_responses if r.error] == [503, 503, 503]
    mixed = wait_done(client, marked.name or "")
    assert mixed.dest is not None and mixed.dest.inlined_responses is not None
    assert [r.error is not None for r in mixed.dest.inlined_responses] == [False, False, True]
    assert client.batches.get(name=stuck.name).state == types.JobState.JOB_STATE_PENDING
    truth = emulator.stats()["batches"]
    assert truth["jobs"][MODEL] == {
        "BATCH_STATE_PENDING": 1,
        "BATCH_STATE_FAILED": 1,
        "BATCH_STATE_SUCCEEDED": 2,
    }
    assert truth["requests"][MODEL] == {"error": 4, "ok": 2}


def test_stuck_job_expires() -> None:
    """A stuck job expires ``expire_s`` after its creation (EXPIRED, with an end time)."""
    with running_emulator(batch=BatchTiming(queue_s=0.1, expire_s=0.4)) as emulator:
        client = client_for(emulator)
        emulator.set_fault("batch_stuck")
        job = client.batches.create(model=MODEL, src=inline(1))
        done = wait_done(client, job.name or "")
    assert done.state == types.JobState.JOB_STATE_EXPIRED
    assert done.end_time and done.create_time
    assert (done.end_time - done.create_time).total_seconds() == pytest.approx(0.4, abs=1e-3)


def test_bad_batch_requests_get_the_api_errors(emulator: EmulatorHandle) -> None:
    """An empty batch is a 400, an unknown model a 404, a file source a 501 (not emulated)."""
    client = client_for(emulator)
    with pytest.raises(genai.errors.ClientError) as empty:
        client.batches.create(model=MODEL, src=[])
    assert empty.value.code == 400
    with pytest.raises(genai.errors.ClientError) as unknown:
        client.batches.create(model="gemini-0-nope", src=inline(1))
    assert unknown.value.code == 404
    with pytest.raises(genai.errors.APIError) as file_source:
        client.batches.create(model=MODEL, src="files/input-1")
    assert file_source.value.code == 501


# -- the instrumentation -----------------------------------------------------------------


def expected_cost_usd(truth_tokens: dict[str, int]) -> float:
    """The price table applied to the emulator's token totals at the batch price."""
    usage = Usage(truth_tokens["input"], truth_tokens["output"], truth_tokens["thoughts"], 0)
    cost = pricing.active_table().cost_pico(MODEL, usage, "batch")
    assert cost is not None
    return cost / PICO


def test_patched_sdk_counts_each_job_once(emulator: EmulatorHandle) -> None:
    """Polling a job many times, listing it and reading its results twice counts it once:
    jobs, requests, tokens and cost equal the emulator's truth; states now are right."""
    registry = Registry()
    client = client_for(emulator)
    instrument(client, workload="bulk", registry=registry)
    try:
        ok = client.batches.create(model=MODEL, src=inline(5))
        emulator.set_fault("batch_fail", model=MODEL)
        bad = client.batches.create(model=MODEL, src=inline(2))
        emulator.clear_faults()
        emulator.set_fault("batch_stuck", model=MODEL)
        stuck = client.batches.create(model=MODEL, src=inline(1))
        emulator.clear_faults()
        cancel = client.batches.create(model=MODEL, src=inline(3))
        client.batches.cancel(name=cancel.name or "")
        for name in (ok.name, bad.name, cancel.name):
            wait_done(client, name or "")
        for _ in range(3):  # results read again, and listed
            client.batches.get(name=ok.name or "")
            list(client.batches.list(config={"page_size": 2}))
    finally:
        uninstrument(client)
    rec = InMemoryRecorder(registry)
    truth = emulator.stats()["batches"]
    attrs = {"workload": "bulk", "mode": "throughput", "model": MODEL}
    assert rec.value(S.BATCH_JOBS_SUBMITTED, **attrs) == truth["submitted"][MODEL] == 4
    finished = {p.attrs[S.ATTR_BATCH_STATE]: p.value for p in rec.points(S.BATCH_JOBS_FINISHED)}
    assert finished == {"succeeded": 1, "failed": 1, "cancelled": 1}
    active = {p.attrs[S.ATTR_BATCH_STATE]: p.value for p in rec.points(S.BATCH_JOBS_ACTIVE)}
    assert active == {"pending": 1, "running": 0}
    requests = rec.histogram(S.BATCH_JOB_REQUESTS, **attrs)
    assert requests.count == 4 and requests.sum == truth["submitted_requests"][MODEL] == 11
    outcomes = {p.attrs[S.ATTR_OUTCOME]: p.value for p in rec.points(S.BATCH_REQUESTS)}
    assert outcomes == {"ok": truth["requests"][MODEL]["ok"], "error": 0}
    tokens = {p.attrs[S.ATTR_TOKEN_TYPE]: p.value for p in rec.points(S.BATCH_TOKENS)}
    for token_type in ("input", "output", "thoughts", "cached"):
        assert tokens[token_type] == truth["tokens"][MODEL][token_type]
    assert rec.value(S.BATCH_COST, **attrs) == expected_cost_usd(truth["tokens"][MODEL])
    assert rec.histogram(S.BATCH_JOB_DURATION, **attrs).count == 3
    assert rec.histogram(S.BATCH_QUEUE_TIME, **attrs).count == 3
    assert rec.value(S.BATCH_QUEUE_OLDEST, **attrs) > 0  # the stuck job's age
    assert client.batches.get(name=stuck.name or "").state == types.JobState.JOB_STATE_PENDING


def test_queue_time_and_duration_come_from_the_api_timestamps(emulator: EmulatorHandle) -> None:
    """A job polled through its states records queue time = RUNNING's update time - create
    time and duration = end - create: the emulator's 0.3 s and 0.3 + 4/40 s."""
    registry = Registry()
    client = client_for(emulator)
    instrument(client, workload="bulk", registry=registry)
    try:
        job = client.batches.create(model=MODEL, src=inline(4))
        while True:
            got = client.batches.get(name=job.name or "")
            if got.state and got.state.value in TERMINAL:
                break
            time.sleep(0.01)
    finally:
        uninstrument(client)
    rec = InMemoryRecorder(registry)
    assert rec.histogram(S.BATCH_QUEUE_TIME).sum == pytest.approx(0.3, abs=1e-3)
    assert rec.histogram(
        S.BATCH_JOB_DURATION, attributes={S.ATTR_BATCH_STATE: "succeeded"}
    ).sum == (pytest.approx(0.4, abs=1e-3))


def test_async_batches_are_patched_too(emulator: EmulatorHandle) -> None:
    """client.aio.batches: create and get through the async SDK count like the sync ones."""
    registry = Registry()
    client = client_for(emulator)
    instrument(client, workload="bulk", registry=registry)

    async def run() -> None:
        job = await client.aio.batches.create(model=MODEL, src=inline(2))
        while True:
            got = await client.aio.batches.get(name=job.name or "")
            if got.state and got.state.value in TERMINAL:
                return
            await asyncio.sleep(0.05)

    try:
        asyncio.run(run())
    finally:
        uninstrument(client)
    rec = InMemoryRecorder(registry)
    assert rec.value(S.BATCH_JOBS_SUBMITTED) == 1
    assert rec.value(S.BATCH_JOBS_FINISHED, attributes={S.ATTR_BATCH_STATE: "succeeded"}) == 1
    truth = emulator.stats()["batches"]["tokens"][MODEL]
    assert rec.value(S.BATCH_TOKENS, token_type="output") == truth["output"]


def test_uninstrument_restores_the_sdk(emulator: EmulatorHandle) -> None:
    """After uninstrument the batch methods are the SDK's own again and record nothing."""
    registry = Registry()
    client = client_for(emulator)
    original = type(client.batches).get
    instrument(client, registry=registry)
    assert "get" in vars(client.batches)
    uninstrument(client)
    assert "get" not in vars(client.batches) and type(client.batches).get is original
    client.batches.create(model=MODEL, src=inline(1))
    assert InMemoryRecorder(registry).points(S.BATCH_JOBS_SUBMITTED) == []


def rest_job(name: str, state: str, **metadata: Any) -> dict[str, Any]:
    return {"name": name, "metadata": {"state": state, "model": f"models/{MODEL}", **metadata}}


def test_rest_path_decorator_and_track_batch() -> None:
    """Apps on the REST API: observe_batch on the submit and poll functions counts the job
    once, with the usage of its inline responses; a list of jobs only updates known jobs."""
    registry = Registry()
    created = "2026-12-02T10:00:00Z"
    usage = {"promptTokenCount": 10, "candidatesTokenCount": 20, "thoughtsTokenCount": 5}
    done = rest_job(
        "batches/r1",
        "BATCH_STATE_SUCCEEDED",
        createTime=created,
        updateTime="2026-12-02T10:30:00Z",
        endTime="2026-12-02T11:00:00Z",
        output={
            "inlinedResponses": {
                "inlinedResponses": [
                    {"response": {"usageMetadata": usage}},
                    {"error": {"code": 500, "message": "x"}},
                ]
            }
        },
    )

    @observe_batch("rest", submitted=True, registry=registry)
    def submit() -> dict[str, Any]:
        return rest_job("batches/r1", "BATCH_STATE_PENDING", createTime=created)

    @observe_batch("rest", registry=registry)
    def poll(state: str) -> dict[str, Any]:
        if state == "done":
            return done
        return rest_job(
            "batches/r1",
            "BATCH_STATE_RUNNING",
            createTime=created,
            updateTime="2026-12-02T10:20:00Z",
        )

    @observe_batch("rest", registry=registry)
    def listing() -> list[dict[str, Any]]:
        return [done, rest_job("batches/other", "BATCH_STATE_PENDING", createTime=created)]

    assert submit()["name"] == "batches/r1"
    poll("running")
    assert poll("done") is done
    poll("done")
    listing()
    track_batch(done, workload="rest", registry=registry)
    rec = InMemoryRecorder(registry)
    assert rec.value(S.BATCH_JOBS_SUBMITTED) == 1  # "batches/other" was only listed
    assert rec.value(S.BATCH_JOBS_FINISHED, attributes={S.ATTR_BATCH_STATE: "succeeded"}) == 1
    assert rec.value(S.BATCH_TOKENS, token_type="output") == 20
    assert rec.value(S.BATCH_TOKENS, token_type="thoughts") == 5
    assert {p.attrs[S.ATTR_OUTCOME]: p.value for p in rec.points(S.BATCH_REQUESTS)} == {
        "ok": 1,
        "error": 1,
    }
    assert rec.histogram(S.BATCH_QUEUE_TIME).sum == 20 * 60
    assert rec.histogram(S.BATCH_JOB_DURATION).sum == 3600
    cost = pricing.active_table().cost_pico(MODEL, Usage(10, 20, 5), "batch")
    assert cost is not None and rec.value(S.BATCH_COST) == cost / PICO


def test_bad_input_never_raises_and_passes_through() -> None:
    """Anything that is not a job is returned unchanged and records nothing; a decorated
    function's exception is the app's, unchanged."""
    registry = Registry()
    odd: list[Any] = [None, 3, {"name": 5}, {"metadata": "x"}, object(), rest_job("", "?")]
    for item in odd:
        assert track_batch(item, registry=registry) is item

    @observe_batch("rest", registry=registry)
    def boom() -> dict[str, Any]:
        raise KeyError("the app's own")

    with pytest.raises(KeyError, match="the app's own"):
        boom()
    assert InMemoryRecorder(registry).points(S.BATCH_JOBS_SUBMITTED) == []


def test_records_are_bounded() -> None:
    """Past max_jobs live records the oldest is dropped (and counted in ``dropped``)."""
    from gemini_slo.instrumentation._batches import book_for, view_of

    registry = Registry()
    book = book_for(registry)
    book.max_jobs = 10
    for i in range(25):
        view = view_of(rest_job(f"batches/b{i}", "BATCH_STATE_PENDING"))
        assert view is not None
        book.observe(view, "w", "throughput", S.PROVIDER_GEMINI, submitted=True)
    active = InMemoryRecorder(registry).value(
        S.BATCH_JOBS_ACTIVE, attributes={S.ATTR_BATCH_STATE: "pending"}
    )
    assert active == 10 and book.dropped == 15


def test_batch_load_submits_polls_and_records(tmp_path: Any) -> None:
    """``gemini-slo load --mode throughput --batch N``: jobs of N requests at a rate, polled
    to their end; the summary's jobs and requests equal the emulator's truth."""
    import json

    from gemini_slo.cli.main import main

    with running_emulator(batch=BatchTiming(queue_s=0.1, requests_per_s=100.0)) as emulator:
        out = tmp_path / "load.json"
        code = main(
            [
                "load", "--mode", "throughput", "--workload", "bulk", "--model", MODEL,
                "--emulator", emulator.url, "--no-export", "--duration", "1",
                "--batch", "4", "--job-every", "0.25", "--poll-every", "0.05",
                "--max-output-tokens", "16", "--json", str(out), "--quiet",
            ]
        )  # fmt: skip
        truth = emulator.stats()["batches"]
    assert code == 0
    summary = json.loads(out.read_text())
    assert summary["jobs_submitted"] == truth["submitted"][MODEL] >= 3
    assert summary["requests_submitted"] == truth["submitted_requests"][MODEL]
    assert summary["jobs_by_state"] == {"succeeded": summary["jobs_submitted"]}
    assert summary["jobs_open_at_end"] == 0
    generated = truth["tokens"][MODEL]["output"] + truth["tokens"][MODEL]["thoughts"]
    assert generated == 16 * summary["requests_submitted"]  # max_output_tokens caps both


def test_new_thresholds_restart_the_batch_counters() -> None:
    """Registry.set_thresholds starts the registry over (a new start time): the batch
    counters start from zero with it, so a cumulative receiver never counts a job twice;
    a job in flight across the restart still counts when it ends."""
    from gemini_slo.instrumentation._values import Thresholds

    registry = Registry()
    track_batch(rest_job("batches/a", "BATCH_STATE_SUCCEEDED"), submitted=True, registry=registry)
    track_batch(rest_job("batches/b", "BATCH_STATE_PENDING"), submitted=True, registry=registry)
    rec = InMemoryRecorder(registry)
    assert rec.value(S.BATCH_JOBS_SUBMITTED) == 2
    time.sleep(0.001)  # a new start time in ns
    registry.set_thresholds(Thresholds())
    assert rec.value(S.BATCH_JOBS_SUBMITTED) == 0
    assert rec.value(S.BATCH_JOBS_ACTIVE, attributes={S.ATTR_BATCH_STATE: "pending"}) == 1
    track_batch(rest_job("batches/b", "BATCH_STATE_FAILED"), registry=registry)
    assert rec.value(S.BATCH_JOBS_FINISHED, attributes={S.ATTR_BATCH_STATE: "failed"}) == 1
