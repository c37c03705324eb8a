"""Request validation: what the emulator accepts, and the API's 400s for what it does not.

The API parses request bodies as proto3 JSON, which accepts both the lowerCamel and the
original snake_case field names (google-genai itself sends ``thinkingConfig`` with
``thinking_budget`` inside) and rejects unknown names with
``Invalid JSON payload received. Unknown name "x": Cannot find field.``. We check the top
level and ``generationConfig`` (where typos actually happen); deeper objects pass through.
"""

from __future__ import annotations

import json
from typing import Any

from gemini_slo.emulator.errors import ApiError, invalid_argument

GENERATE_FIELDS = frozenset(
    {
        "model",
        "contents",
        "tools",
        "toolConfig",
        "safetySettings",
        "systemInstruction",
        "generationConfig",
        "cachedContent",
        "serviceTier",
        "store",
        "labels",
    }
)
GENERATION_CONFIG_FIELDS = frozenset(
    {
        "stopSequences",
        "responseMimeType",
        "responseSchema",
        "responseJsonSchema",
        "responseModalities",
        "candidateCount",
        "maxOutputTokens",
        "temperature",
        "topP",
        "topK",
        "seed",
        "presencePenalty",
        "frequencyPenalty",
        "responseLogprobs",
        "logprobs",
        "enableEnhancedCivicAnswers",
        "speechConfig",
        "thinkingConfig",
        "imageConfig",
        "mediaResolution",
        "audioTimestamp",
        "routingConfig",
        "modelSelectionConfig",
    }
)
THINKING_CONFIG_FIELDS = frozenset({"thinkingBudget", "includeThoughts", "thinkingLevel"})
COUNT_TOKENS_FIELDS = frozenset({"contents", "generateContentRequest"})


def camel(name: str) -> str:
    """snake_case -> lowerCamel (lowerCamel passes through unchanged)."""
    if "_" not in name:
        return name
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def parse_json(raw: bytes) -> Any:
    """Decode a request body, with the API's message for malformed JSON."""
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid_argument(
            f"Invalid JSON payload received. Unexpected token.\n{exc}", field_violation=True
        ) from exc


def _camelize(obj: dict[str, Any], allowed: frozenset[str], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = camel(key)
        if name not in allowed:
            raise invalid_argument(
                f'Invalid JSON payload received. Unknown name "{key}"{where}: Cannot find field.',
                field_violation=True,
            )
        out[name] = value
    return out


def validate_generate(body: Any, request_name: str = "GenerateContentRequest") -> dict[str, Any]:
    """Validate a generateContent body and return it with lowerCamel keys."""
    if not isinstance(body, dict):
        raise invalid_argument(
            "Invalid JSON payload received. Expected an object for the request body.",
            field_violation=True,
        )
    request = _camelize(body, GENERATE_FIELDS, "")
    contents = request.get("contents")
    if not contents:
        raise invalid_argument(f"* {request_name}.contents: contents is not specified\n")
    if not isinstance(contents, list):
        raise invalid_argument("Invalid value at 'contents': expected a list of Content.")
    for i, content in enumerate(contents):
        if not isinstance(content, dict) or not content.get("parts"):
            raise invalid_argument(
                f"* {request_name}.contents[{i}].parts: contents.parts must not be empty.\n"
            )
    config = request.get("generationConfig") or {}
    if not isinstance(config, dict):
        raise invalid_argument("Invalid value at 'generation_config': expected an object.")
    config = _camelize(config, GENERATION_CONFIG_FIELDS, " at 'generation_config'")
    thinking = config.get("thinkingConfig")
    if thinking is not None:
        if not isinstance(thinking, dict):
            raise invalid_argument("Invalid value at 'generation_config.thinking_config'.")
        config["thinkingConfig"] = _camelize(
            thinking, THINKING_CONFIG_FIELDS, " at 'generation_config.thinking_config'"
        )
    request["generationConfig"] = config
    cached = request.get("cachedContent")
    if cached is not None and not isinstance(cached, str):
        raise invalid_argument("Invalid value at 'cached_content': expected a string.")
    return request


def validate_count_tokens(body: Any) -> dict[str, Any]:
    """Validate a countTokens body: ``contents`` or a whole ``generateContentRequest``."""
    if not isinstance(body, dict):
        raise invalid_argument("Invalid JSON payload received. Expected an object.")
    request = _camelize(body, COUNT_TOKENS_FIELDS, "")
    inner = request.get("generateContentRequest")
    if inner is not None:
        return validate_generate(inner)
    return validate_generate({"contents": request.get("contents")}, "CountTokensRequest")


def validate_embed_requests(body: Any, batch: bool) -> list[dict[str, Any]]:
    """Validate embedContent / batchEmbedContents bodies; return the individual requests."""
    if not isinstance(body, dict):
        raise invalid_argument("Invalid JSON payload received. Expected an object.")
    allowed = frozenset({"model", "content", "taskType", "title", "outputDimensionality"})
    if batch:
        _camelize(body, frozenset({"requests"}), "")
        requests = body.get("requests")
        if not isinstance(requests, list) or not requests:
            raise invalid_argument(
                "* BatchEmbedContentsRequest.requests: requests is not specified\n"
            )
    else:
        requests = [body]
    out: list[dict[str, Any]] = []
    for i, raw in enumerate(requests):
        if not isinstance(raw, dict):
            raise invalid_argument(f"Invalid value at 'requests[{i}]': expected an object.")
        request = _camelize(raw, allowed, f" at 'requests[{i}]'")
        content = request.get("content")
        if not isinstance(content, dict) or not content.get("parts"):
            raise invalid_argument("* EmbedContentRequest.content: content is not specified\n")
        dims = request.get("outputDimensionality")
        if dims is not None and (not isinstance(dims, int) or dims <= 0):
            raise invalid_argument("Invalid value at 'output_dimensionality'.")
        out.append(request)
    return out


def require_object(body: Any) -> dict[str, Any]:
    """Admin API bodies are JSON objects."""
    if not isinstance(body, dict):
        raise ApiError(400, "expected a JSON object")
    return body
