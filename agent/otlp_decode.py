"""OTLP/HTTP metrics bodies: content type, gzip with a size cap, protobuf or JSON decoding.

Exactly what the OpenTelemetry exporters send (``opentelemetry-exporter-otlp-proto-http``
and the Collector's ``otlphttp``): ``POST /v1/metrics`` with ``Content-Type:
application/x-protobuf`` or ``application/json``, optionally ``Content-Encoding: gzip``.
OTLP/JSON differs from proto3's canonical JSON in a few ways (enums may be integers,
int64 fields are strings, trace/span ids are hex); :mod:`google.protobuf.json_format`
accepts the first two, and the ids only appear in exemplars, which the agent ignores.

Responses are encoded like the request, as the OTLP/HTTP specification asks: an
``ExportMetricsServiceResponse`` on success (with ``partial_success`` when some points were
rejected), a ``google.rpc.Status`` on failure.
"""

from __future__ import annotations

import enum
import json
import zlib
from dataclasses import dataclass

from google.protobuf import json_format
from google.protobuf.message import DecodeError as ProtobufDecodeError
from google.rpc import status_pb2
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)


class Encoding(enum.StrEnum):
    """Body encoding of an OTLP/HTTP request (and so of its response)."""

    PROTOBUF = "protobuf"
    JSON = "json"


CONTENT_TYPES: dict[str, Encoding] = {
    "application/x-protobuf": Encoding.PROTOBUF,
    "application/protobuf": Encoding.PROTOBUF,
    "application/json": Encoding.JSON,
}
RESPONSE_CONTENT_TYPE: dict[Encoding, str] = {
    Encoding.PROTOBUF: "application/x-protobuf",
    Encoding.JSON: "application/json",
}


@dataclass(frozen=True, slots=True)
class BodyError(Exception):
    """A request the agent refuses as a whole: HTTP ``status``, a self-metric ``reason``."""

    status: int
    reason: str
    message: str

    def __str__(self) -> str:
        return self.message


def encoding_of(content_type: str | None) -> Encoding:
    """The body encoding for a Content-Type header (parameters such as charset ignored)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    encoding = CONTENT_TYPES.get(media)
    if encoding is None:
        raise BodyError(
            415,
            "content_type",
            f"unsupported Content-Type {media or '(none)'!r}: "
            "send application/x-protobuf or application/json",
        )
    return encoding


def gunzip(body: bytes, max_bytes: int) -> bytes:
    """Decompress a gzip body, refusing to produce more than ``max_bytes`` (gzip bombs).

    Decompression is incremental with ``max_length``, so a bomb never allocates more than
    the cap plus one chunk.
    """
    decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    out = bytearray()
    data = body
    try:
        while data:
            chunk = decompressor.decompress(data, max_bytes + 1 - len(out))
            out += chunk
            if len(out) > max_bytes:
                raise BodyError(
                    413,
                    "decompressed_too_large",
                    f"decompressed body exceeds the limit of {max_bytes} bytes",
                )
            data = decompressor.unconsumed_tail
            if decompressor.eof:
                break
            if not chunk and not data:
                break
        if not decompressor.eof:
            raise BodyError(400, "malformed", "truncated gzip body")
    except zlib.error as exc:
        raise BodyError(400, "malformed", f"invalid gzip body: {exc}") from None
    return bytes(out)


def decode_request(body: bytes, encoding: Encoding) -> ExportMetricsServiceRequest:
    """Parse an ExportMetricsServiceRequest; a :class:`BodyError` (400) when it does not parse."""
    request = ExportMetricsServiceRequest()
    if encoding is Encoding.PROTOBUF:
        try:
            request.ParseFromString(body)
        except (ProtobufDecodeError, RuntimeError, ValueError) as exc:
            raise BodyError(400, "malformed", f"invalid protobuf body: {exc}") from None
        return request
    try:
        text = body.decode("utf-8")
        json_format.Parse(text, request, ignore_unknown_fields=True)
    except (json_format.ParseError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        message = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        raise BodyError(400, "malformed", f"invalid JSON body: {message}") from None
    return request


def encode_response(rejected: int, message: str, encoding: Encoding) -> bytes:
    """An ExportMetricsServiceResponse; partial_success set when anything was rejected or said."""
    response = ExportMetricsServiceResponse()
    if rejected or message:
        response.partial_success.rejected_data_points = rejected
        response.partial_success.error_message = message
    if encoding is Encoding.JSON:
        text: str = json_format.MessageToJson(response, indent=None)
        return text.encode()
    body: bytes = response.SerializeToString()
    return body


def encode_status(code: int, message: str, encoding: Encoding | None) -> tuple[bytes, str]:
    """A google.rpc.Status body for an error response, and its content type.

    ``encoding`` is None when the request's own encoding is unknown (a 415): plain text then.
    ``code`` is a gRPC code (3 INVALID_ARGUMENT, 16 UNAUTHENTICATED, ...).
    """
    if encoding is None:
        return message.encode(), "text/plain; charset=utf-8"
    if encoding is Encoding.JSON:
        return json.dumps({"code": code, "message": message}).encode(), "application/json"
    body: bytes = status_pb2.Status(code=code, message=message).SerializeToString()
    return body, "application/x-protobuf"


#: HTTP status -> gRPC code for the Status body (OTLP/HTTP leaves the mapping to us).
GRPC_CODES: dict[int, int] = {400: 3, 401: 16, 413: 8, 415: 3, 503: 14}
