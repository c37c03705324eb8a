"""gemini_slo.lab.tools: the apt sources it derives the trixie mirror from, and the lookup.

No network and no apt here: the parsers get both formats of apt's configuration, the
lookup gets fake binaries in a temporary tools folder and on a temporary PATH.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
from gemini_slo.lab import tools

ONE_LINE = """\
# a comment line
deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example/debian bookworm main contrib
deb-src http://mirror.example/debian bookworm main
deb http://security.example/debian-security bookworm-security main  # trailing comment
"""

DEB822 = """\
Types: deb
# http://snapshot.example/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://security.example/debian-security
Suites: bookworm-security
Components: main

Types: deb deb-src
URIs: http://disabled.example/debian
Suites: bookworm
Components: main
Enabled: no

Types: deb
URIs: http://embedded.example/debian
Suites: bookworm
Components: main
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 xyz
 -----END PGP PUBLIC KEY BLOCK-----
"""


def test_one_line_sources_are_parsed_with_their_options() -> None:
    """``deb [opts] uri suite comps``: deb-src and comments are skipped, signed-by is kept."""
    sources = tools.parse_one_line(ONE_LINE)
    assert [s.uri for s in sources] == [
        "http://mirror.example/debian",
        "http://security.example/debian-security",
    ]
    assert sources[0].suites == ("bookworm",)
    assert sources[0].components == ("main", "contrib")
    assert sources[0].signed_by == "/usr/share/keyrings/debian-archive-keyring.gpg"
    assert sources[1].signed_by is None


def test_deb822_sources_are_parsed_and_disabled_stanzas_skipped() -> None:
    """Stanzas with Types/URIs/Suites/Components; Enabled: no is skipped; an embedded key is not a path."""
    sources = tools.parse_deb822(DEB822)
    assert [s.uri for s in sources] == [
        "http://mirror.example/debian",
        "http://security.example/debian-security",
        "http://embedded.example/debian",
    ]
    assert sources[0].suites == ("bookworm", "bookworm-updates")
    assert sources[0].signed_by == "/usr/share/keyrings/debian-archive-keyring.gpg"
    assert sources[2].signed_by is None


@pytest.mark.parametrize("layout", ["one-line", "deb822"])
def test_the_trixie_list_uses_the_machines_own_mirror(tmp_path: Path, layout: str) -> None:
    """The release's own source (not -security) becomes ``deb [signed-by] URI trixie main``."""
    etc = tmp_path / "apt"
    (etc / "sources.list.d").mkdir(parents=True)
    if layout == "one-line":
        (etc / "sources.list").write_text(ONE_LINE)
    else:
        (etc / "sources.list.d" / "debian.sources").write_text(DEB822)
        (etc / "sources.list.d" / "other.list.disabled").write_text(
            "deb http://no.example x main\n"
        )
    mirror = tools.debian_mirror(tools.configured_sources(etc), "bookworm")
    assert mirror is not None
    assert mirror.uri == "http://mirror.example/debian"
    assert tools.trixie_sources_list(mirror) == (
        "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
        "http://mirror.example/debian trixie main\n"
    )
    assert tools.debian_mirror(tools.configured_sources(etc), "noble") is None


def _fake_binary(path: Path, output: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho '{output}'\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_unpacked_tools_are_found_before_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A binary under tools/trixie/<package>/usr/bin wins over one of the same name on PATH."""
    bin_dir = tmp_path / "bin"
    _fake_binary(bin_dir / "vmalert")
    monkeypatch.setenv("PATH", str(bin_dir))
    root = tmp_path / "tools"
    assert tools.find_tool("vmalert", root) == str(bin_dir / "vmalert")
    unpacked = _fake_binary(root / "trixie" / "victoria-metrics" / "usr" / "bin" / "vmalert")
    assert tools.find_tool("vmalert", root) == str(unpacked)
    assert tools.find_tool("victoria-metrics", root) is None


def test_prometheus_on_path_counts_as_2_53_only_when_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Debian 12's prometheus (2.42) on PATH is not ``prometheus-2.53``; a 2.53 one is."""
    bin_dir = tmp_path / "bin"
    monkeypatch.setenv("PATH", str(bin_dir))
    _fake_binary(bin_dir / "prometheus", "prometheus, version 2.42.0+ds (branch: debian/sid)")
    assert tools.find_tool("prometheus-2.53", tmp_path / "tools") is None
    _fake_binary(bin_dir / "prometheus", "prometheus, version 2.53.3+ds1 (branch: debian/sid)")
    assert tools.find_tool("prometheus-2.53", tmp_path / "tools") == str(bin_dir / "prometheus")


def test_fetch_does_nothing_when_every_package_is_unpacked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Idempotent: with every package's stamp present, no apt-get is even looked for."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    root = tmp_path / "tools"
    for package in tools.PACKAGES:
        tools.package_dir(package, root).mkdir(parents=True)
        (tools.package_dir(package, root) / ".unpacked").write_text("1.0-1\n")
        assert tools.unpacked_version(package, root) == "1.0-1"
    assert tools.fetch(root) == []
    (tools.package_dir(tools.PACKAGES[0], root) / ".unpacked").unlink()
    with pytest.raises(tools.FetchError, match="apt-get not found"):
        tools.fetch(root)


def test_require_binary_skips_or_fails_for_a_missing_engine(
    require_binary: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A missing trixie engine skips the test with the install hint, and fails it in CI."""
    monkeypatch.setenv(tools.TOOLS_DIR_ENV, str(tmp_path / "tools"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="make tools"):
        require_binary("vmalert")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="vmalert not under"):
        require_binary("vmalert")
    found = _fake_binary(tmp_path / "tools" / "trixie" / "victoria-metrics" / "usr/bin/vmalert")
    assert require_binary("vmalert") == str(found)
