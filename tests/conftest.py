"""Shared pytest configuration.

Servers started by tests bind to 127.0.0.1 on free ports and are stopped by the test.
Fixtures that start a component live beside the tests of that component; the helpers they
call are public (``gemini_slo.<package>.testing``) so that users can reuse them.
"""

from __future__ import annotations

import os
import shutil

import pytest
from gemini_slo.lab import tools

#: The Debian package of a binary, when it is not the monitoring stack's.
_PACKAGES = {"chromium": "chromium"}


def _require_binary(name: str) -> str:
    """Return the path of a Debian binary the test needs.

    Debian 12's binaries (``prometheus``, ``promtool``, ``prometheus-alertmanager``,
    ``chromium``, ...) are looked up on PATH. The trixie engines of
    :data:`gemini_slo.lab.tools.TOOLS` (``victoria-metrics``, ``vmalert``, ``vmagent``,
    ``prometheus-2.53``) are looked up under ``tools/`` first, then on PATH (a ``prometheus``
    there counts as 2.53 only if it is).

    In CI (``CI=true``) a missing binary fails the test: .ci/install-tools installs them.
    Elsewhere the test is skipped with the command that installs it.
    """
    if name in tools.TOOLS:
        path = tools.find_tool(name)
        if path:
            return path
        message = f"{name} not under {tools.tools_dir()} nor on PATH: {tools.INSTALL_HINT}"
    else:
        path = shutil.which(name)
        if path:
            return path
        package = _PACKAGES.get(name, "prometheus prometheus-alertmanager")
        message = f"{name} not on PATH: apt-get install {package}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def require_binary() -> object:
    """A function that returns the path of a binary, failing in CI and skipping elsewhere."""
    return _require_binary
