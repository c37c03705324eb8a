"""Files the subcommands read: the SLO spec and the bearer token file.

Every way of failing (missing, a directory, permission denied, not UTF-8, an invalid spec)
becomes one :class:`~gemini_slo.cli.errors.CommandError` line naming the file, so that
each subcommand taking ``--spec`` or ``--config`` fails the same way.
"""

from __future__ import annotations

from pathlib import Path

from gemini_slo.cli.errors import CommandError
from gemini_slo.contract.spec import SloSpec, SpecError, default_spec_path, load_spec


def load_spec_file(path: str | Path | None) -> SloSpec:
    """The validated spec at ``path`` (None: the packaged example).

    An invalid spec keeps its ``file:line: field: message`` form.
    """
    spec_path = default_spec_path() if path is None else Path(path)
    try:
        return load_spec(spec_path)
    except SpecError as exc:
        raise CommandError(str(exc)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(_cannot_read("spec", spec_path, exc)) from None


def read_token_file(path: Path) -> str:
    """The bearer token held in ``path``, without surrounding whitespace; never empty."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(_cannot_read("token file", path, exc)) from None
    if not token:
        raise CommandError(f"token file {path} is empty")
    return token


def _cannot_read(what: str, path: Path, exc: OSError | UnicodeDecodeError) -> str:
    """``cannot read spec x.yaml: No such file or directory``: the file and the problem.

    Only the position of a byte that is not UTF-8, never the byte or the text around it
    (the file may hold a token).
    """
    if isinstance(exc, UnicodeDecodeError):
        problem = f"not UTF-8 text (at byte {exc.start})"
    else:
        problem = exc.strerror or type(exc).__name__
    return f"cannot read {what} {path}: {problem}"
