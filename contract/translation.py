"""The OTLP-to-Prometheus name translation, exactly as opentelemetry-exporter-prometheus does it.

Two translators are in use for OpenTelemetry data and they agree on the project's own
signals and on most names:

* **opentelemetry-exporter-prometheus** (the Python SDK's ``PrometheusMetricReader``, and
  what an app's own ``/metrics`` on the OpenTelemetry SDK exposes): the name sanitized
  (runs of characters outside ``[a-zA-Z0-9:]`` become one ``_``, a leading digit becomes
  ``_``), the unit mapped (:data:`UNIT_MAP`, ``a/b`` -> ``a_per_b`` with
  :data:`PER_UNIT_MAP`, ``{annotations}`` dropped, ``1`` -> no suffix) and appended unless
  the name already ends with it, ``_total`` on monotonic counters.
* **Prometheus' otlptranslator** (its OTLP receiver, ``prometheus/otlptranslator``
  ``metric_namer.go``): the same maps, but the name is split into words (leading and
  trailing ``_`` dropped), a unit word already *anywhere* in the name is not appended, a
  ``total`` word anywhere moves to the end, gauges of unit ``1`` get ``_ratio``, a leading
  digit gets a ``_`` prefix, and a unit holding ``{...}`` is dropped whole.

The project follows the first, because the agent's exposition must read exactly like the
``/metrics`` of an app on the OpenTelemetry SDK (so the same rules work on either); the
cases where the second differs are listed in docs/official-instrumentation.md and tested
(tests/test_translation.py, against the real exporter and the otlptranslator rules).
"""

from __future__ import annotations

import re

__all__ = ["PER_UNIT_MAP", "UNIT_MAP", "prometheus_label", "prometheus_name", "prometheus_unit"]

#: OTel (UCUM) units -> Prometheus unit words; the map both translators share.
UNIT_MAP: dict[str, str] = {
    # Time
    "d": "days",
    "h": "hours",
    "min": "minutes",
    "s": "seconds",
    "ms": "milliseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
    # Bytes
    "By": "bytes",
    "KiBy": "kibibytes",
    "MiBy": "mebibytes",
    "GiBy": "gibibytes",
    "TiBy": "tibibytes",
    "KBy": "kilobytes",
    "MBy": "megabytes",
    "GBy": "gigabytes",
    "TBy": "terabytes",
    # SI
    "m": "meters",
    "V": "volts",
    "A": "amperes",
    "J": "joules",
    "W": "watts",
    "g": "grams",
    # Misc
    "Cel": "celsius",
    "Hz": "hertz",
    "1": "",  # dimensionless: no suffix (otlptranslator adds _ratio to gauges only)
    "%": "percent",
}
#: The denominator of ``a/b`` units: ``By/s`` -> ``bytes_per_second``.
PER_UNIT_MAP: dict[str, str] = {
    "s": "second",
    "m": "minute",
    "h": "hour",
    "d": "day",
    "w": "week",
    "mo": "month",
    "y": "year",
}

_NAME_INVALID = re.compile(r"[^a-zA-Z0-9:]+")
_LABEL_INVALID = re.compile(r"[^a-zA-Z0-9]+")
_ANNOTATION = re.compile(r"{.*}")
#: Kind values (contract.signals.Kind, a StrEnum) that change the name.
_COUNTER = "counter"


def _sanitize(name: str) -> str:
    return _NAME_INVALID.sub("_", name)


def prometheus_unit(unit: str) -> str:
    """The Prometheus unit word of an OTel unit (``""`` for none): ``By/s`` -> ``bytes_per_second``."""
    unit = _ANNOTATION.sub("", unit)
    if unit in UNIT_MAP:
        return UNIT_MAP[unit]
    top, slash, bottom = unit.partition("/")
    if slash:
        bottom = _sanitize(bottom)
        if bottom:
            top = _sanitize(top)
            top = UNIT_MAP.get(top, top)
            bottom = PER_UNIT_MAP.get(bottom, bottom)
            return f"{top}_per_{bottom}" if top else f"per_{bottom}"
    # A unit ends up as a name suffix: sanitized, without surrounding "_".
    return _sanitize(unit).strip("_")


def prometheus_name(name: str, unit: str, kind: str) -> str:
    """The Prometheus name of an OTel metric (``kind``: a ``contract.signals.Kind``).

    >>> prometheus_name("gen_ai.client.operation.duration", "s", "histogram")
    'gen_ai_client_operation_duration_seconds'
    >>> prometheus_name("gemini_slo.client.tokens", "{token}", "counter")
    'gemini_slo_client_tokens_total'
    >>> prometheus_name("net.io", "By/s", "gauge")
    'net_io_bytes_per_second'
    """
    if name[:1].isdigit():
        name = "_" + name[1:]  # as the exporter does: the digit is replaced, not prefixed
    base = _sanitize(name)
    counter = kind == _COUNTER
    if counter:
        base = base.removesuffix("_total")  # prometheus_client re-adds it after the unit
    suffix = prometheus_unit(unit)
    if suffix and not base.endswith("_" + suffix):
        base = f"{base}_{suffix}"
    return f"{base}_total" if counter else base


def prometheus_label(attribute: str) -> str:
    """The Prometheus label name of an attribute key (``gen_ai.x`` -> ``gen_ai_x``).

    Runs of characters outside ``[a-zA-Z0-9]`` become one ``_``; a leading digit becomes
    ``_``. The agent adds its own guards for what is still not a usable label
    (``agent/labels.label_name``).
    """
    if attribute[:1].isdigit():
        attribute = "_" + attribute[1:]
    return _LABEL_INVALID.sub("_", attribute)
