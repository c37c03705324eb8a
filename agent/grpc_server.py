"""OTLP/gRPC: ``opentelemetry.proto.collector.metrics.v1.MetricsService/Export`` (grpc.aio).

The same receiver as ``POST /v1/metrics``, over gRPC (default 127.0.0.1:4317, the OTLP
port for gRPC). It shares the HTTP path's one code path: the request arrives as bytes
(the method is registered without a deserializer) and goes through
:meth:`Agent.decode_and_ingest <gemini_slo.agent.server.Agent.decode_and_ingest>` on an
ingest worker, so the limits of :class:`~gemini_slo.agent.otlp_decode.RequestLimits` are
checked before and after parsing exactly as for OTLP/HTTP, and the answer is the same
``ExportMetricsServiceResponse`` (``partial_success`` included) from
:func:`~gemini_slo.agent.otlp_decode.encode_response`.

Status codes follow the HTTP path's :data:`~gemini_slo.agent.otlp_decode.GRPC_CODES`:
UNAUTHENTICATED without the bearer token (``authorization: Bearer ...`` metadata, when a
token is set), INVALID_ARGUMENT for a message that does not parse or breaks a structural
limit, RESOURCE_EXHAUSTED for a message over ``max_body_bytes`` (gRPC's own receive limit)
or over a count limit, UNAVAILABLE (retryable) while shutting down or too busy.
Compression (gzip) is gRPC's own: the message is inflated before the handler, and the
receive limit applies to the inflated size.

grpc.aio runs on the agent's event loop; the work is on the ingest pool, never on the loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
from gemini_slo.agent.otlp_decode import GRPC_CODES, BodyError, Encoding, encode_response
from gemini_slo.agent.workers import Busy
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2_grpc import (
    MetricsServiceServicer,
)

if TYPE_CHECKING:
    from gemini_slo.agent.server import Agent

#: The service's full name, from opentelemetry-proto's descriptor (never spelled here).
SERVICE = metrics_service_pb2.DESCRIPTOR.services_by_name["MetricsService"].full_name
#: The label of gRPC exports in the agent's self-metrics (beside ``protobuf``, ``json``).
TRANSPORT = "grpc"
_CODES = {code.value[0]: code for code in grpc.StatusCode}


class MetricsReceiver(MetricsServiceServicer):
    """The ``Export`` method of opentelemetry-proto's ``MetricsService``, on bytes."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    async def Export(  # the generated servicer's method name
        self, request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> bytes:
        """Decode, check and merge one export; an ExportMetricsServiceResponse's bytes."""
        agent = self.agent
        agent.begin_export()
        try:
            return await self._export(request, context)
        finally:
            agent.end_export()

    async def _export(
        self, request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> bytes:
        agent = self.agent
        peer = context.peer()
        header = ""
        for key, value in context.invocation_metadata() or ():
            if key == "authorization":
                header = value if isinstance(value, str) else value.decode("latin-1")
        try:
            if not agent.authorized(header):
                raise BodyError(401, "unauthorized", "missing or invalid bearer token")
            if agent.draining:
                raise BodyError(503, "shutting_down", "the agent is shutting down")
            try:
                result = await agent.ingest_pool.run(
                    agent.decode_and_ingest, request, Encoding.PROTOBUF, False, TRANSPORT
                )
            except Busy:
                raise BodyError(503, "busy", "the agent is busy: retry") from None
        except BodyError as exc:
            agent.note_refusal(exc.reason, exc.message, TRANSPORT, peer)
            await context.abort(_CODES[GRPC_CODES.get(exc.status, 2)], exc.message)
            raise AssertionError("unreachable: abort raises") from None
        note = agent.answer_note(result, TRANSPORT, peer)
        return encode_response(result.rejected, note, Encoding.PROTOBUF)


def make_server(agent: Agent) -> grpc.aio.Server:
    """A grpc.aio server holding the receiver (not yet bound or started).

    The receive limit is the HTTP path's ``max_body_bytes`` (RESOURCE_EXHAUSTED beyond);
    ``so_reuseport`` is off, so that a second agent on the same port fails to start
    instead of silently sharing it.
    """
    limit = agent.config.max_body_bytes
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", 4 * 1024 * 1024),
            ("grpc.so_reuseport", 0),
        ],
        maximum_concurrent_rpcs=agent.config.max_pending_exports * 4,
    )
    handler = grpc.unary_unary_rpc_method_handler(
        MetricsReceiver(agent).Export,
        request_deserializer=None,  # bytes: the HTTP path's limits come before parsing
        response_serializer=None,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE, {"Export": handler}),)
    )
    return server
