"""Typed access to a YAML node tree that keeps line numbers, for the slo.yaml loader.

``yaml.safe_load`` throws line numbers away; ``yaml.compose`` keeps them on every node.
:class:`Field` wraps one node with its field path (``workloads[0].objectives.latency[1]``)
so that every validation error can say where it is: ``slo.yaml:12: <path>: <problem>``.
This module only knows YAML and value syntax (durations, ratios); what the fields mean is
in :mod:`gemini_slo.contract.spec`.
"""

from __future__ import annotations

import math
import re
from typing import NoReturn

import yaml
from gemini_slo.contract.durations import parse_duration


class SpecError(ValueError):
    """An invalid SLO spec; the message names the file, the line and the field path.

    ``line`` is 1-based (0 when unknown); ``path`` is the dotted field path, e.g.
    ``workloads[0].objectives.latency[1].threshold`` ("" for the document itself).
    """

    def __init__(self, source: str, line: int, path: str, message: str) -> None:
        self.source = source
        self.line = line
        self.path = path
        self.message = message
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: {path}: {message}" if path else f"{where}: {message}")


_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")

# One loader instance to turn scalar nodes into Python values with YAML 1.1's safe rules
# (so ``0.5`` is a float, ``10000`` an int, ``yes`` a bool) without losing the node.
_SCALARS = yaml.SafeLoader("")


def _describe(value: object) -> str:
    return repr(value) if isinstance(value, str) else f"{value!r} ({type(value).__name__})"


class Field:
    """One node of the spec and where it is; accessors validate and convert its value."""

    __slots__ = ("node", "path", "source")

    def __init__(self, node: yaml.Node, path: str, source: str) -> None:
        self.node = node
        self.path = path
        self.source = source

    @property
    def line(self) -> int:
        """1-based line of the node's start."""
        return int(self.node.start_mark.line) + 1

    def fail(self, message: str) -> NoReturn:
        """Raise a :class:`SpecError` located at this field."""
        raise SpecError(self.source, self.line, self.path, message)

    def _child(self, node: yaml.Node, suffix: str) -> Field:
        return Field(node, f"{self.path}{suffix}" if self.path else suffix.lstrip("."), self.source)

    # ---- structure ------------------------------------------------------------------

    def is_mapping(self) -> bool:
        """True when the node is a mapping."""
        return isinstance(self.node, yaml.MappingNode)

    def is_sequence(self) -> bool:
        """True when the node is a sequence."""
        return isinstance(self.node, yaml.SequenceNode)

    def mapping(self, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> dict[str, Field]:
        """The node as a mapping of known keys; unknown, duplicate or missing keys fail."""
        if not isinstance(self.node, yaml.MappingNode):
            self.fail(f"expected a mapping with keys {', '.join(allowed)}, got {self._kind()}")
        fields: dict[str, Field] = {}
        for key_node, value_node in self.node.value:
            key = self._key(key_node)
            child = self._child(value_node, f".{key}")
            if key not in allowed:
                Field(key_node, child.path, self.source).fail(
                    f"unknown field (allowed here: {', '.join(allowed)})"
                )
            if key in fields:
                Field(key_node, child.path, self.source).fail(
                    f"duplicate field (first given on line {fields[key].line})"
                )
            fields[key] = child
        for key in required:
            if key not in fields:
                self.fail(f"missing required field {key!r}")
        return fields

    def string_mapping(self) -> dict[str, Field]:
        """A mapping with free-form keys (labels); duplicate keys fail."""
        if not isinstance(self.node, yaml.MappingNode):
            self.fail(f"expected a mapping, got {self._kind()}")
        fields: dict[str, Field] = {}
        for key_node, value_node in self.node.value:
            key = self._key(key_node)
            if key in fields:
                Field(key_node, f"{self.path}.{key}", self.source).fail("duplicate key")
            fields[key] = self._child(value_node, f".{key}")
        return fields

    def sequence(self) -> list[Field]:
        """The node's items; a sequence is required."""
        if not isinstance(self.node, yaml.SequenceNode):
            self.fail(f"expected a list, got {self._kind()}")
        return [self._child(item, f"[{i}]") for i, item in enumerate(self.node.value)]

    def _key(self, key_node: yaml.Node) -> str:
        if not isinstance(key_node, yaml.ScalarNode):
            Field(key_node, self.path, self.source).fail("mapping keys must be plain strings")
        return str(key_node.value)

    def _kind(self) -> str:
        if isinstance(self.node, yaml.MappingNode):
            return "a mapping"
        if isinstance(self.node, yaml.SequenceNode):
            return "a list"
        return _describe(self.scalar())

    # ---- scalars --------------------------------------------------------------------

    def scalar(self) -> object:
        """The node's Python value under YAML's safe rules; collections fail."""
        if not isinstance(self.node, yaml.ScalarNode):
            self.fail(f"expected a single value, got {self._kind()}")
        return _SCALARS.construct_object(self.node)

    def string(self, pattern: re.Pattern[str] | None = None, what: str = "") -> str:
        """A string value, optionally matching ``pattern`` (``what`` describes it)."""
        value = self.scalar()
        if not isinstance(value, str) or not value:
            self.fail(f"expected {what or 'a non-empty string'}, got {_describe(value)}")
        if pattern is not None and not pattern.fullmatch(value):
            self.fail(f"expected {what}, got {value!r}")
        return value

    def number(self) -> float:
        """A finite int or float."""
        value = self.scalar()
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(f"expected a number, got {_describe(value)}")
        if not math.isfinite(value):
            self.fail(f"expected a finite number, got {value!r}")
        return float(value)

    def positive_number(self) -> float:
        """A number > 0."""
        value = self.number()
        if value <= 0:
            self.fail(f"expected a number > 0, got {value:g}")
        return value

    def duration(self) -> float:
        """A duration like ``500ms``, ``2s``, ``5m``, ``1h``, ``30d``, in seconds (> 0)."""
        value = self.scalar()
        try:
            seconds = parse_duration(value) if isinstance(value, str) else None
        except ValueError:
            seconds = None
        if seconds is None:
            self.fail(f"expected a duration like '500ms', '2s' or '5m', got {_describe(value)}")
        if seconds <= 0:
            self.fail(f"expected a duration > 0, got {value!r}")
        return seconds

    def ratio(self) -> float:
        """A fraction strictly between 0 and 1: ``'99.5%'`` or ``0.995``."""
        value = self.scalar()
        if isinstance(value, str):
            match = _PERCENT.match(value)
            if match is None:
                self.fail(
                    f"expected a percentage like '99.5%' or a ratio like 0.995, got {value!r}"
                )
            ratio = round(float(match.group(1)) / 100.0, 12)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            ratio = float(value)
        else:
            self.fail(
                f"expected a percentage like '99.5%' or a ratio like 0.995, got {_describe(value)}"
            )
        if not 0.0 < ratio < 1.0:
            self.fail(f"expected a ratio strictly between 0 and 1 (0% and 100%), got {value!r}")
        return ratio

    def percentile(self) -> float:
        """A percentile written ``95``, ``99.9`` or ``'95%'``, returned as a ratio (0.95)."""
        value = self.scalar()
        if isinstance(value, str):
            match = _PERCENT.match(value)
            if match is None:
                self.fail(f"expected a percentile like 95 or 99.9, got {value!r}")
            number = float(match.group(1))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        else:
            self.fail(f"expected a percentile like 95 or 99.9, got {_describe(value)}")
        if not 0.0 < number < 100.0:
            self.fail(f"expected a percentile strictly between 0 and 100, got {value!r}")
        return round(number / 100.0, 12)


def compose(text: str, source: str) -> Field:
    """Parse one YAML document into a :class:`Field` tree; syntax errors become SpecError."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = int(mark.line) + 1 if mark is not None else 0
        raise SpecError(source, line, "", f"invalid YAML: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise SpecError(source, 0, "", f"invalid YAML: {exc}") from exc
    if node is None:
        raise SpecError(source, 1, "", "the spec is empty")
    return Field(node, "", source)
