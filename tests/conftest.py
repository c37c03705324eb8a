"""Shared pytest configuration.

Servers started by tests bind to 127.0.0.1 on free ports and are stopped by the test.
Fixtures that start a component live beside the tests of that component; the helpers they
call are public (``gemini_slo.<package>.testing``) so that users can reuse them.
"""

from __future__ import annotations

import os
import shutil

import pytest

#: The Debian package of a binary, when it is not the monitoring stack's.
_PACKAGES = {"chromium": "chromium"}


def _require_binary(name: str) -> str:
    """Return the path of a Debian binary the test needs.

    In CI (``CI=true``) a missing binary fails the test: .ci/install-tools installs them.
    Elsewhere the test is skipped with the command that installs it.
    """
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
