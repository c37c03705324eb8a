"""How the instrumentation's modules depend on one another, read from their source.

The value types live in ``_values.py`` so that the aggregator, the price table and the
process state need not import each other: no module of the package may reach itself again
through its imports (lazy, function-level and ``TYPE_CHECKING`` imports included: a cycle
hidden in a function is still a cycle). And no module of the project imports a private
``_internal`` module of OpenTelemetry (their layout changes without notice).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "gemini_slo.instrumentation"
FOLDERS = ("contract", "instrumentation", "emulator", "agent", "alerts", "dashboards", "lab", "cli")


def _module_names(tree: ast.AST) -> list[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def _graph() -> dict[str, set[str]]:
    """``{module: the package's modules it imports}`` (the package itself excluded: every
    submodule's import runs its __init__ first, which is not a dependency of the code)."""
    folder = ROOT / "instrumentation"
    modules = {f"{PACKAGE}.{p.stem}": p for p in folder.glob("*.py") if p.stem != "__init__"}
    return {
        name: {m for m in _module_names(ast.parse(path.read_text())) if m in modules} - {name}
        for name, path in modules.items()
    }


def _cycle_from(start: str, graph: dict[str, set[str]]) -> list[str] | None:
    stack = [(start, [start])]
    seen: set[str] = set()
    while stack:
        node, path = stack.pop()
        for nxt in graph[node]:
            if nxt == start:
                return [*path, start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return None


def test_no_module_of_the_instrumentation_imports_itself_back() -> None:
    """No import cycle among the instrumentation's modules (the registry, the price table
    and the process state included)."""
    graph = _graph()
    assert {f"{PACKAGE}._registry", f"{PACKAGE}._state", f"{PACKAGE}.pricing"} <= graph.keys()
    cycles = [c for c in (_cycle_from(m, graph) for m in graph) if c is not None]
    assert not cycles, " ; ".join(" -> ".join(c) for c in cycles)


def test_value_types_import_nothing_of_the_instrumentation() -> None:
    """``_values.py`` is the bottom of the package: plain data over the contract."""
    assert _graph()[f"{PACKAGE}._values"] == set()


def test_no_opentelemetry_internal_module_is_imported() -> None:
    """OpenTelemetry's ``_internal`` modules are private: the project uses public paths."""
    offenders = [
        f"{path.relative_to(ROOT)}: {name}"
        for folder in FOLDERS
        for path in (ROOT / folder).rglob("*.py")
        for name in _module_names(ast.parse(path.read_text()))
        if name.startswith("opentelemetry") and "._internal" in name
    ]
    assert not offenders
