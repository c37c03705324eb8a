"""The Gemini API's error JSON, as the emulator writes it.

The real API (and therefore google-genai's ``errors.APIError``) uses the google.rpc
``Status`` shape for every error::

    {"error": {"code": 429, "message": "...", "status": "RESOURCE_EXHAUSTED", "details": [...]}}

``details`` holds typed google.rpc messages, each with an ``@type``; a 429 carries a
``google.rpc.RetryInfo`` whose ``retryDelay`` is a duration string such as ``"17s"``.
The SDK reads ``code``, ``status``, ``message`` and ``details`` off this body, so keeping the
shape exact is what makes client-side error handling testable against the emulator.
"""

from __future__ import annotations

import json
import math
from typing import Any

# HTTP code -> google.rpc.Code name, for the codes the Gemini API is known to answer.
STATUS_BY_CODE: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

# The messages the real API gives for injected server-side failures, so that logs and
# error-type attributes read like production ones.
DEFAULT_MESSAGES: dict[int, str] = {
    400: "Request contains an invalid argument.",
    403: "The caller does not have permission",
    404: "Requested entity was not found.",
    408: "Request timed out.",
    429: (
        "You exceeded your current quota, please check your plan and billing details. "
        "For more information on this error, head to: "
        "https://ai.google.dev/gemini-api/docs/rate-limits."
    ),
    500: (
        "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting"
    ),
    502: "Bad gateway.",
    503: "The model is overloaded. Please try again later.",
    504: "Deadline expired before operation could complete.",
}

RETRY_INFO_TYPE = "type.googleapis.com/google.rpc.RetryInfo"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"
QUOTA_FAILURE_TYPE = "type.googleapis.com/google.rpc.QuotaFailure"
HELP_TYPE = "type.googleapis.com/google.rpc.Help"
ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo"


class ApiError(Exception):
    """An error answer: raised anywhere in request handling, rendered by the server.

    Attributes mirror the JSON body; ``headers`` are extra HTTP headers (none by default).
    """

    def __init__(
        self,
        code: int,
        message: str | None = None,
        *,
        status: str | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        self.code = code
        self.message = message if message is not None else DEFAULT_MESSAGES.get(code, "Error")
        self.status = status or STATUS_BY_CODE.get(code, "UNKNOWN")
        self.details = details or []
        super().__init__(f"{self.code} {self.status}: {self.message}")

    def body(self) -> dict[str, Any]:
        """The ``{"error": {...}}`` object; ``details`` is left out when empty, as the API does."""
        error: dict[str, Any] = {"code": self.code, "message": self.message, "status": self.status}
        if self.details:
            error["details"] = self.details
        return {"error": error}

    def to_json(self) -> str:
        """The body serialised the way the API does (pretty-printed JSON)."""
        return json.dumps(self.body(), indent=2)


def retry_info(delay_s: float) -> dict[str, Any]:
    """A google.rpc.RetryInfo detail; the API rounds the delay up to whole seconds."""
    return {"@type": RETRY_INFO_TYPE, "retryDelay": f"{max(1, math.ceil(delay_s))}s"}


def injected_error(code: int, *, retry_delay_s: float = 1.0) -> ApiError:
    """The error a fault injects for ``code``; a 429 carries RetryInfo like a real one."""
    details = [retry_info(retry_delay_s)] if code == 429 else None
    return ApiError(code, details=details)


def invalid_argument(message: str, *, field_violation: bool = False) -> ApiError:
    """A 400 INVALID_ARGUMENT; JSON-level problems carry a BadRequest detail as in the API."""
    details = (
        [{"@type": BAD_REQUEST_TYPE, "fieldViolations": [{"description": message}]}]
        if field_violation
        else None
    )
    return ApiError(400, message, details=details)


def model_not_found(model: str, method: str, version: str = "v1beta") -> ApiError:
    """The API's 404 for a model it does not serve (or that does not support ``method``)."""
    return ApiError(
        404,
        f"models/{model} is not found for API version {version}, or is not supported for "
        f"{method}. Call ListModels to see the list of available models and their supported "
        "methods.",
    )


def quota_exceeded(model: str, metric: str, limit: int, retry_delay_s: float) -> ApiError:
    """The API's 429 for a per-model quota: QuotaFailure, Help and RetryInfo details."""
    return ApiError(
        429,
        details=[
            {
                "@type": QUOTA_FAILURE_TYPE,
                "violations": [
                    {
                        "quotaMetric": f"generativelanguage.googleapis.com/{metric}",
                        "quotaId": f"{metric}-per-minute-per-model",
                        "quotaDimensions": {"location": "global", "model": model},
                        "quotaValue": str(limit),
                    }
                ],
            },
            {
                "@type": HELP_TYPE,
                "links": [
                    {
                        "description": "Learn more about Gemini API quotas",
                        "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                    }
                ],
            },
            retry_info(retry_delay_s),
        ],
    )


def missing_api_key() -> ApiError:
    """The API's answer to a request without a key."""
    return ApiError(
        403,
        "Method doesn't allow unregistered callers (callers without established identity). "
        "Please use API Key or other form of API consumer identity to call this API.",
    )
