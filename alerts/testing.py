"""Helpers for tests of the generated rules: run promtool on some of the generated groups.

The generated test files (``alerts/tests/<workload>.test.yaml``) hold the per-alert cases,
the healthy case and the scenario suite; the suite's multi-day cases take promtool about
half a minute each. :func:`select` keeps the groups a test wants, unchanged (same file,
same evaluation interval), and :func:`promtool_test` runs them.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml
from gemini_slo.alerts.scenarios import GROUP_PREFIX, Kind
from gemini_slo.contract.artifacts import TESTS_DIR

Group = dict[str, Any]


def kind_of(group: Group) -> Kind | None:
    """The scenario kind of a generated test group; None for the per-alert and healthy groups."""
    name = str(group.get("name", ""))
    for kind in Kind:
        if name.startswith(f"{GROUP_PREFIX} ({kind.value}):"):
            return kind
    return None


def of_kinds(*kinds: Kind | None) -> Callable[[Group], bool]:
    """A ``keep`` predicate: groups of these kinds (None: the per-alert and healthy groups)."""
    return lambda group: kind_of(group) in kinds


def select(files: dict[str, str], keep: Callable[[Group], bool]) -> dict[str, str]:
    """The generated test files with only the groups ``keep`` accepts (files left empty go)."""
    out = {}
    for rel, text in files.items():
        if not rel.startswith(f"{TESTS_DIR}/"):
            continue
        doc = yaml.safe_load(text)
        doc["tests"] = [g for g in doc["tests"] if keep(g)]
        if doc["tests"]:
            out[rel] = yaml.safe_dump(doc, sort_keys=False)
    return out


def groups(files: dict[str, str]) -> Iterable[Group]:
    """Every test group of the generated test files."""
    for rel, text in files.items():
        if rel.startswith(f"{TESTS_DIR}/"):
            yield from yaml.safe_load(text)["tests"]


def promtool_test(
    promtool: str, root: Path, tests: dict[str, str], timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """Write ``tests`` (relative path -> text) under ``root`` and ``promtool test rules`` them.

    ``root`` must hold the rule files the tests name (``write(artifacts(spec), root)``).
    """
    for rel, text in tests.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    argv = [promtool, "test", "rules", *sorted(tests)]
    return subprocess.run(
        argv, capture_output=True, text=True, cwd=root, timeout=timeout, check=False
    )
