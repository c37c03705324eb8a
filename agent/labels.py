"""OTLP attributes to Prometheus labels, the way the standard translation does it.

Keys: :func:`signals.prometheus_label`, as opentelemetry-exporter-prometheus does it (runs
of invalid characters to one ``_``, a leading digit replaced by ``_``); an empty result
becomes ``key_``, and ``le`` (which would clash with histogram buckets) becomes
``exported_le``. Two keys that translate to the
same label have their values joined with ``;`` (sorted by original key), as the
OpenTelemetry Collector does. Values: strings as they are, booleans ``true``/``false``,
numbers in their shortest form, arrays and maps as JSON.

Lengths are bounded (:func:`bounded`): a name or value longer than its limit keeps its
first characters and ends with ``_`` and 16 hex digits of its SHA-256, exactly at the
limit, so that two long values stay two series. Prometheus sets no limit of its own;
Grafana Mimir refuses names over 1,024 and values over 2,048 characters. The defaults
here, 256 and 1,024, are far above every label of the contract (under 100 characters)
and keep a full family (2,000 series of 8 labels) under 17 MB of label text.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from gemini_slo.contract import signals
from google.protobuf import json_format

MAX_NAME_LENGTH = 256
MAX_VALUE_LENGTH = 1024
#: Attributes kept on one point (the OpenTelemetry SDK's default attribute count limit,
#: and as the SDK does, the ones beyond it are dropped); a resource or scope with more is
#: refused whole (gemini_slo.agent.otlp_decode).
MAX_ATTRIBUTES = 128
_DIGEST = 16  # hex digits of SHA-256 kept at the end of a cut text


def bounded(text: str, limit: int) -> str:
    """``text`` when it fits in ``limit`` characters, else its head, ``_`` and a digest."""
    if len(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:_DIGEST]
    return f"{text[: max(limit - _DIGEST - 1, 0)]}_{digest}"


def label_name(key: str) -> str:
    """The Prometheus label name for an attribute key."""
    name = signals.prometheus_label(key)
    if not name:
        return "key_"
    if name[0].isdigit():
        return "key_" + name
    if name.startswith("__"):
        return "key" + name
    if name == "le":
        return "exported_le"
    return name


def value_string(value: Any, max_length: int = MAX_VALUE_LENGTH) -> str:
    """An OTLP AnyValue as a label value (an array or map far over ``max_length`` is not
    turned into JSON at all: its size and a digest of its bytes stand for it)."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return str(value.string_value)
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "int_value":
        return str(value.int_value)
    if kind == "double_value":
        return repr(value.double_value)
    if kind is None:
        return ""
    if kind == "bytes_value":
        return str(value.bytes_value.hex())
    size = value.ByteSize()
    if size > 4 * max_length:
        # Converting a huge array to JSON would cost more than the rest of the request.
        digest = hashlib.sha256(value.SerializeToString()).hexdigest()[:_DIGEST]
        return f"({kind} of {size} bytes)_{digest}"
    return json.dumps(json_format.MessageToDict(value), sort_keys=True, separators=(",", ":"))


class LabelTranslator:
    """Translates attribute lists to sorted label tuples, names and values bounded.

    The hot path of ingest: the raw ``(key, value)`` pairs are read with as few protobuf
    accessor calls as possible, and their translation is cached (bounded) by the raw
    tuple, so a series seen before costs one dict lookup. A label set that had to be cut
    is not cached (its raw key would hold the long text) and counts in ``truncated``, as
    does a point whose attributes beyond :data:`MAX_ATTRIBUTES` were dropped.
    """

    __slots__ = ("_cache", "max_cached", "max_name", "max_value", "truncated")

    def __init__(
        self,
        max_cached: int = 20_000,
        *,
        max_name: int = MAX_NAME_LENGTH,
        max_value: int = MAX_VALUE_LENGTH,
    ) -> None:
        self._cache: dict[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]] = {}
        self.max_cached = max_cached
        self.max_name = max_name
        self.max_value = max_value
        self.truncated = 0  # label sets cut to the limits (each time it was translated)

    def translate(self, attributes: Sequence[Any]) -> tuple[tuple[str, str], ...]:
        """Sorted ``((label, value), ...)`` for a data point's attributes."""
        if len(attributes) > MAX_ATTRIBUTES:
            self.truncated += 1
            attributes = attributes[:MAX_ATTRIBUTES]
        items = []
        for kv in attributes:
            v = kv.value
            text = v.string_value
            if not text and v.WhichOneof("value") != "string_value":
                text = value_string(v, self.max_value)
            items.append((kv.key, text))
        raw = tuple(items)
        cached = self._cache.get(raw)
        if cached is not None:
            return cached
        result = _translate(raw)
        max_name, max_value = self.max_name, self.max_value
        if any(len(k) > max_name or len(v) > max_value for k, v in result):
            self.truncated += 1
            return tuple(sorted((bounded(k, max_name), bounded(v, max_value)) for k, v in result))
        if len(self._cache) >= self.max_cached:
            self._cache.clear()  # a burst of new label sets: start over rather than grow
        self._cache[raw] = result
        return result


def _translate(raw: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    out: dict[str, str] = {}
    collided = False
    for key, value in raw:
        name = label_name(key)
        if name in out:
            collided = True
        out[name] = value
    if not collided:
        return tuple(sorted(out.items()))
    grouped: dict[str, list[tuple[str, str]]] = {}
    for key, value in raw:
        grouped.setdefault(label_name(key), []).append((key, value))
    return tuple(
        sorted((name, ";".join(v for _, v in sorted(pairs))) for name, pairs in grouped.items())
    )
