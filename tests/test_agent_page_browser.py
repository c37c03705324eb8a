"""The agent's SLO page in a real browser: Debian's Chromium driven by Playwright.

No browser is downloaded: Playwright's Python package drives the ``chromium`` binary that
.ci/install-tools installs from Debian (``executable_path``). The tests check what a
person gets: a page that loads without a console error and without a request leaving the
agent, every workload of the spec, the bearer token enforced, and, during an injected
latency fault, the latency objective turning not met and its burn rate going above the
page threshold, then recovering once the fault clears. A screenshot taken during the fault
is written next to the test's files (and into ``$GEMINI_SLO_SCREENSHOTS`` when set).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from gemini_slo.agent.testing import running_agent
from gemini_slo.contract.burn_windows import BURN_WINDOWS, resolve
from gemini_slo.contract.spec import default_spec_path, load_spec
from gemini_slo.emulator.testing import running_emulator
from gemini_slo.lab import stack as st

try:
    from playwright import sync_api
except ImportError:  # the dev extra has it: missing is a broken install in CI
    if os.environ.get("CI"):
        raise
    pytest.skip("playwright is not installed: pip install -e '.[dev]'", allow_module_level=True)

TOKEN = "page-test-token"
SPEC = load_spec(default_spec_path())
MODEL = SPEC.workload("chat").models[0]


@pytest.fixture
def browser(require_binary: Callable[[str], str]) -> Iterator[Any]:
    """Debian's Chromium, headless, through Playwright (never a downloaded browser)."""
    executable = require_binary("chromium")
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    with sync_api.sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


class Watched:
    """A page plus every console error, page error and request it made."""

    def __init__(self, browser: Any, base_url: str, token: str | None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.context = browser.new_context(
            viewport={"width": 1280, "height": 900}, extra_http_headers=headers
        )
        self.page = self.context.new_page()
        self.base_url = base_url
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))

    def open(self) -> int:
        """Load (or reload) the SLO page; the response's status."""
        response = self.page.goto(self.base_url + "/", wait_until="load")
        assert response is not None
        return int(response.status)

    def attribute(self, selector: str, name: str) -> str | None:
        """An attribute of the one element matching ``selector``."""
        value: str | None = self.page.locator(selector).get_attribute(name, timeout=5000)
        return value

    def foreign_requests(self) -> list[str]:
        """Requests that went anywhere but the agent (data: URLs are not requests out)."""
        return [u for u in self.requests if not u.startswith((self.base_url + "/", "data:"))]

    def close(self) -> None:
        self.context.close()


def test_page_loads_clean_shows_every_workload_and_needs_the_token(browser: Any) -> None:
    """No console error, no request leaving the agent, one card per workload; 401 without token."""
    with running_agent(token=TOKEN) as agent:
        anonymous = Watched(browser, agent.base_url, token=None)
        try:
            assert anonymous.open() == 401
            assert "missing or invalid bearer token" in anonymous.page.content()
        finally:
            anonymous.close()
        watched = Watched(browser, agent.base_url, token=TOKEN)
        try:
            assert watched.open() == 200
            cards = watched.page.locator("section.workload")
            assert cards.count() == len(SPEC.workloads)
            for workload in SPEC.workloads:
                card = f'section[data-workload="{workload.name}"]'
                assert watched.page.locator(f"{card} h2").inner_text() == workload.name
                for objective in workload.objectives:
                    row = f'{card} table.objectives tr[data-objective="{objective.name}"]'
                    assert watched.page.locator(row).count() == 1
                # Nobody sends anything: every objective reads "no traffic".
                assert watched.attribute(card, "data-traffic") == "false"
            assert watched.page.locator("section.workload svg.chart").count() >= 4
            assert watched.errors == [], watched.errors
            assert watched.foreign_requests() == [], watched.foreign_requests()
        finally:
            watched.close()


def _objective_state(watched: Watched, workload: str, objective: str) -> str | None:
    return watched.attribute(
        f'section[data-workload="{workload}"] table.objectives tr[data-objective="{objective}"]',
        "data-state",
    )


def _page_pair(watched: Watched, objective: str) -> dict[str, float | bool | None]:
    """The 1h/5m (page) burn cell of a chat objective, as numbers."""
    cell = (
        f'section[data-workload="chat"] table.burns tr[data-objective="{objective}"] '
        'td[data-pair="1h/5m"]'
    )

    def number(name: str) -> float | None:
        text = watched.attribute(cell, name)
        return float(text) if text else None

    return {
        "long": number("data-burn-long"),
        "short": number("data-burn-short"),
        "threshold": number("data-threshold"),
        "burning": watched.attribute(cell, "data-burning") == "true",
    }


def _poll(watched: Watched, done: Callable[[], bool], timeout: float, what: str) -> float:
    """Reload the page every second until ``done()``; the seconds it took."""
    started = time.monotonic()
    while True:
        assert watched.open() == 200
        if done():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            pytest.fail(f"{what} not seen within {timeout:.0f}s")
        time.sleep(1.0)


@pytest.mark.slow
def test_a_latency_fault_turns_the_objective_red_and_it_recovers(
    browser: Any, tmp_path: Path
) -> None:
    """Fault: latency_p95 not met and its 1h/5m burn above the page threshold; cleared: back."""
    # 1h/5m becomes 10s/4s: the page threshold (the generated alert's) is reachable in seconds.
    spec_path = st.scaled_spec(default_spec_path(), tmp_path / "slo.yaml", window_scale=360)
    with (
        running_emulator(seed=3, time_scale=0.3) as emulator,
        running_agent(
            spec_path,
            snapshot_interval=1.0,
            maintenance_interval=1.0,
            current_window="10s",  # "met" follows the last 10 s, so that recovery is quick
        ) as agent,
    ):
        load = st.ManagedProcess(
            "load-chat",
            [
                sys.executable, "-m", "gemini_slo.cli.main", "--log-level", "warning", "load",
                "--mode", "latency", "--workload", "chat", "--model", MODEL, "--rate", "15",
                "--duration", "180", "--emulator", emulator.url, "--agent", agent.otlp_url,
                "--spec", str(spec_path), "--export-interval", "0.5", "--quiet",
            ],
            tmp_path / "load.log",
        )  # fmt: skip
        watched = Watched(browser, agent.base_url, token=None)
        try:
            _poll(
                watched,
                lambda: _objective_state(watched, "chat", "latency_p95") == "met",
                timeout=60,
                what="healthy chat traffic (latency_p95 met)",
            )
            time.sleep(8)  # a healthy stretch the windows and charts can show
            fault = emulator.set_fault("latency_multiplier", model=MODEL, factor=5)
            seen = _poll(
                watched,
                lambda: (
                    _objective_state(watched, "chat", "latency_p95") == "not met"
                    and bool(_page_pair(watched, "latency_p95")["burning"])
                ),
                timeout=60,
                what="latency_p95 not met and burning over 1h/5m",
            )
            pair = _page_pair(watched, "latency_p95")
            assert pair["long"] is not None and pair["threshold"] is not None
            expected = resolve(BURN_WINDOWS[0], 0.05, SPEC.period).burn_factor
            assert pair["threshold"] == pytest.approx(expected, rel=1e-4), pair
            assert pair["long"] > pair["threshold"], pair
            assert pair["short"] is not None and pair["short"] > pair["threshold"], pair
            shot = tmp_path / "slo-page-during-fault.png"
            watched.page.screenshot(path=str(shot), full_page=True)
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            if os.environ.get("GEMINI_SLO_SCREENSHOTS"):
                out = Path(os.environ["GEMINI_SLO_SCREENSHOTS"])
                out.mkdir(parents=True, exist_ok=True)
                shutil.copy(shot, out / shot.name)
            emulator.clear_fault(fault)
            recovered = _poll(
                watched,
                lambda: (
                    _objective_state(watched, "chat", "latency_p95") == "met"
                    and not _page_pair(watched, "latency_p95")["burning"]
                ),
                timeout=60,
                what="latency_p95 met again and not burning",
            )
            assert watched.errors == [], watched.errors
            assert watched.foreign_requests() == [], watched.foreign_requests()
            print(f"fault seen after {seen:.1f}s, recovered {recovered:.1f}s after clearing")
        finally:
            watched.close()
            load.stop()
