"""Workload selectors: which foreign series belong to a workload of the spec.

Series sent by the project's own instrumentation carry ``gemini_slo.workload`` and
``gemini_slo.mode``. Series sent by another OpenTelemetry GenAI emitter (the official
``opentelemetry-instrumentation-google-genai``, say) carry neither; a workload's
``select:`` list says which of them are its own, by resource attributes
(``service.name``, ``service.namespace``, ``deployment.environment``, ...) and by data-point
attributes (``gen_ai.request.model``, ``gen_ai.operation.name``, ``server.address``, ...)::

    workloads:
      - name: chat
        mode: latency
        select:
          - resource: {service.name: chat-api, deployment.environment: prod}
          - resource: {service.name: chat-worker}
            attributes: {gen_ai.request.model: gemini-2.5-flash}

A selector matches when every attribute it names has exactly that value (both maps are
ANDed); a workload matches when one of its selectors does; the first matching workload,
in spec order, wins. Series that already carry a workload are never relabelled, and
foreign series no selector matches keep flowing without a workload label (docs/slo-spec.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from gemini_slo.contract._spec_yaml import Field

__all__ = ["Selector", "parse_selectors"]

#: An OpenTelemetry attribute key: dotted lowercase words (the semantic conventions' form),
#: letters, digits, ``_`` and ``-`` allowed in a word.
_ATTRIBUTE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*")
#: Attributes that decide a workload themselves: selecting on them would be circular.
_OWN_KEYS = frozenset({"gemini_slo.workload", "gemini_slo.mode"})

Attributes = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Selector:
    """One ``select:`` item: exact values of resource and of data-point attributes."""

    resource: Attributes = ()
    attributes: Attributes = ()

    def matches(self, resource: Mapping[str, str], attributes: Mapping[str, str]) -> bool:
        """True when every resource and data-point attribute named has exactly its value."""
        return all(resource.get(k) == v for k, v in self.resource) and all(
            attributes.get(k) == v for k, v in self.attributes
        )


def _attributes(f: Field) -> Attributes:
    out: list[tuple[str, str]] = []
    items = f.string_mapping()
    if not items:
        f.fail("expected at least one attribute")
    for key, value in items.items():
        if not _ATTRIBUTE_KEY.fullmatch(key):
            value.fail("not an attribute key like 'service.name' or 'gen_ai.request.model'")
        if key in _OWN_KEYS:
            value.fail("series that carry this attribute are never relabelled; select on others")
        scalar = value.scalar()
        if isinstance(scalar, bool) or not isinstance(scalar, str | int | float):
            value.fail(f"expected a string attribute value, got {scalar!r}")
        out.append((key, str(scalar)))
    return tuple(sorted(out))


def parse_selectors(f: Field) -> tuple[Selector, ...]:
    """A workload's ``select:`` list; errors name file, line and field like the spec's."""
    out: list[Selector] = []
    seen: dict[Selector, Field] = {}
    items = f.sequence()
    if not items:
        f.fail("expected at least one selector (or leave 'select' out)")
    for item in items:
        fields = item.mapping(("resource", "attributes"))
        if not fields:
            item.fail("a selector needs 'resource', 'attributes' or both")
        selector = Selector(
            resource=_attributes(fields["resource"]) if "resource" in fields else (),
            attributes=_attributes(fields["attributes"]) if "attributes" in fields else (),
        )
        if selector in seen:
            item.fail(f"duplicate selector (first on line {seen[selector].line})")
        seen[selector] = item
        out.append(selector)
    return tuple(out)
