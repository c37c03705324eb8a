"""The seeded generator: how many tokens a request uses, what text comes back, and when.

Everything random about one response is drawn up front into a :class:`Plan` from one
``random.Random``; the server then only sleeps and writes. Determinism (``--seed N``): the
RNG of a request is seeded with the string ``"{seed}:{model}:{n}"`` where ``n`` counts the
generate/stream requests of that model that passed validation (0, 1, 2, ...). String seeds
go through SHA-512 in CPython, so the sequence is the same across processes and platforms.
Sequential callers therefore see the same responses for the same seed; concurrent callers
see the same set of responses, in arrival order.

Token rule (documented, deterministic, and the same for prompts and outputs): one token per
whitespace-separated word of text; an inline or file part (image, audio, ...) counts 258
tokens, the figure the API uses for an image. Generated text is filler words, each one
token, so ``countTokens`` on a response's text equals its ``candidatesTokenCount``.

Markers in the prompt text change one request (handy in tests and demos):
``[[emulator:block]]`` (prompt blocked, no candidates), ``[[emulator:safety]]`` (stops early
with finishReason SAFETY), ``[[emulator:output_tokens=N]]`` (exact visible length, still
capped by maxOutputTokens), ``[[emulator:error=NNN]]`` (answer that HTTP error).
"""

from __future__ import annotations

import base64
import math
import random
import re
from dataclasses import dataclass, field
from typing import Any

from gemini_slo.emulator.errors import invalid_argument
from gemini_slo.emulator.profile import ModelProfile

NON_TEXT_PART_TOKENS = 258
_MARKER = re.compile(r"\[\[emulator:([a-z_]+)(?:=(\d+))?\]\]")

# A fixed vocabulary of filler words laid out once in a doubled string, so that the text of
# any run of output tokens is one slice: the hot path of a stream never joins word lists.
_VOCABULARY = [
    "the",
    "a",
    "of",
    "to",
    "and",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "with",
    "on",
    "was",
    "by",
    "at",
    "be",
    "this",
    "from",
    "or",
    "an",
    "are",
    "which",
    "model",
    "token",
    "latency",
    "stream",
    "quota",
    "budget",
    "signal",
    "metric",
    "window",
    "burn",
    "rate",
    "error",
    "alert",
    "page",
    "ticket",
    "cost",
    "throughput",
    "request",
    "response",
    "chunk",
    "queue",
    "deadline",
    "shed",
    "headroom",
    "service",
    "level",
    "objective",
    "agent",
    "gemini",
    "prompt",
    "output",
    "input",
    "cache",
    "thinking",
    "decode",
    "first",
    "tail",
    "percentile",
    "median",
    "mean",
    "sample",
    "bucket",
    "histogram",
    "counter",
    "gauge",
    "series",
    "label",
    "scrape",
]
_FILLER_WORDS = 8192


def _build_filler() -> tuple[str, list[int], list[int]]:
    rng = random.Random("gemini-slo-filler")
    words = [rng.choice(_VOCABULARY) for _ in range(_FILLER_WORDS)]
    doubled = words + words
    starts: list[int] = []
    ends: list[int] = []
    position = 0
    for word in doubled:
        starts.append(position)
        position += len(word)
        ends.append(position)
        position += 1  # the separating space
    return " ".join(doubled), starts, ends


_FILLER, _STARTS, _ENDS = _build_filler()


def filler_text(start: int, count: int) -> str:
    """``count`` filler words beginning at word ``start`` (any int), separated by spaces."""
    if count <= 0:
        return ""
    pieces: list[str] = []
    begin = start % _FILLER_WORDS
    while count > 0:
        take = min(count, _FILLER_WORDS)
        pieces.append(_FILLER[_STARTS[begin] : _ENDS[begin + take - 1]])
        count -= take
        begin = (begin + take) % _FILLER_WORDS
    return " ".join(pieces)


def count_text_tokens(text: str) -> int:
    """The emulator's token rule for text: one token per whitespace-separated word."""
    return len(text.split())


def _part_tokens(part: Any) -> tuple[int, str]:
    if not isinstance(part, dict):
        raise invalid_argument("Invalid value at 'contents.parts': a part is an object.")
    text = part.get("text")
    if isinstance(text, str):
        return count_text_tokens(text), text
    if "inlineData" in part or "fileData" in part:
        return NON_TEXT_PART_TOKENS, ""
    # functionCall / functionResponse / executableCode ...: count their JSON-ish size.
    return max(1, len(str(part)) // 16), ""


def count_contents(contents: Any, system_instruction: Any = None) -> tuple[int, str]:
    """Tokens of ``contents`` (and a system instruction) and their concatenated text."""
    total = 0
    texts: list[str] = []
    items: list[Any] = list(contents) if isinstance(contents, list) else [contents]
    if system_instruction is not None:
        items.append(system_instruction)
    for content in items:
        if not isinstance(content, dict):
            raise invalid_argument("Invalid value at 'contents': a content is an object.")
        parts = content.get("parts", [])
        if not isinstance(parts, list):
            raise invalid_argument("Invalid value at 'contents.parts': parts is a list.")
        for part in parts:
            tokens, text = _part_tokens(part)
            total += tokens
            if text:
                texts.append(text)
    return total, "\n".join(texts)


@dataclass(frozen=True, slots=True)
class Markers:
    """Per-request switches read from ``[[emulator:...]]`` markers in the prompt."""

    block: bool = False
    safety: bool = False
    output_tokens: int | None = None
    error: int | None = None


def parse_markers(text: str) -> Markers:
    """Find the markers in ``text`` (cheap when there are none)."""
    if "[[emulator:" not in text:
        return Markers()
    block = safety = False
    output_tokens: int | None = None
    error: int | None = None
    for name, value in _MARKER.findall(text):
        if name == "block":
            block = True
        elif name == "safety":
            safety = True
        elif name == "output_tokens" and value:
            output_tokens = int(value)
        elif name == "error" and value:
            error = int(value)
    return Markers(block=block, safety=safety, output_tokens=output_tokens, error=error)


@dataclass(slots=True)
class Knobs:
    """What faults change for one request (neutral values by default)."""

    latency_factor: float = 1.0
    extra_delay_s: float = 0.0
    token_rate_factor: float = 1.0
    block: bool = False
    safety: bool = False
    cache_fraction: float = 0.0


@dataclass(slots=True)
class Plan:
    """Everything about one response, drawn before the first byte is written.

    ``chunks`` are the visible output tokens of each stream event and ``delays_s`` the
    sleep before each event (the first includes time to first token and thinking).
    """

    prompt_tokens: int
    cached_tokens: int
    thoughts_tokens: int
    output_tokens: int
    finish_reason: str
    blocked: bool
    text_offset: int
    response_id: str
    chunks: list[int] = field(default_factory=list)
    delays_s: list[float] = field(default_factory=list)

    @property
    def total_delay_s(self) -> float:
        """The time a non-streamed answer takes."""
        return sum(self.delays_s)


def _lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return median * math.exp(rng.gauss(0.0, sigma)) if sigma > 0 else median


def thinking_budget(model: ModelProfile, generation_config: dict[str, Any]) -> int:
    """The effective thinking budget: 0 = no thinking, -1 = dynamic, N = at most N tokens."""
    thinking = model.thinking
    config = generation_config.get("thinkingConfig") or {}
    if not isinstance(config, dict):
        raise invalid_argument("Invalid value at 'generation_config.thinking_config'.")
    budget = config.get("thinkingBudget")
    if thinking is None:
        return 0
    if budget is None:
        return -1 if thinking.default_on else 0
    if not isinstance(budget, int) or budget < -1:
        raise invalid_argument(
            "Invalid value at 'generation_config.thinking_config.thinking_budget'."
        )
    if budget == 0 and not thinking.can_disable:
        raise invalid_argument("Budget 0 is invalid. This model only works in thinking mode.")
    return min(budget, thinking.max_budget) if budget > 0 else budget


def make_plan(
    rng: random.Random,
    model: ModelProfile,
    *,
    prompt_tokens: int,
    generation_config: dict[str, Any],
    cached_content: bool,
    markers: Markers,
    knobs: Knobs,
    time_scale: float,
    congestion: tuple[float, float] | None = None,
) -> Plan:
    """Draw one response. ``time_scale`` scales the model's latencies (not fault delays).

    ``congestion`` is the model's pool at this request's load (``capacity.Pool.factors``):
    time to first token is multiplied by its first factor, the decode rate divided by the
    second. None (no pool) leaves the draw exactly as it is without one.
    """
    response_id = base64.urlsafe_b64encode(rng.getrandbits(120).to_bytes(15, "big")).decode()
    cached = model.cached_content_tokens if cached_content else 0
    prompt = prompt_tokens + cached
    if knobs.cache_fraction > 0:
        cached = min(prompt, cached + int(prompt_tokens * knobs.cache_fraction))
    ttft = _lognormal(rng, model.ttft_median_s, model.ttft_sigma)
    rate = model.decode_tokens_per_s * knobs.token_rate_factor
    rate *= math.exp(rng.gauss(0.0, model.decode_jitter)) if model.decode_jitter else 1.0
    if congestion is not None:
        ttft *= congestion[0]
        rate /= congestion[1]
    scale = time_scale * knobs.latency_factor
    first_delay = ttft * scale + knobs.extra_delay_s
    if markers.block or knobs.block:
        return Plan(prompt, cached, 0, 0, "", True, 0, response_id, [], [first_delay])

    budget = thinking_budget(model, generation_config)
    limit = generation_config.get("maxOutputTokens")
    if limit is None:
        limit = model.output_token_limit
    elif not isinstance(limit, int) or limit <= 0:
        raise invalid_argument(
            "Invalid value at 'generation_config.max_output_tokens': must be a positive integer."
        )
    limit = min(limit, model.output_token_limit)
    thoughts = 0
    if budget != 0 and model.thinking is not None:
        thoughts = max(
            1, round(_lognormal(rng, model.thinking.tokens_median, model.thinking.tokens_sigma))
        )
        if budget > 0:
            thoughts = min(thoughts, budget)
        # Thinking counts against maxOutputTokens on the real API: a small limit can leave
        # no room for visible text at all (an empty candidate with MAX_TOKENS).
        thoughts = min(thoughts, limit)
    room = limit - thoughts
    wanted = markers.output_tokens
    if wanted is None:
        wanted = max(
            1, round(_lognormal(rng, model.output_tokens_median, model.output_tokens_sigma))
        )
    finish = "STOP"
    output = wanted
    if output > room:
        output, finish = room, "MAX_TOKENS"
    if markers.safety or knobs.safety:
        output, finish = max(0, min(output, int(output * rng.uniform(0.2, 0.8)) + 1)), "SAFETY"

    chunks: list[int] = []
    delays: list[float] = []
    thinking_s = thoughts / rate * scale
    remaining = output
    step = model.chunk_tokens
    jitter = model.decode_jitter
    first = True
    while remaining > 0 or first:
        n = min(step, remaining)
        chunk_s = n / rate * scale
        if jitter and n:
            chunk_s *= math.exp(rng.gauss(0.0, jitter))
        delays.append(first_delay + thinking_s + chunk_s if first else chunk_s)
        chunks.append(n)
        remaining -= n
        first = False
    return Plan(
        prompt_tokens=prompt,
        cached_tokens=cached,
        thoughts_tokens=thoughts,
        output_tokens=output,
        finish_reason=finish,
        blocked=False,
        text_offset=rng.randrange(_FILLER_WORDS),
        response_id=response_id,
        chunks=chunks,
        delays_s=delays,
    )
