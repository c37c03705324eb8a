"""Reading a google-genai response: token usage, model version, blocked or not.

Usage comes from ``usage_metadata``: ``prompt_token_count`` (cached content
included), ``candidates_token_count``, ``thoughts_token_count``,
``cached_content_token_count`` (a subset of the prompt), ``tool_use_prompt_token_count``.
A stream carries *cumulative* usage on its chunks: callers pass the last chunk, never a sum.
"""

from __future__ import annotations

from typing import Any, TypeGuard

from gemini_slo.instrumentation._values import Usage
from google.genai import types

_Response = types.GenerateContentResponse

#: Finish reasons that mean the content was filtered: the call is ``blocked``.
BLOCKING_FINISH_REASONS = frozenset(
    {
        "SAFETY",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
    }
)


def is_response(obj: object) -> bool:
    """Whether ``obj`` is a google-genai GenerateContentResponse (or a stream chunk)."""
    return isinstance(obj, _Response)


def usage_of(response: Any) -> Usage | None:
    """The usage a response (or the final chunk of a stream) reports, or None."""
    metadata = getattr(response, "usage_metadata", None)
    if metadata is not None:
        return usage_from(metadata)
    return _embedding_usage(response)


def _embedding_usage(response: Any) -> Usage | None:
    """Vertex AI's embeddings report their input tokens per embedding
    (``statistics.token_count``), not in ``usage_metadata``: their sum is the prompt."""
    embeddings = getattr(response, "embeddings", None)
    if not isinstance(embeddings, list):
        return None
    total, seen = 0, False
    for embedding in embeddings:
        count = getattr(getattr(embedding, "statistics", None), "token_count", None)
        # A count: a non-negative whole number (not a bool, NaN, infinity or a fraction).
        if _whole(count):
            total += int(count)
            seen = True
    return Usage(total) if seen else None


def usage_from(metadata: Any) -> Usage:
    """The usage in a response's ``usage_metadata``."""
    # Only non-negative ints are counts: anything else (a test double, a proxy's odd
    # answer) would corrupt the counters at aggregation time; it counts as 0.
    return Usage(
        _count(getattr(metadata, "prompt_token_count", None)),
        _count(getattr(metadata, "candidates_token_count", None)),
        _count(getattr(metadata, "thoughts_token_count", None)),
        _count(getattr(metadata, "cached_content_token_count", None)),
        _count(getattr(metadata, "tool_use_prompt_token_count", None)),
    )


def _whole(value: object) -> TypeGuard[int | float]:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return 0 <= value < 2**63 and value == int(value)


def _count(value: Any) -> int:
    return value if type(value) is int and value > 0 else 0


def model_version_of(response: Any) -> str | None:
    """The response's ``model_version`` (the model that answered), if any."""
    version = getattr(response, "model_version", None)
    return version if isinstance(version, str) and version else None


def is_blocked(response: Any, *, stream: bool = False) -> bool:
    """Whether the API answered but filtered the content.

    A blocked prompt has ``prompt_feedback.block_reason`` and no candidates; a filtered
    answer ends with a SAFETY-like finish reason. For a stream, ``response`` is its last
    chunk; a final chunk without candidates is normal there (usage only), so a stream
    counts as blocked only on a block reason or a filtering finish reason.
    """
    feedback = response.prompt_feedback
    if feedback is not None and feedback.block_reason:
        return True
    candidates = response.candidates
    if not candidates:
        return not stream
    for candidate in candidates:
        reason = candidate.finish_reason
        if reason is None:
            continue
        if not isinstance(reason, str):  # google-genai's FinishReason is a str enum already
            reason = str(getattr(reason, "value", reason))
        if reason in BLOCKING_FINISH_REASONS:
            return True
    return False
