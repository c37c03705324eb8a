"""The HTTP surface: the Gemini Developer API routes the google-genai SDK calls, and the admin API.

API routes (``{v}`` is ``v1``, ``v1beta`` or ``v1alpha``, all served alike: google-genai 3.6
sends ``v1`` to the Developer API by default, ``v1beta`` when ``GOOGLE_GENAI_API_VERSION=beta``
or ``HttpOptions(api_version="v1beta")``):

- ``POST /{v}/models/{model}:generateContent``
- ``POST /{v}/models/{model}:streamGenerateContent?alt=sse``: Server-Sent Events, one
  ``data: {json}\\r\\n\\r\\n`` per chunk, each with cumulative ``usageMetadata``; the last one
  has ``finishReason``. An error inside a stream is an event whose JSON is ``{"error": ...}``,
  which the SDK raises while iterating.
- ``POST /{v}/models/{model}:countTokens``, ``:embedContent``, ``:batchEmbedContents``
- ``GET /{v}/models``, ``GET /{v}/models/{model}``
- Batch API (``batches.py``): ``POST /{v}/models/{model}:batchGenerateContent`` (inline
  requests), ``GET /{v}/batches`` (``pageSize``, ``pageToken``), ``GET /{v}/batches/{id}``,
  ``POST /{v}/batches/{id}:cancel``, ``DELETE /{v}/batches/{id}``

The key goes in ``x-goog-api-key`` (or ``?key=``). Any non-empty key is accepted; a missing
one gets the API's 403 PERMISSION_DENIED (``require_api_key=False`` turns that off). The SDK's
``X-Server-Timeout`` header is accepted and ignored: clients enforce their own timeouts, and
a server-side 504 racing the client's timeout would make timeout tests flaky.

Unknown paths and wrong HTTP methods get a 404 NOT_FOUND ``"Method not found."`` as JSON
(the API routes on method and path together); bodies over ``max_body_bytes`` a 400
``"Request payload size exceeds the limit: N bytes."``, as the API answers.

Not emulated (answers stay plain filler text): function calling (``tools`` are accepted and
ignored), JSON mode (``responseMimeType``/``responseSchema``), ``candidateCount`` > 1 (one
candidate is returned), thought summaries (``includeThoughts``), non-text output, the
``?alt=json`` array stream, the cache/file/tuning resources, and batch jobs from an uploaded
file (the Files API's resumable upload is not served: batch jobs take inline requests).

Admin API (JSON in, JSON out), under ``/_emulator/``:

- ``POST /_emulator/faults`` ``{"kind": ..., "model": "*", "duration_s": null, <params>}`` (params
  may also be nested under ``"params"``) -> ``201 {"id": "f1", ...}``; kinds in ``faults.py``
- ``GET /_emulator/faults`` -> ``{"faults": [...]}`` (live ones only)
- ``DELETE /_emulator/faults/{id}`` (404 if unknown), ``DELETE /_emulator/faults`` (all)
- ``GET /_emulator/stats`` -> ground truth (see ``stats.py``; plus ``pools``: capacity, in flight
  and peak per pool, when the profile has pools); ``POST /_emulator/reset`` zeroes it
  and the quota windows, and restarts the seeded sequence (faults stay)
- ``GET /_emulator/quotas``; ``POST /_emulator/quotas`` ``{"model": m, "rpm": n, "tpm": n}``
- ``GET /_emulator/health`` -> ``{"status": "ok", "seed": n, "models": [...]}``
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiohttp import web
from gemini_slo.emulator.batches import Answer, BatchBook, BatchTiming
from gemini_slo.emulator.capacity import PoolBook
from gemini_slo.emulator.errors import (
    ApiError,
    injected_error,
    invalid_argument,
    missing_api_key,
    model_not_found,
)
from gemini_slo.emulator.faults import Decision, FaultError, FaultRegistry
from gemini_slo.emulator.model import (
    Knobs,
    Plan,
    count_contents,
    filler_text,
    make_plan,
    parse_markers,
)
from gemini_slo.emulator.profile import ModelProfile, Profile, load_profile
from gemini_slo.emulator.quota import QuotaBook
from gemini_slo.emulator.schema import (
    parse_json,
    require_object,
    validate_count_tokens,
    validate_embed_requests,
    validate_generate,
)
from gemini_slo.emulator.stats import Stats

log = structlog.get_logger("gemini_slo.emulator")

DEFAULT_MAX_BODY_BYTES = 20 * 1024 * 1024  # the API's documented 20 MB request limit
_JSON = "application/json; charset=UTF-8"
_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
_SAFETY_RATINGS = [
    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True},
    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "NEGLIGIBLE"},
]
_MODEL_METHODS = ("generateContent", "streamGenerateContent", "countTokens")
_EMBED_METHODS = ("embedContent", "batchEmbedContents")


@dataclass(frozen=True, slots=True)
class EmulatorConfig:
    """Run-time options of one emulator instance.

    ``time_scale`` multiplies the profile's latencies (0 = answer as fast as possible;
    fault delays such as ``extra_delay`` are not scaled) and the batch timings in
    ``batch``. ``quotas=False`` disables RPM/TPM.
    """

    seed: int = 0
    profile: Profile | None = None
    time_scale: float = 1.0
    quotas: bool = True
    require_api_key: bool = True
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    batch: BatchTiming = field(default_factory=BatchTiming)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def usage_metadata(prompt: int, output: int, thoughts: int, cached: int) -> dict[str, Any]:
    """The API's usageMetadata; zero counts are left out as proto3 JSON does."""
    usage: dict[str, Any] = {"promptTokenCount": prompt}
    if output:
        usage["candidatesTokenCount"] = output
    usage["totalTokenCount"] = prompt + output + thoughts
    if cached:
        usage["cachedContentTokenCount"] = cached
    usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt}]
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    return usage


class Emulator:
    """The state of one emulator: profile, seed, faults, quotas and ground truth."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.profile = self.config.profile or load_profile()
        self.faults = FaultRegistry()
        self.quotas = QuotaBook(
            {m.name: (m.rpm, m.tpm) for m in self.profile.unique_models()},
            enabled=self.config.quotas,
        )
        self.stats = Stats()
        self.pools = PoolBook(self.profile.pools)
        self._sequence: dict[str, int] = {}
        self.batches = BatchBook(self.config.batch, self.config.time_scale, self.config.seed)

    # -- helpers -------------------------------------------------------------------------

    def _rngs(self, model: str) -> tuple[random.Random, random.Random]:
        n = self._sequence.get(model, 0)
        self._sequence[model] = n + 1
        key = f"{self.config.seed}:{model}:{n}"
        return random.Random(key), random.Random(key + ":faults")

    def reset(self) -> None:
        """Zero the ground truth, the quota windows and the per-model sequence numbers."""
        self.stats.reset()
        self.quotas.reset()
        self.pools.reset_peaks()
        self._sequence.clear()
        self.batches.reset()

    def _check_key(self, request: web.Request) -> None:
        if not self.config.require_api_key:
            return
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        if not key:
            raise missing_api_key()

    async def _read_json(self, request: web.Request) -> Any:
        limit = self.config.max_body_bytes
        too_big = invalid_argument(f"Request payload size exceeds the limit: {limit} bytes.")
        if request.content_length is not None and request.content_length > limit:
            raise too_big
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise too_big from None
        if len(raw) > limit:
            raise too_big
        return parse_json(raw)

    # -- routes --------------------------------------------------------------------------

    async def handle_model(self, request: web.Request) -> web.StreamResponse:
        """``/{v}/models/{target}``: GET a model, or POST one of its methods."""
        target = request.match_info["target"]
        name, sep, method = target.partition(":")
        name = name.removeprefix("models/")
        if not sep:
            if request.method != "GET":
                raise ApiError(404, "Method not found.")
            self._check_key(request)
            model = self.profile.get(name)
            if model is None:
                version = request.match_info["version"]
                raise ApiError(404, f"models/{name} is not found for API version {version}.")
            return web.json_response(self._model_json(model), content_type="application/json")
        if method == "batchGenerateContent" and request.method == "POST":
            return await self._batch_create(request, name)
        if request.method != "POST" or method not in (*_MODEL_METHODS, *_EMBED_METHODS):
            raise ApiError(404, "Method not found.")
        known = self.profile.get(name)
        key = known.name if known is not None else name  # aliases count under their model
        sent = {"status": 0}  # set by the handlers when a status line has gone out
        self.stats.in_flight += 1
        try:
            response = await self._dispatch(request, name, method, sent)
            sent["status"] = sent["status"] or response.status
            return response
        except ApiError as exc:
            sent["status"] = sent["status"] or exc.code
            raise
        finally:
            # 499: the client went away before any status was written (a stall, a timeout).
            self.stats.in_flight -= 1
            self.stats.record_status(key, method, sent["status"] or 499)

    async def _dispatch(
        self, request: web.Request, name: str, method: str, sent: dict[str, int]
    ) -> web.StreamResponse:
        self._check_key(request)
        body = await self._read_json(request)
        model = self.profile.get(name)
        if model is None or method not in model.methods:
            raise model_not_found(name, method, request.match_info["version"])
        if method == "countTokens":
            return self._count_tokens(model, body)
        if method in _EMBED_METHODS:
            return await self._embed(model, body, batch=method == "batchEmbedContents")
        stream = method == "streamGenerateContent"
        if stream and request.query.get("alt", "sse") != "sse":
            raise invalid_argument("The emulator streams Server-Sent Events only: use ?alt=sse.")
        req = validate_generate(body)
        prompt_tokens, text = count_contents(req["contents"], req.get("systemInstruction"))
        if prompt_tokens > model.input_token_limit:
            raise invalid_argument(
                f"The input token count ({prompt_tokens}) exceeds the maximum number of tokens "
                f"allowed ({model.input_token_limit})."
            )
        markers = parse_markers(text)
        rng, fault_rng = self._rngs(model.name)
        decision = self.faults.decide(model.name, fault_rng, stream=stream)
        if decision.stall_after_chunks == 0:
            await self._stall(decision)
        error = markers.error or decision.error
        if error is not None:
            if decision.knobs.extra_delay_s > 0:
                # extra_delay + error_rate = an error after a wait (a gateway's 504, say).
                await asyncio.sleep(decision.knobs.extra_delay_s)
            raise injected_error(error, retry_delay_s=decision.retry_delay_s)
        pool = self.profile.pools.get(model.pool) if model.pool is not None else None
        congestion = None
        if pool is not None:
            # In the pool from the plan to the answer (see capacity.py).
            congestion = pool.factors(self.pools.enter(pool.name))
        try:
            plan = make_plan(
                rng,
                model,
                prompt_tokens=prompt_tokens,
                generation_config=req["generationConfig"],
                cached_content=bool(req.get("cachedContent")),
                markers=markers,
                knobs=decision.knobs,
                time_scale=self.config.time_scale,
                congestion=congestion,
            )
            self.quotas.admit(model.name, plan.prompt_tokens)
            if stream:
                return await self._stream(request, model, plan, decision, sent)
            return await self._generate(model, plan)
        finally:
            if pool is not None:
                self.pools.leave(pool.name)

    async def _stall(self, decision: Decision) -> None:
        # Hold the request without answering. aiohttp cancels the handler when the client
        # disconnects (handler_cancellation=True), which ends the wait; otherwise a 504.
        await asyncio.sleep(decision.stall_seconds)
        raise ApiError(504)

    def _chunk_json(
        self, model: ModelProfile, plan: Plan, sent_tokens: int, text: str, final: bool
    ) -> dict[str, Any]:
        content: dict[str, Any] = (
            {"parts": [{"text": text}], "role": "model"} if text else {"role": "model"}
        )
        candidate: dict[str, Any] = {"content": content}
        if final:
            candidate["finishReason"] = plan.finish_reason
            if plan.finish_reason == "SAFETY":
                candidate["safetyRatings"] = _SAFETY_RATINGS
        candidate["index"] = 0
        return {
            "candidates": [candidate],
            "usageMetadata": usage_metadata(
                plan.prompt_tokens, sent_tokens, plan.thoughts_tokens, plan.cached_tokens
            ),
            "modelVersion": model.version,
            "responseId": plan.response_id,
        }

    def _blocked_json(self, model: ModelProfile, plan: Plan) -> dict[str, Any]:
        return {
            "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": _SAFETY_RATINGS},
            "usageMetadata": usage_metadata(plan.prompt_tokens, 0, 0, plan.cached_tokens),
            "modelVersion": model.version,
            "responseId": plan.response_id,
        }

    def _record_usage(self, model: ModelProfile, plan: Plan, output: int) -> None:
        thoughts = 0 if plan.blocked else plan.thoughts_tokens
        self.stats.record_usage(
            model.name, plan.prompt_tokens, output, thoughts, plan.cached_tokens
        )

    async def _generate(self, model: ModelProfile, plan: Plan) -> web.Response:
        delay = plan.total_delay_s
        if delay > 0:
            await asyncio.sleep(delay)
        if plan.blocked:
            body = self._blocked_json(model, plan)
        else:
            text = filler_text(plan.text_offset, plan.output_tokens)
            body = self._chunk_json(model, plan, plan.output_tokens, text, final=True)
        response = web.Response(text=json.dumps(body, indent=2), content_type="application/json")
        # Usage is recorded when the body is handed to aiohttp: a disconnect after this point
        # is indistinguishable, for the client, from a network failure after the answer.
        self._record_usage(model, plan, plan.output_tokens)
        return response

    async def _stream(
        self,
        request: web.Request,
        model: ModelProfile,
        plan: Plan,
        decision: Decision,
        sent: dict[str, int],
    ) -> web.StreamResponse:
        stall_at = decision.stall_after_chunks
        if stall_at is not None:
            # A stall asked for after the stream's end holds the final chunk instead.
            stall_at = min(stall_at, max(len(plan.chunks) - 1, 0))
        error_at = None
        if decision.stream_error is not None:
            error_at = min(decision.stream_error_after, max(len(plan.chunks) - 1, 0))
        first_delay = plan.delays_s[0] if plan.delays_s else 0.0
        if first_delay > 0:
            # Time to first token passes before the headers, as with the real API.
            await asyncio.sleep(first_delay)
        response = web.StreamResponse(status=200, headers=_SSE_HEADERS)
        await response.prepare(request)
        sent["status"] = 200
        written = 0  # visible tokens in the chunks written so far
        usage_written = False
        try:
            if plan.blocked:
                await response.write(
                    b"data: " + _dumps(self._blocked_json(model, plan)).encode() + b"\r\n\r\n"
                )
                usage_written = True
                return response
            last = len(plan.chunks) - 1
            for i, n in enumerate(plan.chunks):
                if i == stall_at:
                    await self._stall(decision)
                if i == error_at:
                    error = injected_error(decision.stream_error or 500)
                    await response.write(b"data: " + _dumps(error.body()).encode() + b"\r\n\r\n")
                    self.stats.record_stream_error(model.name)
                    return response
                if i and plan.delays_s[i] > 0:
                    await asyncio.sleep(plan.delays_s[i])
                text = filler_text(plan.text_offset + written, n)
                if written and text:
                    text = " " + text  # the chunks concatenate to the whole text
                chunk = self._chunk_json(model, plan, written + n, text, final=i == last)
                await response.write(b"data: " + _dumps(chunk).encode() + b"\r\n\r\n")
                written += n
                usage_written = True
            await response.write_eof()
            return response
        except (ConnectionError, ApiError):
            return response  # the client went away (or a stall timed out): nothing to answer
        finally:
            if usage_written:
                self._record_usage(model, plan, written)

    def _count_tokens(self, model: ModelProfile, body: Any) -> web.Response:
        req = validate_count_tokens(body)
        tokens, _ = count_contents(req["contents"], req.get("systemInstruction"))
        result: dict[str, Any] = {
            "totalTokens": tokens,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": tokens}],
        }
        if req.get("cachedContent"):
            result["cachedContentTokenCount"] = model.cached_content_tokens
        return web.json_response(result)

    async def _embed(self, model: ModelProfile, body: Any, batch: bool) -> web.Response:
        requests = validate_embed_requests(body, batch)
        rng = random.Random(f"{self.config.seed}:{model.name}:embed:{len(requests)}")
        delay = model.ttft_median_s * self.config.time_scale
        delay *= 2.718281828 ** rng.gauss(0.0, model.ttft_sigma) if model.ttft_sigma else 1.0
        if delay > 0:
            await asyncio.sleep(delay)
        embeddings = []
        prompt_tokens = 0
        for req in requests:
            tokens, text = count_contents([req["content"]])
            prompt_tokens += tokens
            dims = req.get("outputDimensionality") or model.embedding_dimensions
            # Deterministic in the text, so equal texts embed equally (cosine similarity 1).
            vec_rng = random.Random(f"embed:{text}")
            values = [vec_rng.gauss(0.0, 1.0) for _ in range(dims)]
            norm = sum(v * v for v in values) ** 0.5 or 1.0
            embeddings.append({"values": [round(v / norm, 6) for v in values]})
        # The billed input, as the API reports it (the SDK reads usageMetadata of embeddings).
        usage = {"promptTokenCount": prompt_tokens, "totalTokenCount": prompt_tokens}
        if batch:
            return web.json_response({"embeddings": embeddings, "usageMetadata": usage})
        return web.json_response({"embedding": embeddings[0], "usageMetadata": usage})

    def _model_json(self, model: ModelProfile) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": f"models/{model.name}",
            "version": model.version,
            "displayName": model.display_name,
            "description": f"{model.display_name}, served by the gemini-slo emulator",
            "inputTokenLimit": model.input_token_limit,
            "outputTokenLimit": model.output_token_limit,
            "supportedGenerationMethods": list(model.methods),
        }
        if model.kind == "generate":
            out.update({"temperature": 1, "topP": 0.95, "topK": 64, "maxTemperature": 2})
            out["thinking"] = model.thinking is not None
        return out

    async def list_models(self, request: web.Request) -> web.Response:
        """``GET /{v}/models``."""
        self._check_key(request)
        models = [self._model_json(m) for m in self.profile.unique_models()]
        return web.json_response({"models": models})

    # -- the Batch API (state and truth in batches.py) -----------------------------------

    async def _batch_create(self, request: web.Request, name: str) -> web.Response:
        self._check_key(request)
        body = await self._read_json(request)
        model = self.profile.get(name)
        if model is None or model.kind != "generate":
            raise model_not_found(name, "batchGenerateContent", request.match_info["version"])
        job = self.batches.create(model.name, body, self.faults, self._batch_answer)
        log.info("batch_created", job=job.id, model=model.name, requests=len(job.answers))
        return web.json_response(self.batches.to_json(job))

    def _batch_answer(
        self, model_name: str, body: Any, rng: random.Random, injected: int | None
    ) -> Answer:
        """One request of a batch job, answered at once (the job's timing is its own)."""
        model = self.profile.get(model_name)
        assert model is not None  # the job's model was checked at creation
        try:
            req = validate_generate(body)
            prompt_tokens, text = count_contents(req["contents"], req.get("systemInstruction"))
            markers = parse_markers(text)
            error = markers.error or injected
            if error is not None:
                raise injected_error(error)
            plan = make_plan(
                rng,
                model,
                prompt_tokens=prompt_tokens,
                generation_config=req["generationConfig"],
                cached_content=bool(req.get("cachedContent")),
                markers=markers,
                knobs=Knobs(),
                time_scale=0.0,
            )
        except ApiError as exc:
            # google.rpc.Status: code and message (the SDK's JobError has no other field).
            return {"error": {"code": exc.code, "message": exc.message}}, None
        if plan.blocked:
            answer = self._blocked_json(model, plan)
            output = thoughts = 0
        else:
            text = filler_text(plan.text_offset, plan.output_tokens)
            answer = self._chunk_json(model, plan, plan.output_tokens, text, final=True)
            output, thoughts = plan.output_tokens, plan.thoughts_tokens
        usage = {
            "input": plan.prompt_tokens,
            "output": output,
            "thoughts": thoughts,
            "cached": plan.cached_tokens,
        }
        return {"response": answer}, usage

    async def list_batches(self, request: web.Request) -> web.Response:
        """``GET /{v}/batches``."""
        self._check_key(request)
        try:
            size = int(request.query.get("pageSize", "0"))
        except ValueError:
            raise invalid_argument("Invalid value at 'page_size'.") from None
        jobs, token = self.batches.page(size, request.query.get("pageToken"))
        out: dict[str, Any] = {"operations": [self.batches.to_json(j) for j in jobs]}
        if token is not None:
            out["nextPageToken"] = token
        return web.json_response(out)

    async def handle_batch(self, request: web.Request) -> web.Response:
        """``GET``/``DELETE /{v}/batches/{id}``, ``POST /{v}/batches/{id}:cancel``."""
        self._check_key(request)
        job_id, sep, verb = request.match_info["target"].partition(":")
        if sep:
            if verb != "cancel" or request.method != "POST":
                raise ApiError(404, "Method not found.")
            self.batches.cancel(job_id)
            log.info("batch_cancelled", job=job_id)
            return web.json_response({})
        if request.method == "GET":
            return web.json_response(self.batches.to_json(self.batches.get(job_id)))
        if request.method == "DELETE":
            self.batches.delete(job_id)
            return web.json_response({})
        raise ApiError(404, "Method not found.")

    # -- admin API -----------------------------------------------------------------------

    async def admin_faults(self, request: web.Request) -> web.Response:
        """``GET``/``POST``/``DELETE /_emulator/faults``."""
        if request.method == "GET":
            now = time.monotonic()
            return web.json_response({"faults": [f.to_json(now) for f in self.faults.active(now)]})
        if request.method == "DELETE":
            cleared = self.faults.clear()
            log.info("faults_cleared", count=cleared)
            return web.json_response({"cleared": cleared})
        spec = dict(require_object(parse_json(await request.read())))
        params = spec.pop("params", None) or {}
        if not isinstance(params, dict):
            raise ApiError(400, "'params' must be an object")
        kind = spec.pop("kind", None)
        model = spec.pop("model", "*")
        duration = spec.pop("duration_s", None)
        try:
            fault = self.faults.add(str(kind), model, duration, **{**spec, **params})
        except (FaultError, TypeError) as exc:
            raise ApiError(400, str(exc)) from exc
        log.info("fault_set", id=fault.id, kind=fault.kind, model=fault.model, params=fault.params)
        return web.json_response(fault.to_json(time.monotonic()), status=201)

    async def admin_fault(self, request: web.Request) -> web.Response:
        """``DELETE /_emulator/faults/{id}``."""
        fault_id = request.match_info["fault_id"]
        if not self.faults.remove(fault_id):
            raise ApiError(404, f"no active fault {fault_id!r}")
        log.info("fault_cleared", id=fault_id)
        return web.json_response({"cleared": fault_id})

    async def admin_stats(self, request: web.Request) -> web.Response:
        """``GET /_emulator/stats`` (with ``pools`` when the profile has any)."""
        return web.json_response(self.ground_truth())

    def ground_truth(self) -> dict[str, Any]:
        """The stats snapshot, the batch truth, and ``pools`` when the profile has any."""
        snapshot = self.stats.snapshot()
        snapshot["batches"] = self.batches.snapshot()
        if self.profile.pools:
            snapshot["pools"] = self.pools.snapshot()
        return snapshot

    async def admin_reset(self, request: web.Request) -> web.Response:
        """``POST /_emulator/reset``."""
        self.reset()
        return web.json_response({"reset": True})

    async def admin_quotas(self, request: web.Request) -> web.Response:
        """``GET``/``POST /_emulator/quotas``."""
        if request.method == "POST":
            spec = require_object(parse_json(await request.read()))
            model = spec.get("model")
            rpm, tpm = spec.get("rpm"), spec.get("tpm")
            valid = all(v is None or (isinstance(v, int) and v >= 0) for v in (rpm, tpm))
            if not isinstance(model, str) or self.profile.get(model) is None or not valid:
                raise ApiError(400, "expected {'model': <served model>, 'rpm': int, 'tpm': int}")
            self.quotas.set_limits(self.profile.get(model).name, rpm, tpm)  # type: ignore[union-attr]
        return web.json_response({"enabled": self.quotas.enabled, "limits": self.quotas.limits()})

    async def admin_health(self, request: web.Request) -> web.Response:
        """``GET /_emulator/health``."""
        return web.json_response(
            {
                "status": "ok",
                "seed": self.config.seed,
                "time_scale": self.config.time_scale,
                "models": [m.name for m in self.profile.unique_models()],
            }
        )


EMULATOR_KEY = web.AppKey("emulator", Emulator)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render every error, including aiohttp's own routing errors, as the API's error JSON."""
    try:
        return await handler(request)
    except ApiError as exc:
        return web.Response(status=exc.code, text=exc.to_json(), content_type="application/json")
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed):
        error = ApiError(404, "Method not found.")
        return web.Response(status=404, text=error.to_json(), content_type="application/json")
    except web.HTTPRequestEntityTooLarge:
        error = invalid_argument("Request payload size exceeds the limit.")
        return web.Response(status=400, text=error.to_json(), content_type="application/json")


def build_app(emulator: Emulator) -> web.Application:
    """The aiohttp application serving ``emulator``."""
    # aiohttp refuses bodies over client_max_size itself; leave a margin so that our own
    # check (with the API's message) is the one that answers.
    app = web.Application(
        middlewares=[_errors_as_json], client_max_size=emulator.config.max_body_bytes + 1024
    )
    version = "{version:v1beta|v1|v1alpha}"
    app.router.add_get(f"/{version}/models", emulator.list_models)
    app.router.add_route("*", f"/{version}/models/{{target}}", emulator.handle_model)
    app.router.add_get(f"/{version}/batches", emulator.list_batches)
    app.router.add_route("*", f"/{version}/batches/{{target}}", emulator.handle_batch)
    app.router.add_route("*", "/_emulator/faults", emulator.admin_faults)
    app.router.add_delete("/_emulator/faults/{fault_id}", emulator.admin_fault)
    app.router.add_get("/_emulator/stats", emulator.admin_stats)
    app.router.add_post("/_emulator/reset", emulator.admin_reset)
    app.router.add_route("*", "/_emulator/quotas", emulator.admin_quotas)
    app.router.add_get("/_emulator/health", emulator.admin_health)
    app[EMULATOR_KEY] = emulator
    return app


async def start_server(
    emulator: Emulator, host: str = "127.0.0.1", port: int = 0
) -> tuple[web.AppRunner, int]:
    """Start serving ``emulator``; return the runner (``await runner.cleanup()`` stops it)
    and the bound port (``port=0`` picks a free one)."""
    # handler_cancellation: a client that disconnects cancels its handler, which is how a
    # stall ends and how streams stop writing to nobody.
    runner = web.AppRunner(
        build_app(emulator), handler_cancellation=True, access_log=None, shutdown_timeout=0.5
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=2048, reuse_address=True)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    return runner, int(bound)
