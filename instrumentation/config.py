"""``configure()``: where the recorded signals go, and the process-wide switches.

Nothing leaves the process until ``configure()`` is called: ``observe`` and ``instrument``
record into the in-process registry either way (so tests and ``testing.capture()`` work
without it).

Resolution of every setting: the argument, else the environment variable, else the default.

=================  ============================================  ==========================
setting            environment                                   default
=================  ============================================  ==========================
service_name       ``OTEL_SERVICE_NAME``                         ``"gemini-app"``
endpoint           ``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`` (full  ``http://127.0.0.1:4318``
                   URL), ``OTEL_EXPORTER_OTLP_ENDPOINT`` (base)
prometheus_port    ``GEMINI_SLO_PROMETHEUS_PORT``                None (no /metrics)
prometheus_host    (none)                                        ``127.0.0.1``
export_interval    ``GEMINI_SLO_EXPORT_INTERVAL`` (seconds)      5.0
spec               ``GEMINI_SLO_SPEC`` (path to slo.yaml)         None
capture_content    ``GEMINI_SLO_CAPTURE_CONTENT``                False
log_calls          ``GEMINI_SLO_LOG_CALLS``                      False
pricing            ``GEMINI_SLO_PRICING`` (override file)         the shipped table
max_series         ``GEMINI_SLO_MAX_SERIES``                     2000 (the SDK's limit)
exit_timeout       ``GEMINI_SLO_EXIT_TIMEOUT`` (seconds)         5.0
(kill switch)      ``GEMINI_SLO_DISABLED``                       off
=================  ============================================  ==========================

With ``prometheus_port`` the app serves its own ``/metrics`` and, unless an endpoint is
given explicitly (argument or environment), no OTLP export runs: that is the no-agent setup.
``otlp=False`` turns the OTLP export off in any case.

Idempotent: a call with the same resolved settings as the active ones does nothing; a call
with different ones stops the old exporters (after a last export) and starts new ones.
"""

from __future__ import annotations

import atexit
import os
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gemini_slo.contract import signals as S
from gemini_slo.contract.otlp_limits import CARDINALITY_LIMIT
from gemini_slo.contract.spec import load_spec
from gemini_slo.instrumentation import _state
from gemini_slo.instrumentation._registry import Registry
from gemini_slo.instrumentation._values import Thresholds
from gemini_slo.instrumentation.pricing import load_table, set_active_table

if TYPE_CHECKING:
    from gemini_slo.instrumentation._export_otlp import OtlpExporter
    from gemini_slo.instrumentation._export_prometheus import PrometheusServer

DEFAULT_ENDPOINT = "http://127.0.0.1:4318"
DEFAULT_SERVICE_NAME = "gemini-app"
DEFAULT_EXIT_TIMEOUT = 5.0
"""Seconds the final export at exit may be retried while the agent does not take it."""
RECONFIGURE_TIMEOUT = 1.0
"""At most this long for the old exporter's last export when configure() replaces it."""
INSTANCE_ID = str(uuid.uuid4())
"""``service.instance.id`` of this process (Prometheus ``instance`` behind the agent)."""


@dataclass(frozen=True, slots=True)
class Settings:
    """The resolved configuration (what ``configure()`` compares to be idempotent)."""

    service_name: str
    endpoint: str | None
    """Full OTLP/HTTP metrics URL (``.../v1/metrics``), or None: no OTLP export."""
    prometheus_port: int | None
    prometheus_host: str
    export_interval: float
    spec: str | None
    thresholds: tuple[tuple[str, tuple[float, ...]], ...]
    capture_content: bool
    log_calls: bool
    pricing: str | None
    disabled: bool
    max_series: int = CARDINALITY_LIMIT
    """Distinct call attribute sets kept apart; further ones fold into overflow series."""
    exit_timeout: float = DEFAULT_EXIT_TIMEOUT
    """At exit, how long the last export is retried before one warning and giving up."""


class _Runtime:
    """The exporters started for one Settings."""

    def __init__(self, settings: Settings, registry: Registry) -> None:
        self.settings = settings
        self.otlp: OtlpExporter | None = None
        self.prometheus: PrometheusServer | None = None
        if settings.disabled:
            return
        # Imported here: the exporters' dependencies cost ~50 ms of import time that an app
        # which never calls configure() (or only records for tests) should not pay.
        from gemini_slo.instrumentation._export_otlp import OtlpExporter
        from gemini_slo.instrumentation._export_prometheus import PrometheusServer
        from opentelemetry.sdk.resources import Resource

        if settings.endpoint is not None:
            resource = Resource.create(
                {
                    S.RESOURCE_SERVICE_NAME: settings.service_name,
                    S.RESOURCE_SERVICE_INSTANCE: INSTANCE_ID,
                }
            )
            self.otlp = OtlpExporter(
                registry,
                settings.endpoint,
                resource,
                interval=settings.export_interval,
                exit_timeout=settings.exit_timeout,
            )
        if settings.prometheus_port is not None:
            self.prometheus = PrometheusServer(
                registry, settings.prometheus_port, settings.prometheus_host
            )

    def stop(self, replaced: bool = False) -> None:
        """``replaced``: a new configuration takes over the registry, whose cumulative state
        its exporter will send: the last export gets at most RECONFIGURE_TIMEOUT and no
        warning, so that configure() never blocks for the exit deadline."""
        if self.otlp is not None:
            if replaced:
                self.otlp.shutdown(min(RECONFIGURE_TIMEOUT, self.settings.exit_timeout), warn=False)
            else:
                self.otlp.shutdown()
        if self.prometheus is not None:
            self.prometheus.shutdown()


_lock = threading.Lock()
_runtime: _Runtime | None = None
_atexit_registered = False


def _metrics_url(base: str) -> str:
    base = base.rstrip("/")
    return base if base.endswith("/v1/metrics") else f"{base}/v1/metrics"


def _resolve_endpoint(endpoint: str | None, prometheus_port: int | None, otlp: bool) -> str | None:
    if not otlp:
        return None
    if endpoint is not None:
        return _metrics_url(endpoint)
    if os.environ.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"):
        return os.environ["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"]
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return _metrics_url(os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"])
    if prometheus_port is not None:
        return None  # the no-agent setup
    return _metrics_url(DEFAULT_ENDPOINT)


def _flag(value: bool | None, env: str) -> bool:
    return _state.env_flag(env) if value is None else value


def _number(value: float | None, env: str, default: float) -> float:
    """The argument, else the environment variable (a clear error if it is no number)."""
    if value is not None:
        return value
    raw = os.environ.get(env, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{env}={raw!r} is not a number") from None


def resolve(
    *,
    service_name: str | None = None,
    endpoint: str | None = None,
    prometheus_port: int | None = None,
    prometheus_host: str = "127.0.0.1",
    export_interval: float | None = None,
    spec: str | Path | None = None,
    thresholds: Mapping[str, Sequence[float]] | None = None,
    capture_content: bool | None = None,
    log_calls: bool | None = None,
    pricing: str | Path | None = None,
    otlp: bool = True,
    max_series: int | None = None,
    exit_timeout: float | None = None,
) -> Settings:
    """The settings ``configure()`` would apply for these arguments and the environment."""
    if prometheus_port is None and os.environ.get("GEMINI_SLO_PROMETHEUS_PORT"):
        prometheus_port = int(os.environ["GEMINI_SLO_PROMETHEUS_PORT"])
    if export_interval is None:
        export_interval = float(os.environ.get("GEMINI_SLO_EXPORT_INTERVAL") or 5.0)
    if export_interval <= 0:
        raise ValueError("export_interval must be > 0")
    series_limit = _number(max_series, "GEMINI_SLO_MAX_SERIES", CARDINALITY_LIMIT)
    if series_limit < 1 or series_limit != int(series_limit):
        raise ValueError(f"max_series must be a whole number >= 1, not {series_limit}")
    exit_deadline = _number(exit_timeout, "GEMINI_SLO_EXIT_TIMEOUT", DEFAULT_EXIT_TIMEOUT)
    if not exit_deadline >= 0:  # NaN too
        raise ValueError(f"exit_timeout must be >= 0 seconds, not {exit_deadline}")
    spec_path = str(spec) if spec is not None else (os.environ.get("GEMINI_SLO_SPEC") or None)
    pricing_path = (
        str(pricing) if pricing is not None else (os.environ.get("GEMINI_SLO_PRICING") or None)
    )
    return Settings(
        service_name=service_name or os.environ.get("OTEL_SERVICE_NAME") or DEFAULT_SERVICE_NAME,
        endpoint=_resolve_endpoint(endpoint, prometheus_port, otlp),
        prometheus_port=prometheus_port,
        prometheus_host=prometheus_host,
        export_interval=float(export_interval),
        spec=spec_path,
        thresholds=tuple(
            sorted((w, tuple(sorted(float(v) for v in vs))) for w, vs in (thresholds or {}).items())
        ),
        capture_content=_flag(capture_content, "GEMINI_SLO_CAPTURE_CONTENT"),
        log_calls=_flag(log_calls, "GEMINI_SLO_LOG_CALLS"),
        pricing=pricing_path,
        disabled=_state.env_flag("GEMINI_SLO_DISABLED"),
        max_series=int(series_limit),
        exit_timeout=float(exit_deadline),
    )


def configure(
    *,
    service_name: str | None = None,
    endpoint: str | None = None,
    prometheus_port: int | None = None,
    prometheus_host: str = "127.0.0.1",
    export_interval: float | None = None,
    spec: str | Path | None = None,
    thresholds: Mapping[str, Sequence[float]] | None = None,
    capture_content: bool | None = None,
    log_calls: bool | None = None,
    pricing: str | Path | None = None,
    otlp: bool = True,
    max_series: int | None = None,
    exit_timeout: float | None = None,
) -> Settings:
    """Set up export (OTLP to the agent by default, or ``/metrics`` with ``prometheus_port``).

    ``spec``: an ``slo.yaml`` whose latency/TTFT thresholds become bucket boundaries;
    ``thresholds``: the same as ``{workload: [seconds, ...]}``, without a spec file;
    ``capture_content``: allow prompt/response text in per-call log events; ``log_calls``:
    one structlog event per call; ``pricing``: a price file overriding the shipped table;
    ``max_series``: the cardinality limit (distinct call attribute sets before overflow);
    ``exit_timeout``: how long the last export at exit is retried (seconds).
    Returns the resolved settings. See the module docstring for the environment variables.
    """
    global _runtime, _atexit_registered
    settings = resolve(
        service_name=service_name,
        endpoint=endpoint,
        prometheus_port=prometheus_port,
        prometheus_host=prometheus_host,
        export_interval=export_interval,
        spec=spec,
        thresholds=thresholds,
        capture_content=capture_content,
        log_calls=log_calls,
        pricing=pricing,
        otlp=otlp,
        max_series=max_series,
        exit_timeout=exit_timeout,
    )
    with _lock:
        if _runtime is not None and _runtime.settings == settings:
            return settings
        registry = _state.default_registry
        previous = _runtime.settings if _runtime is not None else None
        if _runtime is not None:
            _runtime.stop(replaced=True)
            _runtime = None
        _state.enabled = not settings.disabled
        _state.log_calls = settings.log_calls
        _state.capture_content = settings.capture_content
        registry.max_series = settings.max_series
        if previous is None or previous.pricing != settings.pricing:
            set_active_table(load_table(settings.pricing))
        new_thresholds = _thresholds(settings)
        if new_thresholds != registry.thresholds:
            registry.set_thresholds(new_thresholds)
        _runtime = _Runtime(settings, registry)
        if not _atexit_registered:
            atexit.register(shutdown)
            _atexit_registered = True
    return settings


def _thresholds(settings: Settings) -> Thresholds:
    """The union of ``thresholds=`` and the spec's; a bad spec raises SpecError here."""
    thresholds = Thresholds.from_mapping(dict(settings.thresholds))
    if settings.spec:
        thresholds = thresholds.union(Thresholds.from_spec(load_spec(settings.spec)))
    return thresholds


def flush() -> bool:
    """Export now (OTLP); True if there was nothing to do or the export succeeded."""
    runtime = _runtime
    if runtime is None or runtime.otlp is None:
        return True
    return runtime.otlp.flush()


def shutdown() -> None:
    """Stop exporting, after a last export retried for at most ``exit_timeout`` seconds
    (also run at exit); if it was not delivered, one warning with the calls lost."""
    global _runtime
    with _lock:
        runtime, _runtime = _runtime, None
    if runtime is not None:
        runtime.stop()


def active_settings() -> Settings | None:
    """The settings of the running configuration, if any."""
    runtime = _runtime
    return runtime.settings if runtime is not None else None


def prometheus_port() -> int | None:
    """The port the ``/metrics`` server really listens on (useful with port 0)."""
    runtime = _runtime
    return (
        runtime.prometheus.port if runtime is not None and runtime.prometheus is not None else None
    )
