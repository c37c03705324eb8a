"""OTLP attributes to Prometheus labels, the way the standard translation does it.

Keys: :func:`signals.prometheus_label` (invalid characters to ``_``), a leading digit gets a
``key_`` prefix, the reserved ``__`` prefix becomes ``key__``, and ``le`` (which would
clash with histogram buckets) becomes ``exported_le``. Two keys that translate to the
same label have their values joined with ``;`` (sorted by original key), as the
OpenTelemetry Collector does. Values: strings as they are, booleans ``true``/``false``,
numbers in their shortest form, arrays and maps as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from gemini_slo.contract import signals
from google.protobuf import json_format


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


def value_string(value: Any) -> str:
    """An OTLP AnyValue as a label value."""
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
    return json.dumps(json_format.MessageToDict(value), sort_keys=True, separators=(",", ":"))


class LabelTranslator:
    """Translates attribute lists to sorted label tuples.

    The hot path of ingest: the raw ``(key, value)`` pairs are read with as few protobuf
    accessor calls as possible, and their translation is cached (bounded) by the raw
    tuple, so a series seen before costs one dict lookup.
    """

    __slots__ = ("_cache", "max_cached")

    def __init__(self, max_cached: int = 20_000) -> None:
        self._cache: dict[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]] = {}
        self.max_cached = max_cached

    def translate(self, attributes: Iterable[Any]) -> tuple[tuple[str, str], ...]:
        """Sorted ``((label, value), ...)`` for a data point's attributes."""
        items = []
        for kv in attributes:
            v = kv.value
            text = v.string_value
            if not text and v.WhichOneof("value") != "string_value":
                text = value_string(v)
            items.append((kv.key, text))
        raw = tuple(items)
        cached = self._cache.get(raw)
        if cached is not None:
            return cached
        result = _translate(raw)
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
