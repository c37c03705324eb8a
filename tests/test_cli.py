"""The ``gemini-slo`` command and the package layout."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest
from gemini_slo.cli import main as cli


def test_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    """``gemini-slo --help`` names every subcommand the issues promise."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name in ("emulate", "agent", "status", "generate", "load", "demo"):
        assert name in out


def test_every_subcommand_module_exists() -> None:
    """Each subcommand maps to a module with add_arguments() and run()."""
    for name, (module_name, _) in cli.SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        assert callable(module.add_arguments), name
        assert callable(module.run), name


def test_console_script_runs() -> None:
    """The installed console script answers (a fresh process, as a user runs it)."""
    exe = Path(sys.executable).with_name("gemini-slo")
    result = subprocess.run(
        [str(exe), "--help"], check=False, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    assert "emulate" in result.stdout


def test_bare_folder_import_is_refused() -> None:
    """Importing a top-level folder as a bare package fails with a message saying why."""
    root = Path(__file__).resolve().parent.parent
    code = "import agent"
    result = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "gemini_slo.agent" in result.stderr
