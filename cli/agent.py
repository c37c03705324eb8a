"""``gemini-slo agent``: run the collector agent until SIGTERM or Ctrl-C.

::

    gemini-slo agent [--config slo.yaml] [--otlp 127.0.0.1:4318] [--metrics 127.0.0.1:9464]
                     [--grpc 127.0.0.1:4317 | --grpc off]
                     [--token-file F] [--state-file F] [--stale-after 300] [limits...]
                     [--prometheus http://127.0.0.1:9090]

Every flag, its default and why: docs/agent.md.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Callable
from pathlib import Path

import structlog
from gemini_slo.agent.otlp_decode import RequestLimits
from gemini_slo.agent.server import Agent, AgentConfig
from gemini_slo.agent.store import StoreLimits
from gemini_slo.cli.errors import reports_errors
from gemini_slo.cli.inputs import load_spec_file, read_token_file

log = structlog.get_logger("gemini_slo.agent")


def parse_address(text: str) -> tuple[str, int]:
    """``"127.0.0.1:4318"`` -> ``("127.0.0.1", 4318)``; ``":4318"`` binds 127.0.0.1."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    host = host.strip("[]") or "127.0.0.1"
    value = int(port)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range in {text!r}")
    return host, value


def parse_optional_address(text: str) -> tuple[str, int] | None:
    """Like :func:`parse_address`, and ``"off"`` (no listener) -> None."""
    if text.strip().lower() == "off":
        return None
    return parse_address(text)


def _positive(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    def parse(text: str) -> int | float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
        return value

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``gemini-slo agent``."""
    parser.add_argument(
        "--config", type=Path, default=None,
        help="slo.yaml spec (default: the packaged example)",
    )  # fmt: skip
    parser.add_argument(
        "--otlp", type=parse_address, default=("127.0.0.1", 4318), metavar="HOST:PORT",
        help="OTLP/HTTP listener (POST /v1/metrics); default 127.0.0.1:4318",
    )  # fmt: skip
    parser.add_argument(
        "--grpc", type=parse_optional_address, default=("127.0.0.1", 4317),
        metavar="HOST:PORT|off",
        help="OTLP/gRPC listener (MetricsService/Export); default 127.0.0.1:4317, off: none",
    )  # fmt: skip
    parser.add_argument(
        "--metrics", type=parse_address, default=("127.0.0.1", 9464), metavar="HOST:PORT",
        help="scrape listener (/metrics, /api/slo); default 127.0.0.1:9464",
    )  # fmt: skip
    parser.add_argument(
        "--token-file", type=Path, default=None,
        help="file holding a bearer token required on /v1/metrics, /metrics, /api/slo and /",
    )  # fmt: skip
    parser.add_argument(
        "--stale-after", type=_positive(float), default=300.0, metavar="SECONDS",
        help="drop instances and series not updated for this long (default 300)",
    )  # fmt: skip
    parser.add_argument(
        "--max-series-per-metric", type=_positive(int), default=2000, metavar="N",
        help="cardinality limit per metric; further label sets go to an overflow series",
    )  # fmt: skip
    parser.add_argument(
        "--max-metrics", type=_positive(int), default=1000, metavar="N",
        help="distinct metrics kept (default 1000)",
    )  # fmt: skip
    parser.add_argument(
        "--max-body-bytes", type=_positive(int), default=8 * 1024 * 1024, metavar="BYTES",
        help="largest request body accepted (default 8 MiB)",
    )  # fmt: skip
    parser.add_argument(
        "--max-decompressed-bytes", type=_positive(int), default=8 * 1024 * 1024,
        metavar="BYTES", help="largest gzip-decompressed body (default 8 MiB)",
    )  # fmt: skip
    parser.add_argument(
        "--max-points-per-request", type=_positive(int), default=50_000,
        metavar="N", help="data points in one export request (default 50000; 413 beyond)",
    )  # fmt: skip
    parser.add_argument(
        "--max-series-per-workload", type=_positive(int), default=None, metavar="N",
        help="each spec workload's reserve of series per metric "
        "(default: the cardinality limit / (spec workloads + 1))",
    )  # fmt: skip
    parser.add_argument(
        "--max-label-value-length", type=_positive(int), default=1024, metavar="N",
        help="longer label values are cut to N characters, ending in a digest (default 1024)",
    )  # fmt: skip
    parser.add_argument(
        "--max-connections", type=_positive(int), default=None, metavar="N",
        help="open connections on the OTLP listener (default: descriptor limit minus 192)",
    )  # fmt: skip
    parser.add_argument(
        "--header-timeout", type=_positive(float), default=15.0, metavar="SECONDS",
        help="a request header must arrive within this long; also the idle keep-alive (15)",
    )  # fmt: skip
    parser.add_argument(
        "--body-timeout", type=_positive(float), default=30.0, metavar="SECONDS",
        help="a request body must arrive within this long (default 30; 408 beyond)",
    )  # fmt: skip
    parser.add_argument(
        "--state-file", type=Path, default=None, metavar="FILE",
        help="keep the merged series here (written every --state-interval and at shutdown, "
        "read at start) so that a restart loses nothing",
    )  # fmt: skip
    parser.add_argument(
        "--state-interval", type=_positive(float), default=10.0, metavar="SECONDS",
        help="how often the state file is written (default 10)",
    )  # fmt: skip
    parser.add_argument(
        "--shutdown-grace", type=_positive(float), default=5.0, metavar="SECONDS",
        help="on SIGTERM, exports in flight are answered for this long at most (default 5)",
    )  # fmt: skip
    parser.add_argument(
        "--prometheus", default=None, metavar="URL",
        help="the SLO page (GET /) lists this Prometheus' alerts instead of its own view",
    )  # fmt: skip


def config_from_args(args: argparse.Namespace) -> AgentConfig:
    """An AgentConfig from parsed flags (reads the token file; CommandError if it cannot)."""
    token = read_token_file(args.token_file) if args.token_file is not None else None
    return AgentConfig(
        otlp_host=args.otlp[0],
        otlp_port=args.otlp[1],
        metrics_host=args.metrics[0],
        metrics_port=args.metrics[1],
        grpc_host=args.grpc[0] if args.grpc else "127.0.0.1",
        grpc_port=args.grpc[1] if args.grpc else None,
        token=token,
        max_body_bytes=args.max_body_bytes,
        requests=RequestLimits(
            max_decompressed_bytes=args.max_decompressed_bytes,
            max_points=args.max_points_per_request,
        ),
        prometheus_url=args.prometheus,
        limits=StoreLimits(
            stale_after=args.stale_after,
            max_series_per_metric=args.max_series_per_metric,
            max_series_per_workload=args.max_series_per_workload,
            max_metrics=args.max_metrics,
            max_label_value_length=max(args.max_label_value_length, 32),
        ),
        max_connections=args.max_connections,
        header_timeout=args.header_timeout,
        body_timeout=args.body_timeout,
        body_idle_timeout=min(10.0, args.body_timeout),
        state_file=args.state_file,
        state_interval=args.state_interval,
        shutdown_grace=args.shutdown_grace,
    )


async def serve(agent: Agent) -> None:
    """Run ``agent`` until SIGTERM/SIGINT, then shut down gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await agent.start()
    try:
        await stop.wait()
        log.info("shutting down", signal="SIGTERM/SIGINT")
    finally:
        await agent.stop()


@reports_errors("agent")
def run(args: argparse.Namespace) -> int:
    """Entry point of ``gemini-slo agent``."""
    spec = load_spec_file(args.config)
    config = config_from_args(args)
    try:
        asyncio.run(serve(Agent(config, spec)))
    except OSError as exc:  # address in use, permission denied
        log.error("cannot listen", error=str(exc))
        return 1
    return 0
