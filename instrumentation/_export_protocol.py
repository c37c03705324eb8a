"""Which OTLP transport the export uses: OTLP/HTTP (the default) or OTLP/gRPC.

``OTEL_EXPORTER_OTLP_METRICS_PROTOCOL``, else ``OTEL_EXPORTER_OTLP_PROTOCOL`` (the
OpenTelemetry SDK's variables, with their values): ``http/protobuf`` (default) or ``grpc``.
gRPC needs the optional extra ``pip install gemini-slo[grpc]``
(``opentelemetry-exporter-otlp-proto-grpc``); without it the export warns once and stays
on OTLP/HTTP, so that a missing extra never costs the app its metrics. Any other value
(``http/json``: the SDK's Python exporters have no JSON encoder) warns once too.

The endpoint: what ``configure()`` resolved (a ``.../v1/metrics`` URL), with the path
dropped for gRPC (gRPC has none), and the default ``http://127.0.0.1:4318`` becoming
``http://127.0.0.1:4317``, the OTLP port for gRPC. ``http://`` means plaintext, as in the
SDK.
"""

from __future__ import annotations

import logging
import os
from typing import Any

_log = logging.getLogger("gemini_slo.instrumentation.export")

GRPC = "grpc"
HTTP_PROTOBUF = "http/protobuf"
#: The SDK's environment variables, the metrics-specific one first.
PROTOCOL_VARIABLES = ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
_DEFAULT_HTTP_ENDPOINT = "http://127.0.0.1:4318/v1/metrics"
DEFAULT_GRPC_ENDPOINT = "http://127.0.0.1:4317"
#: The gRPC exporter's loggers (its retry warnings are ours to quiet, like HTTP's).
GRPC_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.exporter.otlp.proto.grpc.metric_exporter",
)
_warned: set[str] = set()


def _warn_once(key: str, message: str, *args: object) -> None:
    if key not in _warned:
        _warned.add(key)
        _log.warning(message, *args)


def requested_protocol() -> str:
    """The protocol the environment asks for (lower-cased); ``http/protobuf`` if none."""
    for name in PROTOCOL_VARIABLES:
        value = os.environ.get(name, "").strip().lower()
        if value:
            return value
    return HTTP_PROTOBUF


def grpc_endpoint(endpoint: str) -> str:
    """The gRPC target for a resolved OTLP/HTTP metrics URL (see the module docstring)."""
    if endpoint == _DEFAULT_HTTP_ENDPOINT:
        return DEFAULT_GRPC_ENDPOINT
    return endpoint.removesuffix("/").removesuffix("/v1/metrics")


def make_exporter(endpoint: str, timeout: float, log_filter: logging.Filter | None = None) -> Any:
    """The SDK's ``OTLPMetricExporter`` for the requested protocol (HTTP when in doubt).

    ``log_filter`` is attached to the gRPC exporter's loggers, as the caller attaches it
    to the HTTP exporter's (its own exports' retry warnings are dropped).
    """
    protocol = requested_protocol()
    if protocol == GRPC:
        try:
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
                OTLPMetricExporter as GrpcExporter,
            )
        except ImportError:
            _warn_once(
                "missing",
                "gemini-slo: OTLP protocol %r asks for opentelemetry-exporter-otlp-proto-grpc, "
                "which is not installed (pip install 'gemini-slo[grpc]'): exporting over "
                "OTLP/HTTP to %s instead",
                protocol,
                endpoint,
            )
        else:
            if log_filter is not None:
                for name in GRPC_LOGGERS:
                    logging.getLogger(name).addFilter(log_filter)
            target = grpc_endpoint(endpoint)
            return GrpcExporter(
                endpoint=target, insecure=target.startswith("http://"), timeout=timeout
            )
    elif protocol != HTTP_PROTOBUF:
        _warn_once(
            protocol,
            "gemini-slo: OTLP protocol %r is not supported (use grpc or http/protobuf): "
            "exporting over OTLP/HTTP (protobuf) to %s",
            protocol,
            endpoint,
        )
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    return OTLPMetricExporter(endpoint=endpoint, timeout=timeout)
