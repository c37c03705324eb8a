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

Every limit of :class:`RequestLimits` is checked before the store sees a point, and what a
request may cost is bounded by them, not by what it claims: the inflated size (the gzip
stream is cut at the limit), then, once parsed, the number of messages, data points and
attributes (counting stops at the limit), and for JSON the nesting depth and the number of
values, checked on the parsed document before the much slower conversion to protobuf.
:func:`decode_body` is CPU work: the server runs it on a worker thread, never on its event
loop.
"""

from __future__ import annotations

import enum
import json
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from gemini_slo.agent.labels import MAX_ATTRIBUTES
from gemini_slo.contract import otlp_limits
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


@dataclass(frozen=True, slots=True)
class RequestLimits:
    """What one export request may hold; beyond a limit the request is refused whole.

    The defaults, and why (docs/agent.md has the table):

    * ``max_decompressed_bytes`` 8 MiB, as large as the largest body on the wire
      (``AgentConfig.max_body_bytes``, which bounds uncompressed bodies): what an 8 MiB
      uncompressed body costs, a gzip body may cost too, and no more. The worst 8 MiB (empty messages, 2 bytes each) parses in
      about 0.15 s and 350 MB; a typical 8 MiB export holds about 28,000 points.
    * ``max_points`` 50,000: above the OpenTelemetry SDK's default cardinality limit
      (2,000 series per metric) times the contract's thirteen signals; about 0.35 s of
      store work. The Python SDK's ``OTLPMetricExporter(max_export_batch_size=...)``
      splits larger collections.
    * ``max_messages`` 10,000 resource, scope and metric messages (an app sends a handful).
    * ``max_attributes`` 500,000 in all (a point keeps 128, the OpenTelemetry SDK's own
      default attribute count limit: the store drops the rest; a resource or scope with
      more is refused).
    * JSON: ``max_json_depth`` 32 (OTLP/JSON nests 14 deep; an attribute holding a map
      adds 3 a level) and ``max_json_values`` 300,000 values (about 10,000 points):
      converting OTLP/JSON to protobuf costs about 3 us a value, 30 times protobuf.
    """

    max_decompressed_bytes: int = otlp_limits.MAX_REQUEST_BYTES
    max_messages: int = 10_000
    max_points: int = otlp_limits.MAX_REQUEST_POINTS
    max_attributes: int = 500_000
    max_json_depth: int = 32
    max_json_values: int = 300_000


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


def decode_body(
    body: bytes, encoding: Encoding, gzipped: bool, limits: RequestLimits | None = None
) -> ExportMetricsServiceRequest:
    """Inflate (when ``gzipped``), parse and check a body against ``limits``.

    A :class:`BodyError` (400 or 413, with a message saying which limit) when it cannot be
    used; the store is never handed a request over a limit.
    """
    limits = limits or RequestLimits()
    if gzipped:
        body = gunzip(body, limits.max_decompressed_bytes)
    request = decode_request(body, encoding, limits)
    check_shape(request, limits, len(body))
    return request


def decode_request(
    body: bytes, encoding: Encoding, limits: RequestLimits | None = None
) -> ExportMetricsServiceRequest:
    """Parse an ExportMetricsServiceRequest; a :class:`BodyError` (400) when it does not parse.

    JSON is checked against the JSON limits of ``limits`` (default: :class:`RequestLimits`)
    before it is converted.
    """
    request = ExportMetricsServiceRequest()
    if encoding is Encoding.PROTOBUF:
        try:
            request.ParseFromString(body)
        except (ProtobufDecodeError, RuntimeError, ValueError) as exc:
            raise BodyError(400, "malformed", f"invalid protobuf body: {exc}") from None
        return request
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BodyError(400, "malformed", f"invalid JSON body: {_first_line(exc)}") from None
    check_json(document, limits or RequestLimits())
    try:
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, AttributeError, RecursionError) as exc:
        raise BodyError(400, "malformed", f"invalid JSON body: {_first_line(exc)}") from None
    return request


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0][:300] if text else type(exc).__name__


def check_json(document: Any, limits: RequestLimits) -> None:
    """Refuse a parsed JSON document nested deeper or holding more values than the limits.

    Iterative (no recursion to exhaust) and cut short at the first limit crossed.
    """
    if not (type(document) is dict or type(document) is list):
        return  # a bare value: the conversion refuses it
    max_depth, max_values = limits.max_json_depth, limits.max_json_values
    values = 1
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        values += len(node)
        if values > max_values:
            raise BodyError(
                413, "too_many_values", f"JSON body holds more than {max_values} values"
            )
        children: Iterable[Any] = node.values() if type(node) is dict else node
        depth += 1
        for child in children:
            if type(child) is dict or type(child) is list:
                if depth > max_depth:
                    raise BodyError(
                        400, "too_deep", f"JSON body nested deeper than {max_depth} levels"
                    )
                stack.append((child, depth))


def _data_points(metric: Any) -> Any:
    data = metric.WhichOneof("data")
    return getattr(metric, data).data_points if data else ()


def check_shape(
    request: ExportMetricsServiceRequest, limits: RequestLimits, size: int | None = None
) -> None:
    """Refuse a parsed request with more messages, points or attributes than the limits.

    Counting stops at the first limit crossed, so a hostile request costs no more than a
    request at the limits. ``size``: the parsed body's length. An attribute costs at least
    2 bytes, so a body under twice ``max_attributes`` cannot hold too many, and its points'
    attributes are not counted (the usual case: about 4% of the ingest cost saved).
    """
    count_points = size is None or size > 2 * limits.max_attributes
    messages = points = attributes = 0

    def attrs(n: int, where: str) -> int:
        if n > MAX_ATTRIBUTES:
            raise BodyError(
                400,
                "too_many_attributes",
                f"a {where} has {n} attributes (limit {MAX_ATTRIBUTES})",
            )
        return n

    for rm in request.resource_metrics:
        attributes += attrs(len(rm.resource.attributes), "resource")
        scopes = rm.scope_metrics
        messages += 1 + len(scopes)
        for sm in scopes:
            attributes += attrs(len(sm.scope.attributes), "scope")
            metrics = sm.metrics
            messages += len(metrics)
            if messages > limits.max_messages:
                raise BodyError(
                    413,
                    "too_many_messages",
                    f"request holds more than {limits.max_messages} resource, scope and "
                    "metric messages",
                )
            for metric in metrics:
                data_points = _data_points(metric)
                points += len(data_points)
                if points > limits.max_points:
                    raise BodyError(
                        413,
                        "too_many_points",
                        f"request holds more than {limits.max_points} data points: "
                        "split the export (OTLPMetricExporter(max_export_batch_size=...))",
                    )
                if count_points:
                    attributes += sum([len(p.attributes) for p in data_points])
                if attributes > limits.max_attributes:
                    raise BodyError(
                        413,
                        "too_many_attributes",
                        f"request holds more than {limits.max_attributes} attributes",
                    )


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
GRPC_CODES: dict[int, int] = {400: 3, 401: 16, 408: 4, 413: 8, 415: 3, 503: 14}
