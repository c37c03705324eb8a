"""The layers of the house (docs/architecture.md), enforced on every import.

Each top-level package is installed as ``gemini_slo.<folder>``. A package may import only from
packages of a lower layer, never from its own layer's siblings or from above, and never a
private module (``_name``) of another package. Imports are read with :mod:`ast`: module-level,
function-level and ``TYPE_CHECKING`` imports alike, and string constants that name a module
(``importlib.import_module("gemini_slo.x.y")``, ``python -m gemini_slo.x.y``), since those are
imports too.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Package -> layer, from the ground floor up. The source of truth for docs/architecture.md.
LAYERS: dict[str, int] = {
    "contract": 0,
    "instrumentation": 1,
    "emulator": 1,
    "agent": 2,
    "alerts": 2,
    "dashboards": 2,
    "lab": 3,
    "cli": 4,
}

_MODULE_STRING = re.compile(r"gemini_slo\.[a-z_]+(?:\.[a-z_0-9]+)*")


@dataclass(frozen=True)
class Violation:
    """One import that breaks the layering: where, what, and why."""

    file: str
    line: int
    target: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: imports {self.target}: {self.reason}"


def _targets(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("gemini_slo."):
                found.append((node.lineno, node.module))
                # `from gemini_slo.pkg import _private_module` names a module too.
                found += [
                    (node.lineno, f"{node.module}.{a.name}")
                    for a in node.names
                    if a.name.startswith("_") and node.module.count(".") == 1
                ]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("gemini_slo.")]
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and _MODULE_STRING.fullmatch(node.value)
        ):
            found.append((node.lineno, node.value))
    return found


def import_violations(root: Path, layers: dict[str, int] = LAYERS) -> list[Violation]:
    """Every import under ``root``'s packages that goes up, sideways, or into a private module."""
    out: list[Violation] = []
    for package, layer in layers.items():
        for path in sorted((root / package).rglob("*.py")):
            rel = str(path.relative_to(root))
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
            for line, target in _targets(tree):
                parts = target.split(".")
                dst = parts[1]
                if dst == package or dst not in layers:
                    continue  # its own modules, or a metric name such as gemini_slo.queue.depth
                if layers[dst] > layer:
                    out.append(Violation(rel, line, target, f"{dst} is above {package}"))
                elif layers[dst] == layer:
                    out.append(Violation(rel, line, target, f"{dst} is a sibling of {package}"))
                elif any(p.startswith("_") for p in parts[2:]):
                    out.append(Violation(rel, line, target, f"a private module of {dst}"))
    return out


def test_every_package_is_in_a_layer() -> None:
    """A new top-level package must be given a layer before it can be imported."""
    packages = {
        p.name
        for p in ROOT.iterdir()
        if (p / "__init__.py").is_file() and p.name not in ("tests", "bench")
    }
    assert packages == set(LAYERS)


def test_the_house_imports_only_downward() -> None:
    """No module imports from its own layer, from above, or a private module of another package."""
    violations = import_violations(ROOT)
    assert not violations, "\n".join(map(str, violations))


def _fake_house(tmp_path: Path, files: dict[str, str]) -> Path:
    for package in LAYERS:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    for rel, text in files.items():
        (tmp_path / rel).write_text(text)
    return tmp_path


@pytest.mark.parametrize(
    ("rel", "text", "reason"),
    [
        ("contract/spec.py", "from gemini_slo.agent.store import Store\n", "agent is above contract"),
        ("agent/x.py", "def f():\n    import gemini_slo.cli.main\n", "cli is above agent"),
        ("alerts/x.py", "from gemini_slo.dashboards import build\n", "dashboards is a sibling"),
        ("lab/x.py", "from gemini_slo.instrumentation._call import Call\n", "a private module"),
        ("lab/x.py", "from gemini_slo.instrumentation import _state\n", "a private module"),
        ("lab/x.py", 'CMD = ["python", "-m", "gemini_slo.cli.main"]\n', "cli is above lab"),
        ("agent/x.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from gemini_slo.lab import stack\n", "lab is above agent"),
    ],
)  # fmt: skip
def test_a_wrong_import_is_caught(tmp_path: Path, rel: str, text: str, reason: str) -> None:
    """The checker fails on each kind of wrong import planted in a fake house."""
    violations = import_violations(_fake_house(tmp_path, {rel: text}))
    assert len(violations) == 1 and reason in violations[0].reason
    assert violations[0].file == rel


def test_a_right_import_passes(tmp_path: Path) -> None:
    """Downward public imports, and a package's own private modules, are fine."""
    house = _fake_house(
        tmp_path,
        {
            "cli/x.py": "from gemini_slo.lab import stack\nfrom gemini_slo.cli import _own\n",
            "agent/x.py": "from gemini_slo.contract import signals\nfrom gemini_slo.agent._y import z\n",
        },
    )
    assert import_violations(house) == []
