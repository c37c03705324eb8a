"""Serialisation of generated artifacts: stable, diff-friendly YAML and JSON.

Generators return plain dicts built in the order their keys should appear; these
functions never sort mapping keys (the order is part of the output) and always produce
the same bytes for the same input.
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from gemini_slo.contract.artifacts import GENERATED_BY


class _Dumper(yaml.SafeDumper):
    """A SafeDumper that writes multi-line strings as literal blocks and indents lists."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        # Indent list items under their key (yamllint's and Prometheus docs' style).
        super().increase_indent(flow, False)

    def ignore_aliases(self, data: Any) -> bool:
        # Shared label dicts must be written out in full, never as &anchors/*aliases.
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _str)


def header(source: str) -> str:
    """The first line of every generated YAML file."""
    return f"# {GENERATED_BY.format(source=source)}\n"


def to_yaml(data: Any, source: str | None = None) -> str:
    """YAML text with the generated-by header (when ``source`` is given), keys unsorted."""
    body = yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=10_000,  # never fold a long PromQL line
    )
    return (header(source) if source else "") + body


def to_json(data: Any) -> str:
    """Indented JSON with a trailing newline, keys in insertion order."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
