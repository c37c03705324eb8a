"""The ``gemini-slo`` command and the package layout."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
from pathlib import Path

import pytest
from gemini_slo.cli import generate
from gemini_slo.cli import main as cli


def test_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    """``gemini-slo --help`` names every subcommand the issues promise."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name in ("emulate", "agent", "status", "advise", "prices", "generate", "load", "demo"):
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


SPEC_OPTION = {
    "advise": ["advise", "--agent", "http://127.0.0.1:9", "--spec"],
    "generate": ["generate", "--spec"],
    "load": ["load", "--mode", "latency", "--no-export", "--spec"],
    "agent": [
        "agent",
        "--otlp",
        "127.0.0.1:0",
        "--metrics",
        "127.0.0.1:0",
        "--grpc",
        "off",
        "--config",
    ],
    "demo": ["demo", "--no-monitoring", "--spec"],
}


def _unreadable_spec(tmp_path: Path, problem: str) -> tuple[Path, str]:
    """A spec file with ``problem`` and what the one error line must say about it."""
    path = tmp_path / "slo.yaml"
    if problem == "missing":
        return path, f"cannot read spec {path}: No such file or directory"
    if problem == "directory":
        path.mkdir()
        return path, f"cannot read spec {path}: Is a directory"
    if problem == "not-utf8":
        data = "version: gemini-slo/v1\n# café\n".encode("latin-1")
        path.write_bytes(data)
        return path, f"cannot read spec {path}: not UTF-8 text (at byte {data.index(0xE9)})"
    path.write_text("version: gemini-slo/v1\nworkloads: []\n")
    return path, "slo.yaml:2: workloads: expected at least one workload"


@pytest.mark.parametrize("problem", ["missing", "directory", "not-utf8", "invalid"])
@pytest.mark.parametrize("command", sorted(SPEC_OPTION))
def test_a_spec_that_cannot_be_used_is_one_line_and_exit_2(
    tmp_path: Path, command: str, problem: str
) -> None:
    """Every subcommand taking a spec: exit 2, one stderr line naming file and problem."""
    path, expected = _unreadable_spec(tmp_path, problem)
    result = subprocess.run(
        [sys.executable, "-m", "gemini_slo.cli.main", *SPEC_OPTION[command], str(path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [f"gemini-slo {command}: {expected}"]


def test_a_spec_without_read_permission_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Permission denied reads as such (simulated: the tests may run as root, who reads all)."""
    path = tmp_path / "slo.yaml"
    path.write_text("version: gemini-slo/v1\n")

    def refuse(self: Path, *args: object, **kwargs: object) -> str:
        raise PermissionError(13, "Permission denied", str(self))

    parser = argparse.ArgumentParser()
    generate.add_arguments(parser)
    args = parser.parse_args(["--spec", str(path), "--out", str(tmp_path)])
    monkeypatch.setattr(Path, "read_text", refuse)
    # run() itself, not main(): main() would configure logging onto the captured stderr.
    assert generate.run(args) == 2
    err = capsys.readouterr().err
    assert err == f"gemini-slo generate: cannot read spec {path}: Permission denied\n"


@pytest.mark.parametrize(
    ("argv", "abbreviated"),
    [
        (["--log-l=debug", "generate"], "--log-l"),
        (["emulate", "--see", "1"], "--see"),
        (["agent", "--token", "x"], "--token"),
        (["status", "--timeo", "1"], "--timeo"),
        (["advise", "--wind", "1h"], "--wind"),
        (["generate", "--chec"], "--chec"),
        (["load", "--mode", "latency", "--dur", "1"], "--dur"),
        (["demo", "--hol"], "--hol"),
    ],
)
def test_options_are_not_matched_by_prefix(
    argv: list[str], abbreviated: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """An abbreviated option is an error, not silently the option it begins."""
    # The parser alone: were the prefix accepted, main() would start what argv names.
    with pytest.raises(SystemExit) as exit_info:
        cli.build_parser(argv).parse_args(argv)
    assert exit_info.value.code == 2
    assert f"unrecognized arguments: {abbreviated}" in capsys.readouterr().err
