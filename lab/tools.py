"""The engines the lab runs beside Debian 12's own: where their binaries are, and how to get them.

VictoriaMetrics (``victoria-metrics``, ``vmalert``, ``vmagent``) and Prometheus 2.53 come
from Debian's next release, trixie. ``.ci/install-tools`` (``make tools``) runs this file as a
script: it downloads the trixie packages with ``apt-get download`` from the machine's own
configured Debian mirror, with the suite changed to trixie, and unpacks them with
``dpkg -x`` into a project-local folder, ``tools/`` at the repository root (git-ignored;
``GEMINI_SLO_TOOLS_DIR`` moves it). apt runs with private lists, cache and sources under
that folder, so the system's apt state is never touched and no trixie library is ever
installed into the system. The binaries are Go programs linked against libc (and libzstd
for VictoriaMetrics' tools), which Debian 12 has.

:func:`find_tool` is the lookup the tests and the lab use: the unpacked binary under
``tools/``, else one on PATH. ``prometheus-2.53`` never resolves to Debian 12's
``/usr/bin/prometheus`` (2.42, used by the existing tests): a ``prometheus`` on PATH counts
only when its ``--version`` says 2.53 or later.

This module imports nothing of the project, so that the installer runs before (and
without) the virtual environment: ``python3 lab/tools.py fetch``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

#: The Debian release the engines come from.
SUITE = "trixie"
#: ``tools/`` at the repository root (this file is ``<root>/lab/tools.py``).
DEFAULT_TOOLS_DIR = Path(__file__).resolve().parents[1] / "tools"
TOOLS_DIR_ENV = "GEMINI_SLO_TOOLS_DIR"
INSTALL_HINT = "make tools (fetches Debian trixie's victoria-metrics and prometheus into tools/)"
#: The lowest Prometheus that counts as ``prometheus-2.53`` when found on PATH.
PROMETHEUS_MIN_VERSION = (2, 53)


@dataclass(frozen=True, slots=True)
class Tool:
    """One binary of a trixie package, by the name tests and the lab ask for."""

    name: str
    package: str
    binary: str
    #: Names under which the same program may be on PATH instead (upstream's included).
    path_names: tuple[str, ...]


TOOLS: dict[str, Tool] = {
    t.name: t
    for t in (
        Tool(
            "victoria-metrics",
            "victoria-metrics",
            "victoria-metrics",
            ("victoria-metrics", "victoria-metrics-prod"),
        ),
        Tool("vmalert", "victoria-metrics", "vmalert", ("vmalert", "vmalert-prod")),
        Tool("vmagent", "victoria-metrics", "vmagent", ("vmagent", "vmagent-prod")),
        Tool("prometheus-2.53", "prometheus", "prometheus", ("prometheus",)),
    )
}
#: The trixie packages that hold them.
PACKAGES: tuple[str, ...] = tuple(dict.fromkeys(t.package for t in TOOLS.values()))
_STAMP = ".unpacked"


def tools_dir() -> Path:
    """Where the unpacked packages live: ``$GEMINI_SLO_TOOLS_DIR`` or ``<repo>/tools``."""
    override = os.environ.get(TOOLS_DIR_ENV)
    return Path(override) if override else DEFAULT_TOOLS_DIR


def package_dir(package: str, root: Path | None = None) -> Path:
    """The ``dpkg -x`` root of one trixie package."""
    return (root or tools_dir()) / SUITE / package


def unpacked_version(package: str, root: Path | None = None) -> str | None:
    """The Debian version of an unpacked package (``1.112.0+ds1-2``), or None."""
    try:
        return (package_dir(package, root) / _STAMP).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def _prometheus_version(path: str) -> tuple[int, ...] | None:
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"version (\d+)\.(\d+)", out.stdout + out.stderr)
    return (int(match.group(1)), int(match.group(2))) if match else None


def find_tool(name: str, root: Path | None = None) -> str | None:
    """The path of tool ``name`` (a key of :data:`TOOLS`), under ``tools/`` or on PATH."""
    tool = TOOLS[name]
    unpacked = package_dir(tool.package, root) / "usr" / "bin" / tool.binary
    if unpacked.is_file() and os.access(unpacked, os.X_OK):
        return str(unpacked)
    for candidate in tool.path_names:
        path = shutil.which(candidate)
        if path is None:
            continue
        if tool.package == "prometheus":
            version = _prometheus_version(path)
            if version is None or version < PROMETHEUS_MIN_VERSION:
                continue
        return path
    return None


# --------------------------------------------------------------------------------------
# The installer: the machine's Debian mirror, with the suite changed to trixie.
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AptSource:
    """One ``deb`` source of the apt configuration: URI, suites, components, keyring."""

    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]
    signed_by: str | None = None


def parse_one_line(text: str) -> list[AptSource]:
    """The ``deb`` lines of a one-line-style file (``/etc/apt/sources.list``, ``*.list``)."""
    out = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue  # deb-src and anything else
        rest = line[4:].strip()
        options: dict[str, str] = {}
        if rest.startswith("["):
            close = rest.find("]")
            if close < 0:
                continue
            for option in rest[1:close].split():
                key, _, value = option.partition("=")
                options[key] = value
            rest = rest[close + 1 :].strip()
        fields = rest.split()
        if len(fields) < 2:
            continue
        out.append(AptSource(fields[0], (fields[1],), tuple(fields[2:]), options.get("signed-by")))
    return out


def parse_deb822(text: str) -> list[AptSource]:
    """The ``deb`` stanzas of a deb822-style file (``*.sources``)."""
    out = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = ""
        for raw in stanza.splitlines():
            if raw.lstrip().startswith("#"):
                continue
            if raw[:1].isspace() and key:  # a continuation line (an embedded key)
                fields[key] += "\n" + raw.strip()
                continue
            key, sep, value = raw.partition(":")
            if not sep:
                key = ""
                continue
            key = key.strip().lower()
            fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").strip().lower() == "no":
            continue
        signed_by = fields.get("signed-by", "")
        # A key embedded in the stanza cannot be passed on as a path: rely on the keyrings.
        keyring = signed_by if signed_by and "\n" not in signed_by else None
        for uri in fields.get("uris", "").split():
            out.append(
                AptSource(
                    uri,
                    tuple(fields.get("suites", "").split()),
                    tuple(fields.get("components", "").split()),
                    keyring,
                )
            )
    return out


def configured_sources(etc: Path = Path("/etc/apt")) -> list[AptSource]:
    """Every ``deb`` source of the apt configuration under ``etc``, in apt's reading order."""
    out: list[AptSource] = []
    main = etc / "sources.list"
    if main.is_file():
        out += parse_one_line(main.read_text(encoding="utf-8", errors="replace"))
    parts = etc / "sources.list.d"
    if parts.is_dir():
        for path in sorted(parts.iterdir()):
            text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
            if path.suffix == ".list":
                out += parse_one_line(text)
            elif path.suffix == ".sources":
                out += parse_deb822(text)
    return out


def os_release(path: Path = Path("/etc/os-release")) -> dict[str, str]:
    """``/etc/os-release`` as a dict (empty when absent)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip().strip("\"'")
    return out


def debian_mirror(sources: Iterable[AptSource], codename: str) -> AptSource | None:
    """The source of the release itself: suite ``codename`` with ``main`` (not -security...)."""
    for source in sources:
        if codename in source.suites and "main" in source.components:
            return source
    return None


def trixie_sources_list(mirror: AptSource) -> str:
    """A one-line sources list for trixie's ``main`` from the machine's own mirror."""
    options = f"[signed-by={mirror.signed_by}] " if mirror.signed_by else ""
    return f"deb {options}{mirror.uri} {SUITE} main\n"


class FetchError(RuntimeError):
    """The trixie packages could not be fetched or unpacked (the message says why)."""


def _run(argv: Sequence[str], cwd: Path | None = None, timeout: float = 900.0) -> str:
    try:
        result = subprocess.run(
            list(argv), cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise FetchError(f"{argv[0]}: {exc}") from exc
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise FetchError(f"{' '.join(argv[:2])} failed: {' / '.join(tail)}")
    return result.stdout


def _apt_options(apt: Path) -> list[str]:
    # Private state, cache and sources: the system's lists and archives stay as they are.
    return [
        "-o", f"Dir::State::Lists={apt / 'lists'}",
        "-o", f"Dir::Cache={apt / 'cache'}",
        "-o", f"Dir::Etc::SourceList={apt / 'sources.list'}",
        "-o", f"Dir::Etc::SourceParts={apt / 'sources.list.d'}",
        "-o", "Acquire::Retries=2",
    ]  # fmt: skip


def _writable_by_apt_sandbox(path: Path) -> None:
    # As root, apt downloads as the unprivileged _apt user: let it write there (else it
    # warns and downloads as root).
    if os.geteuid() != 0:
        return
    try:
        import pwd

        entry = pwd.getpwnam("_apt")
    except (ImportError, KeyError):
        return
    os.chown(path, entry.pw_uid, -1)


def fetch(root: Path | None = None, etc: Path = Path("/etc/apt")) -> list[str]:
    """Download and unpack the trixie packages that are missing; returns what was unpacked.

    Idempotent: a package already unpacked (its stamp present) is skipped, and nothing is
    fetched when every tool is found (under ``tools/`` or on PATH).
    """
    root = root or tools_dir()
    missing = [
        p
        for p in PACKAGES
        if unpacked_version(p, root) is None
        and any(find_tool(t.name, root) is None for t in TOOLS.values() if t.package == p)
    ]
    if not missing:
        return []
    for command in ("apt-get", "dpkg", "dpkg-deb"):
        if shutil.which(command) is None:
            raise FetchError(f"{command} not found: not a Debian system")
    release = os_release()
    codename = release.get("VERSION_CODENAME", "")
    if release.get("ID") != "debian" or not codename:
        raise FetchError(f"not Debian ({release.get('ID', 'unknown')}): no Debian mirror to use")
    mirror = debian_mirror(configured_sources(etc), codename)
    if mirror is None:
        raise FetchError(f"no 'deb ... {codename} main' source in {etc}")
    apt = root / SUITE / "apt"
    for sub in ("lists/partial", "cache/archives/partial", "sources.list.d", "debs"):
        (apt / sub).mkdir(parents=True, exist_ok=True)
    (apt / "sources.list").write_text(trixie_sources_list(mirror), encoding="utf-8")
    options = _apt_options(apt)
    _run(["apt-get", "-qq", *options, "update"])
    debs = apt / "debs"
    _writable_by_apt_sandbox(debs)
    unpacked = []
    for package in missing:
        for old in debs.glob(f"{package}_*.deb"):
            old.unlink()
        _run(["apt-get", "-qq", *options, "download", f"{package}/{SUITE}"], cwd=debs)
        found = sorted(debs.glob(f"{package}_*.deb"))
        if not found:
            raise FetchError(f"apt-get download {package}/{SUITE} left no .deb")
        target = package_dir(package, root)
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        _run(["dpkg", "-x", str(found[-1]), str(target)])
        version = _run(["dpkg-deb", "-f", str(found[-1]), "Version"]).strip()
        (target / _STAMP).write_text(version + "\n", encoding="utf-8")
        found[-1].unlink()  # the unpacked tree is what is kept
        unpacked.append(f"{package} {version}")
    return unpacked


def main(argv: Sequence[str] | None = None) -> int:
    """``python3 lab/tools.py fetch``: fetch what is missing; ``... where``: print paths.

    Never fails the build: a failure is one line on stderr and exit status 0 (the tests
    that need a missing binary fail in CI and skip elsewhere, saying so).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    command = args[0] if args else "fetch"
    if command == "where":
        for name in TOOLS:
            print(f"{name}: {find_tool(name) or 'not found'}")
        return 0
    if command != "fetch":
        print(f"usage: {Path(__file__).name} [fetch|where]", file=sys.stderr)
        return 2
    try:
        done = fetch()
    except (FetchError, OSError) as exc:
        print(f"trixie tools not fetched ({exc}); the tests that need them skip", file=sys.stderr)
        return 0
    if done:
        print(f"unpacked Debian {SUITE}'s {', '.join(done)} into {tools_dir()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
