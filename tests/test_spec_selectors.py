"""Workload selectors in slo.yaml: parsed in order, first match wins, bad ones named by line."""

from __future__ import annotations

import pytest
from gemini_slo.contract.selectors import Selector
from gemini_slo.contract.spec import SpecError, parse_spec

SPEC = """\
version: gemini-slo/v1
workloads:
  - name: chat
    mode: latency
    select:
      - resource: {service.name: chat-api, deployment.environment: prod}
      - resource: {service.name: shared}
        attributes: {gen_ai.request.model: gemini-2.5-flash}
  - name: batch
    mode: throughput
    select:
      - resource: {service.name: shared}
      - attributes: {server.address: batch.example.com}
  - name: plain
    mode: latency
"""


def test_selectors_parse_in_spec_order() -> None:
    """Each workload keeps its selectors in order, attributes sorted, values as strings."""
    spec = parse_spec(SPEC)
    chat, batch, plain = spec.workloads
    assert chat.selectors == (
        Selector(resource=(("deployment.environment", "prod"), ("service.name", "chat-api"))),
        Selector(
            resource=(("service.name", "shared"),),
            attributes=(("gen_ai.request.model", "gemini-2.5-flash"),),
        ),
    )
    assert batch.selectors[1] == Selector(attributes=(("server.address", "batch.example.com"),))
    assert plain.selectors == ()


@pytest.mark.parametrize(
    ("resource", "attributes", "expected"),
    [
        ({"service.name": "chat-api", "deployment.environment": "prod"}, {}, "chat"),
        # One resource attribute of the selector missing: no match.
        ({"service.name": "chat-api"}, {}, None),
        # chat's second selector needs the model too; batch's first takes the rest of "shared".
        ({"service.name": "shared"}, {"gen_ai.request.model": "gemini-2.5-flash"}, "chat"),
        ({"service.name": "shared"}, {"gen_ai.request.model": "gemini-2.5-pro"}, "batch"),
        ({"service.name": "other"}, {"server.address": "batch.example.com"}, "batch"),
        ({"service.name": "other"}, {"server.address": "elsewhere"}, None),
    ],
)
def test_first_match_wins(
    resource: dict[str, str], attributes: dict[str, str], expected: str | None
) -> None:
    """match_workload walks workloads in spec order and returns the first that matches."""
    found = parse_spec(SPEC).match_workload(resource, attributes)
    assert (found.name if found else None) == expected


@pytest.mark.parametrize(
    ("old", "new", "line", "path", "message"),
    [
        ("      - resource: {service.name: chat-api, deployment.environment: prod}\n",
         "      - {}\n", 6, "workloads[0].select[0]", "needs 'resource', 'attributes' or both"),
        ("{service.name: chat-api, deployment.environment: prod}", "{}", 6,
         "workloads[0].select[0].resource", "at least one attribute"),
        ("deployment.environment: prod", "deployment.environment: [prod]", 6,
         "workloads[0].select[0].resource.deployment.environment", "expected a single value"),
        ("deployment.environment: prod", "gemini_slo.workload: chat", 6,
         "workloads[0].select[0].resource.gemini_slo.workload", "never relabelled"),
        ("deployment.environment: prod", "'bad key': prod", 6,
         "workloads[0].select[0].resource.bad key", "not an attribute key"),
        ("      - resource: {service.name: chat-api, deployment.environment: prod}\n",
         "      - labels: {service.name: chat-api}\n", 6, "workloads[0].select[0].labels",
         "unknown field"),
        ("    select:\n      - resource: {service.name: shared}\n",
         "    select:\n      - resource: {service.name: shared}\n        attributes: "
         "{gen_ai.request.model: gemini-2.5-flash}\n", 12, "workloads[1].select[0]",
         "the same selector as workload 'chat'"),
        ("  - name: plain\n    mode: latency\n", "  - name: plain\n    mode: latency\n    select: []\n",
         16, "workloads[2].select", "at least one selector"),
        ("      - attributes: {server.address: batch.example.com}\n",
         "      - attributes: {server.address: batch.example.com}\n"
         "      - attributes: {server.address: batch.example.com}\n",
         14, "workloads[1].select[2]", "duplicate selector (first on line 13)"),
    ],
)  # fmt: skip
def test_bad_selectors_name_field_and_line(
    old: str, new: str, line: int, path: str, message: str
) -> None:
    """A bad selector fails with file:line: field path: problem, like the rest of the spec."""
    assert old in SPEC, old
    with pytest.raises(SpecError) as info:
        parse_spec(SPEC.replace(old, new, 1))
    err = info.value
    assert (err.line, err.path) == (line, path), str(err)
    assert message in str(err)
    assert str(err).startswith(f"slo.yaml:{line}: {path}: ")


def test_shipped_example_documents_selectors() -> None:
    """The packaged example shows the select: syntax (commented) and that it parses."""
    from gemini_slo.contract.spec import default_spec_path

    text = default_spec_path().read_text(encoding="utf-8")
    block = [ln for ln in text.splitlines() if ln.startswith("#   ")]
    assert block and block[0].strip("# ") == "select:"
    snippet = "\n".join("    " + ln[4:] for ln in block)
    spec = parse_spec(
        f"version: gemini-slo/v1\nworkloads:\n  - name: chat\n    mode: latency\n{snippet}\n"
    )
    assert len(spec.workloads[0].selectors) == 2


def test_selector_fields_are_documented() -> None:
    """docs/slo-spec.md documents select, resource and attributes."""
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "slo-spec.md").read_text()
    for name in ("select", "resource", "attributes"):
        assert f"`{name}`" in doc, name
