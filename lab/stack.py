"""Run the monitoring stack by hand: Prometheus and Alertmanager on free 127.0.0.1 ports.

What the demo, the full-stack test and the benchmark need, in one place:

* :class:`ManagedProcess`: a child process with its log in a file, a readiness URL, and a
  stop that always happens (SIGTERM, then SIGKILL), also at interpreter exit.
* :func:`prometheus_config` / :func:`alertmanager_config`: the configs, generated. Prometheus
  scrapes the agent every second and evaluates the generated rules every second;
  Alertmanager gets the generated routes with every receiver pointed at our webhook and
  short group timers, so that a page shows within seconds of the rule firing.
* :class:`Stack`: webhook receiver + Alertmanager + Prometheus in a temp dir, a context
  manager that stops everything it started on exit, on exceptions and on Ctrl-C; with query
  helpers (:meth:`Stack.query`, :meth:`Stack.alerts`).
* :func:`start_emulator` / :func:`start_agent`: the emulator and agent as their CLI in a
  child process (separate processes keep their event loops off the caller's GIL, which
  matters for latency figures on a 2-core machine).

Debian's binaries are ``prometheus`` and ``prometheus-alertmanager``; upstream's
``alertmanager`` is accepted too.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import weakref
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from gemini_slo.lab.webhook import WebhookReceiver

PROMETHEUS_BINARIES = ("prometheus",)
ALERTMANAGER_BINARIES = ("prometheus-alertmanager", "alertmanager")
INSTALL_HINT = "apt-get install prometheus prometheus-alertmanager"

#: Timers for the demo and tests: seconds instead of Alertmanager's minutes.
FAST_ROUTE_TIMERS = {"group_wait": "1s", "group_interval": "2s", "repeat_interval": "1h"}

_LIVE: weakref.WeakSet[ManagedProcess] = weakref.WeakSet()


#: Every URL here is on 127.0.0.1: never send it through an HTTP(S)_PROXY from the environment.
_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class StackError(RuntimeError):
    """A component did not start, or a query failed."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def find_binary(names: Sequence[str]) -> str | None:
    """The first of ``names`` found on PATH, or None."""
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    return None


def binaries_available() -> bool:
    """True when both Prometheus and Alertmanager are on PATH."""
    return bool(find_binary(PROMETHEUS_BINARIES) and find_binary(ALERTMANAGER_BINARIES))


def http_get(url: str, timeout: float = 5.0) -> bytes:
    """GET ``url`` and return the body; raises StackError on any failure or non-2xx."""
    try:
        with _LOCAL.open(url, timeout=timeout) as response:
            body: bytes = response.read()
            return body
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise StackError(f"GET {url}: {exc}") from exc


def http_json(url: str, data: Any = None, method: str | None = None, timeout: float = 5.0) -> Any:
    """Send JSON (when ``data`` is not None) and decode the JSON answer."""
    body = None if data is None else json.dumps(data).encode()
    request = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with _LOCAL.open(request, timeout=timeout) as response:
            raw = response.read()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise StackError(f"{method or ('POST' if body else 'GET')} {url}: {exc}") from exc
    return json.loads(raw) if raw else None


def local_env() -> dict[str, str]:
    """NO_PROXY/no_proxy extended with 127.0.0.1 and localhost, for children talking locally.

    google-genai's aiohttp session trusts the environment's proxies: without this, a CI
    runner with HTTPS_PROXY set would send the load's calls to the emulator via the proxy.
    """
    out = {}
    for key in ("NO_PROXY", "no_proxy"):
        parts = [p for p in os.environ.get(key, "").split(",") if p]
        out[key] = ",".join([*parts, *(h for h in ("127.0.0.1", "localhost") if h not in parts)])
    return out


class ManagedProcess:
    """A child process that is always stopped: by :meth:`stop`, the context manager, or atexit.

    Its stdout and stderr go to ``log_path``; :meth:`log_tail` shows the end in errors.
    The child gets a session of its own, so that a Ctrl-C in the terminal reaches only us
    and we stop the children in order (load before agent before Prometheus).
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        ready_url: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.ready_url = ready_url
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            self.argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **local_env(), **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
        _LIVE.add(self)

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.process.pid

    def running(self) -> bool:
        """True while the child has not exited."""
        return self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines of the child's output."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Poll ``ready_url`` until it answers 2xx; raise StackError (with the log) otherwise."""
        if self.ready_url is None:
            return
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if not self.running():
                raise StackError(
                    f"{self.name} exited with status {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                http_get(self.ready_url, timeout=2.0)
                return
            except StackError as exc:
                last = str(exc)
            time.sleep(0.2)
        raise StackError(f"{self.name} not ready after {timeout:.0f}s ({last}):\n{self.log_tail()}")

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, wait up to ``timeout``, then SIGKILL. Idempotent; returns the exit status."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                self.process.wait(timeout=5)
        if not self._log.closed:
            self._log.close()
        _LIVE.discard(self)
        return self.process.returncode

    def __enter__(self) -> ManagedProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@atexit.register
def _stop_leftovers() -> None:
    # The last line of defence: a crash between start and the context manager's exit
    # must not leave a Prometheus running on the user's machine.
    for proc in list(_LIVE):
        with contextlib.suppress(Exception):
            proc.stop(timeout=3)


@contextlib.contextmanager
def sigterm_as_exit() -> Iterator[None]:
    """Turn SIGTERM into SystemExit in the main thread, so that ``finally`` blocks run.

    A no-op outside the main thread (signal handlers can only be set there).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# --------------------------------------------------------------------------------------
# Configs.
# --------------------------------------------------------------------------------------


def prometheus_config(
    scrape_targets: Sequence[str],
    rule_files: Sequence[Path],
    alertmanager: str | None,
    interval: str = "1s",
) -> dict[str, Any]:
    """A prometheus.yml: scrape the agents, evaluate the rules, send alerts to Alertmanager.

    ``honor_labels`` keeps whatever labels the agent exposes as they are, the usual setting
    for scraping an aggregating exporter (the agent merges instances and exposes no
    ``job``/``instance`` of its own; Prometheus adds the agent target's).
    """
    config: dict[str, Any] = {
        "global": {
            "scrape_interval": interval,
            "scrape_timeout": interval,
            "evaluation_interval": interval,
        },
        "rule_files": [str(p.resolve()) for p in rule_files],
        "scrape_configs": [
            {
                "job_name": "gemini-slo-agent",
                "honor_labels": True,
                "static_configs": [{"targets": list(scrape_targets)}],
            }
        ],
    }
    if alertmanager:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    return config


def _fast_timers(route: dict[str, Any], timers: Mapping[str, str], root: bool = True) -> None:
    # The root gets every timer; child routes inherit from it, so only the timers a child
    # sets itself are overridden there.
    for key, value in timers.items():
        if root or key in route:
            route[key] = value
    for child in route.get("routes") or []:
        if isinstance(child, dict):
            _fast_timers(child, timers, root=False)


def alertmanager_config(
    webhook_url: str,
    generated: Mapping[str, Any] | None = None,
    timers: Mapping[str, str] = FAST_ROUTE_TIMERS,
) -> dict[str, Any]:
    """The generated Alertmanager config with every receiver replaced by our webhook.

    Routes, grouping and inhibition stay as generated (they are what is being tested);
    only the receivers' integrations (PagerDuty, Slack, ...) become one webhook, which
    reports the receiver's name in each notification, and the group timers become short.
    Without a generated config, one route to the webhook.
    """
    if generated is None:
        return {
            "route": {"receiver": "webhook", "group_by": ["alertname"], **timers},
            "receivers": [
                {
                    "name": "webhook",
                    "webhook_configs": [{"url": webhook_url, "send_resolved": True}],
                }
            ],
        }
    config: dict[str, Any] = json.loads(json.dumps(generated))  # a deep, plain copy
    config.pop("templates", None)  # relative template paths would not resolve from a temp dir
    global_section = config.get("global")
    if isinstance(global_section, dict):
        # Integration credentials (slack_api_url, pagerduty_url, ...) are not needed any more.
        config["global"] = {k: v for k, v in global_section.items() if k == "resolve_timeout"}
        if not config["global"]:
            config.pop("global")
    receivers = config.get("receivers") or [{"name": "webhook"}]
    config["receivers"] = [
        {
            "name": r["name"],
            "webhook_configs": [{"url": webhook_url, "send_resolved": True}],
        }
        for r in receivers
        if isinstance(r, dict) and "name" in r
    ]
    route = config.setdefault("route", {"receiver": config["receivers"][0]["name"]})
    _fast_timers(route, timers)
    return config


def write_yaml(path: Path, data: Any) -> Path:
    """Write ``data`` as YAML to ``path`` and return the path."""
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# --------------------------------------------------------------------------------------
# The stack.
# --------------------------------------------------------------------------------------


class Stack:
    """A webhook receiver, Alertmanager and Prometheus, started together in a temp dir.

    ``with Stack(scrape_targets=[agent], rule_files=[...], alertmanager_yaml=...) as s:``
    starts them (Alertmanager only when ``alertmanager=True`` and the binary exists) and
    stops them on exit. Files live in ``workdir`` (a fresh temp dir unless given; a temp
    dir made here is removed on stop unless ``keep=True``).

    The engine that stores and evaluates is Prometheus here; a subclass replaces it by
    overriding :meth:`_find_engines`, :meth:`_start_engines` and :meth:`_engine_processes`
    (``gemini_slo.lab.victoria.VictoriaStack``: VictoriaMetrics and vmalert).
    ``prometheus_url`` is the Prometheus HTTP API that :meth:`query` asks, ``rules_url`` the
    one that :meth:`alerts` and :meth:`rules` ask (the same server for Prometheus).
    """

    def __init__(
        self,
        scrape_targets: Sequence[str],
        *,
        rule_files: Sequence[Path] = (),
        alertmanager_yaml: Path | Mapping[str, Any] | None = None,
        alertmanager: bool = True,
        workdir: Path | None = None,
        keep: bool = False,
        interval: str = "1s",
        route_timers: Mapping[str, str] = FAST_ROUTE_TIMERS,
        prometheus_port: int | None = None,
    ) -> None:
        self.scrape_targets = list(scrape_targets)
        self._prometheus_port = prometheus_port
        self.rule_files = [Path(p) for p in rule_files]
        self._alertmanager_source = alertmanager_yaml
        self._want_alertmanager = alertmanager
        self._given_workdir = workdir
        self._keep = keep
        self._interval = interval
        self._route_timers = dict(route_timers)
        self.workdir: Path = Path()
        self.webhook: WebhookReceiver | None = None
        self.prometheus: ManagedProcess | None = None
        self.alertmanager: ManagedProcess | None = None
        self.prometheus_url = ""
        self.rules_url = ""
        self.alertmanager_url = ""
        self._made_workdir = False

    # ---- lifecycle --------------------------------------------------------------------

    def start(self, timeout: float = 90.0) -> Stack:
        """Start everything and wait until ready; on failure stop what started and raise."""
        self._find_engines()
        alertmanager_bin = find_binary(ALERTMANAGER_BINARIES) if self._want_alertmanager else None
        if self._want_alertmanager and alertmanager_bin is None:
            raise StackError(f"prometheus-alertmanager is not on PATH: {INSTALL_HINT}")
        if self._given_workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="gemini-slo-stack-"))
            self._made_workdir = True
        else:
            self.workdir = self._given_workdir
            self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            alertmanager_address = None
            if alertmanager_bin is not None:
                alertmanager_address = self._start_alertmanager(alertmanager_bin)
            self._start_engines(alertmanager_address, timeout)
            for proc in (self.alertmanager, *self._engine_processes()):
                if proc is not None:
                    proc.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _find_engines(self) -> None:
        """Raise StackError, saying how to install them, when the engines' binaries are missing."""
        if find_binary(PROMETHEUS_BINARIES) is None:
            raise StackError(f"prometheus is not on PATH: {INSTALL_HINT}")

    def _start_engines(self, alertmanager: str | None, timeout: float) -> None:
        """Start the engines (not waiting for them), alerting ``alertmanager`` when given."""
        binary = find_binary(PROMETHEUS_BINARIES)
        if binary is None:
            raise StackError(f"prometheus is not on PATH: {INSTALL_HINT}")
        self._start_prometheus(binary, alertmanager)

    def _engine_processes(self) -> list[ManagedProcess | None]:
        """The engines' processes, in the order they are stopped."""
        return [self.prometheus]

    def _start_alertmanager(self, binary: str) -> str:
        self.webhook = WebhookReceiver().start()
        generated: Mapping[str, Any] | None
        if self._alertmanager_source is None:
            generated = None
        elif isinstance(self._alertmanager_source, Path | str):
            generated = yaml.safe_load(Path(self._alertmanager_source).read_text())
        else:
            generated = self._alertmanager_source
        config = alertmanager_config(self.webhook.url, generated, self._route_timers)
        path = write_yaml(self.workdir / "alertmanager.yml", config)
        port = free_port()
        address = f"127.0.0.1:{port}"
        self.alertmanager_url = f"http://{address}"
        storage = self.workdir / "alertmanager-data"
        storage.mkdir(exist_ok=True)
        self.alertmanager = ManagedProcess(
            "alertmanager",
            [
                binary,
                f"--config.file={path}",
                f"--storage.path={storage}",
                f"--web.listen-address={address}",
                "--cluster.listen-address=",  # no gossip: one instance, no ports taken
            ],
            self.workdir / "alertmanager.log",
            ready_url=f"{self.alertmanager_url}/-/ready",
        )
        return address

    def _prometheus_config(self, alertmanager: str | None) -> dict[str, Any]:
        """prometheus.yml as data (a subclass may add to it)."""
        return prometheus_config(self.scrape_targets, self.rule_files, alertmanager, self._interval)

    def _prometheus_flags(self) -> list[str]:
        """Flags beyond the common ones (a subclass's feature flags)."""
        return []

    def _start_prometheus(self, binary: str, alertmanager: str | None) -> None:
        config = self._prometheus_config(alertmanager)
        path = write_yaml(self.workdir / "prometheus.yml", config)
        port = self._prometheus_port or free_port()
        address = f"127.0.0.1:{port}"
        self.prometheus_url = self.rules_url = f"http://{address}"
        storage = self.workdir / "prometheus-data"
        storage.mkdir(exist_ok=True)
        self.prometheus = ManagedProcess(
            "prometheus",
            [
                binary,
                f"--config.file={path}",
                f"--storage.tsdb.path={storage}",
                f"--web.listen-address={address}",
                "--web.enable-lifecycle",
                # Resend firing alerts every second (default 1m): the first sends happen
                # before Alertmanager is discovered and would otherwise wait a minute.
                "--rules.alert.resend-delay=1s",
                "--log.level=warn",
                *self._prometheus_flags(),
            ],
            self.workdir / "prometheus.log",
            ready_url=f"{self.prometheus_url}/-/ready",
        )

    def stop(self) -> None:
        """Stop the engines, Alertmanager and the webhook; remove a temp dir made here."""
        for proc in (*self._engine_processes(), self.alertmanager):
            if proc is not None:
                proc.stop()
        if self.webhook is not None:
            self.webhook.stop()
        if self._made_workdir and not self._keep:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self._made_workdir = False

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- queries ----------------------------------------------------------------------

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query; returns ``data.result`` (vector or matrix items; a scalar as one item)."""
        return query(self.prometheus_url, expr, at)

    def query_value(self, expr: str) -> float | None:
        """The value of a query that returns one series (or a scalar); None when it returns none."""
        result = self.query(expr)
        if not result:
            return None
        return float(result[0]["value"][1])

    def alerts(self) -> list[dict[str, Any]]:
        """Prometheus' active alerts (pending and firing), as ``/api/v1/alerts`` gives them."""
        data = http_json(f"{self.rules_url}/api/v1/alerts")
        alerts: list[dict[str, Any]] = data["data"]["alerts"]
        return alerts

    def rules(self) -> list[dict[str, Any]]:
        """Loaded rule groups (``/api/v1/rules``), to check that the generated rules loaded."""
        data = http_json(f"{self.rules_url}/api/v1/rules")
        groups: list[dict[str, Any]] = data["data"]["groups"]
        return groups

    def targets_up(self) -> bool:
        """True when every scrape target's last scrape succeeded."""
        data = http_json(f"{self.prometheus_url}/api/v1/targets")
        active = data["data"]["activeTargets"]
        return bool(active) and all(t.get("health") == "up" for t in active)

    def wait_scraped(self, timeout: float = 60.0) -> None:
        """Wait until every target has been scraped successfully at least once."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(StackError, KeyError):
                if self.targets_up():
                    return
            time.sleep(0.5)
        raise StackError(f"Prometheus did not scrape {self.scrape_targets} in {timeout:.0f}s")


def query(prometheus_url: str, expr: str, at: float | None = None) -> list[dict[str, Any]]:
    """An instant query against ``prometheus_url``; raises StackError on a PromQL error."""
    params = {"query": expr}
    if at is not None:
        params["time"] = f"{at:.3f}"
    url = f"{prometheus_url}/api/v1/query?{urllib.parse.urlencode(params)}"
    try:
        with _LOCAL.open(url, timeout=30) as response:
            data = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        raise StackError(f"query {expr!r}: HTTP {exc.code}: {detail}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise StackError(f"query {expr!r}: {exc}") from exc
    if data.get("status") != "success":
        raise StackError(f"query {expr!r}: {data.get('error')}")
    result = data["data"]["result"]
    if data["data"]["resultType"] in ("scalar", "string"):
        return [{"metric": {}, "value": result}]
    items: list[dict[str, Any]] = result
    return items


# --------------------------------------------------------------------------------------
# The emulator and the agent as child processes.
# --------------------------------------------------------------------------------------


def cli_argv(*args: str) -> list[str]:
    """``gemini-slo ARGS`` as an argv: the installed command, as a user runs it.

    The lab drives the product through its command line, never by importing the CLI (the
    CLI sits above the lab). The console script installed beside this interpreter is
    preferred, so a virtual environment's command is used even when it is not on PATH.
    """
    beside = Path(sys.executable).with_name("gemini-slo")
    command = str(beside) if beside.is_file() else shutil.which("gemini-slo")
    if command is None:
        raise StackError("the gemini-slo command is not installed (pip install -e .)")
    return [command, *args]


def start_emulator(
    workdir: Path,
    seed: int = 1,
    profile: Path | None = None,
    port: int | None = None,
    time_scale: float = 1.0,
) -> tuple[ManagedProcess, str]:
    """Start ``gemini-slo emulate`` on a free port; returns the process and its base URL."""
    port = port or free_port()
    argv = cli_argv(
        "--log-level", "warning", "emulate", "--port", str(port), "--seed", str(seed),
        "--time-scale", f"{time_scale:g}",
    )  # fmt: skip
    if profile is not None:
        argv += ["--profile", str(profile)]
    url = f"http://127.0.0.1:{port}"
    proc = ManagedProcess(
        "emulator", argv, workdir / "emulator.log", ready_url=f"{url}/_emulator/stats"
    )
    return proc, url


def start_agent(
    workdir: Path,
    spec: Path | None = None,
    otlp_port: int | None = None,
    metrics_port: int | None = None,
    *,
    extra: Sequence[str] = (),
    log_name: str = "agent.log",
    prometheus_url: str | None = None,
) -> tuple[ManagedProcess, str, str]:
    """Start ``gemini-slo agent [EXTRA]``; returns the process, its OTLP URL and metrics address.

    ``prometheus_url``: the Prometheus whose alerts the agent's SLO page lists.
    """
    otlp = f"127.0.0.1:{otlp_port or free_port()}"
    metrics = f"127.0.0.1:{metrics_port or free_port()}"
    # No OTLP/gRPC listener unless EXTRA asks (--grpc HOST:PORT): 4317 may be taken.
    argv = cli_argv(
        "--log-level", "warning", "agent", "--otlp", otlp, "--metrics", metrics, "--grpc", "off"
    )
    if spec is not None:
        argv += ["--config", str(spec)]
    if prometheus_url is not None:
        argv += ["--prometheus", prometheus_url]
    argv += list(extra)
    proc = ManagedProcess("agent", argv, workdir / log_name, ready_url=f"http://{metrics}/readyz")
    return proc, f"http://{otlp}", metrics


# --------------------------------------------------------------------------------------
# Generated artifacts for a spec.
# --------------------------------------------------------------------------------------


def scaled_spec(
    source: Path, out: Path, window_scale: float = 60.0, scrape_interval: str = "1s"
) -> Path:
    """Write a copy of the spec at ``source`` with short alert windows, for demos and tests.

    Only the spec's own options change (``alerting.window_scale`` and the scrape interval
    its minimum rate window derives from), so that the rules under test are the ones
    ``gemini-slo generate`` makes for any user, just with shorter windows.
    """
    document = yaml.safe_load(source.read_text(encoding="utf-8"))
    alerting = document.setdefault("alerting", {})
    alerting["window_scale"] = window_scale
    alerting["scrape_interval"] = scrape_interval
    out.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return out


class Generated:
    """What ``gemini-slo generate`` wrote into a directory, found by content, not by name."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.rule_files: list[Path] = []
        self.alertmanager_yaml: Path | None = None
        self.dashboards: list[Path] = []
        for path in sorted(root.rglob("*")):
            if path.suffix in (".yaml", ".yml"):
                self._classify_yaml(path)
            elif path.suffix == ".json":
                self.dashboards.append(path)

    def _classify_yaml(self, path: Path) -> None:
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, OSError):
            return
        if not isinstance(document, dict):
            return
        if "groups" in document and "tests" not in document:
            self.rule_files.append(path)
        elif "route" in document and "receivers" in document:
            self.alertmanager_yaml = path


def generate(spec: Path, out: Path, timeout: float = 120.0) -> Generated:
    """Run ``gemini-slo generate --spec SPEC --out OUT`` and index what it wrote."""
    out.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        cli_argv("--log-level", "warning", "generate", "--spec", str(spec), "--out", str(out)),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise StackError(f"gemini-slo generate failed ({result.returncode}):\n{result.stderr}")
    generated = Generated(out)
    if not generated.rule_files:
        raise StackError(f"gemini-slo generate wrote no rule files into {out}")
    return generated


# --------------------------------------------------------------------------------------
# Everything at once: emulator, agent, loads, Prometheus, Alertmanager.
# --------------------------------------------------------------------------------------


class FullStack:
    """The demo's system: emulator + agent on a scaled spec, loads, and the monitoring stack.

    ``monitoring=False`` (or missing binaries with ``monitoring=None``) leaves out
    Prometheus and Alertmanager. Every process is a child of ours and stops on
    :meth:`stop` (and at exit). Files (spec, generated rules and dashboards, logs, load
    summaries) live in ``workdir``.

    What receives the apps' OTLP is the agent here; a subclass replaces the agent and the
    monitoring stack by overriding :meth:`_start_pipeline`, :meth:`_workloads_with_ok_calls`
    and :meth:`_watched` (``gemini_slo.lab.victoria.VictoriaFullStack``: the apps export
    straight to VictoriaMetrics). The loads export to ``otlp_url`` either way.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        spec: Path | None = None,
        window_scale: float = 60.0,
        time_scale: float = 0.3,
        seed: int = 1,
        monitoring: bool | None = None,
    ) -> None:
        from gemini_slo.contract.spec import default_spec_path

        self.workdir = workdir
        self.source_spec = spec or default_spec_path()
        self.window_scale = window_scale
        self.time_scale = time_scale
        self.seed = seed
        self.monitoring = binaries_available() if monitoring is None else monitoring
        self.spec_path = workdir / "slo.yaml"
        self.generated: Generated | None = None
        self.emulator: ManagedProcess | None = None
        self.emulator_url = ""
        self.agent: ManagedProcess | None = None
        self.otlp_url = ""
        self.metrics_address = ""
        self.stack: Stack | None = None
        self.loads: list[ManagedProcess] = []

    @property
    def agent_url(self) -> str:
        """Base URL of the agent's HTTP server (/metrics, /api/slo, and the SLO page at /)."""
        return f"http://{self.metrics_address}"

    @property
    def page_url(self) -> str:
        """The agent's SLO page."""
        return f"{self.agent_url}/"

    def start(self, timeout: float = 90.0) -> FullStack:
        """Start emulator, agent and (when enabled) Prometheus + Alertmanager; wait for ready.

        Also adds 127.0.0.1 and localhost to this process' NO_PROXY: every client of the
        stack (urllib in the emulator's and the agent's helpers, google-genai) would
        otherwise route local calls through an HTTP(S)_PROXY set in the environment.
        """
        os.environ.update(local_env())
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            scaled_spec(self.source_spec, self.spec_path, self.window_scale)
            # Dashboards and rules are generated even without Prometheus: they are files.
            self.generated = generate(self.spec_path, self.workdir / "generated")
            self.emulator, self.emulator_url = start_emulator(
                self.workdir, seed=self.seed, time_scale=self.time_scale
            )
            self._start_pipeline(self.generated, timeout)
            self.emulator.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_pipeline(self, generated: Generated, timeout: float) -> None:
        """Start what receives the OTLP (the agent) and the monitoring; wait until ready."""
        # Prometheus' port is chosen first: the agent's page lists its alerts.
        prometheus_port = free_port() if self.monitoring else None
        self.agent, self.otlp_url, self.metrics_address = start_agent(
            self.workdir,
            spec=self.spec_path,
            prometheus_url=None
            if prometheus_port is None
            else f"http://127.0.0.1:{prometheus_port}",
        )
        if self.monitoring:
            self.stack = Stack(
                [self.metrics_address],
                rule_files=generated.rule_files,
                alertmanager_yaml=generated.alertmanager_yaml,
                workdir=self.workdir / "monitoring",
                prometheus_port=prometheus_port,
            )
            self.stack.start(timeout)
        self.agent.wait_ready(timeout)

    def start_load(
        self, mode: str, *args: str, name: str | None = None, duration: float = 600.0
    ) -> ManagedProcess:
        """Start ``gemini-slo load --mode MODE ARGS`` against our emulator and agent.

        Its summary JSON goes to ``<workdir>/load-<name>.json`` once it ends.
        """
        name = name or mode
        argv = cli_argv(
            "--log-level",
            "warning",
            "load",
            "--mode",
            mode,
            "--emulator",
            self.emulator_url,
            "--agent",
            self.otlp_url,
            "--duration",
            f"{duration:g}",
            "--json",
            str(self.workdir / f"load-{name}.json"),
            "--spec",
            str(self.spec_path),
            *args,
        )
        proc = ManagedProcess(f"load-{name}", argv, self.workdir / f"load-{name}.log")
        self.loads.append(proc)
        return proc

    def restart_finished_loads(self) -> list[str]:
        """Start again, with the same options, every load that ended by itself (status 0).

        Keeps traffic flowing for as long as the stack stays up, in runs of a bounded length
        (each load keeps every call it made in memory). Returns the names restarted; raises
        StackError (with its log) for a load that failed.
        """
        restarted = []
        for i, proc in enumerate(self.loads):
            if proc.running():
                continue
            if proc.process.returncode != 0:
                raise StackError(
                    f"{proc.name} exited ({proc.process.returncode}):\n{proc.log_tail()}"
                )
            proc.stop()
            self.loads[i] = ManagedProcess(proc.name, proc.argv, proc.log_path)
            restarted.append(proc.name)
        return restarted

    def _watched(self) -> list[ManagedProcess | None]:
        """The processes whose exit :meth:`check_alive` reports."""
        return [self.emulator, self.agent, *self.loads]

    def check_alive(self) -> None:
        """Raise StackError (with its log) when a process of ours has exited."""
        for proc in self._watched():
            if proc is not None and not proc.running():
                raise StackError(
                    f"{proc.name} exited ({proc.process.returncode}):\n{proc.log_tail()}"
                )

    def wait_for_traffic(self, workloads: Sequence[str], timeout: float = 120.0) -> None:
        """Wait until successful calls of every workload have arrived (loads and export up)."""
        deadline = time.monotonic() + timeout
        missing = set(workloads)
        while time.monotonic() < deadline:
            self.check_alive()
            with contextlib.suppress(StackError):
                missing = set(workloads) - self._workloads_with_ok_calls(workloads)
                if not missing:
                    return
            time.sleep(1)
        raise StackError(
            f"no successful calls of {sorted(missing)} reached {self.otlp_url} in {timeout:.0f}s"
        )

    def _workloads_with_ok_calls(self, workloads: Sequence[str]) -> set[str]:
        """Those of ``workloads`` with successful calls in the agent's own /metrics.

        Read from the agent, so that it works with or without Prometheus.
        """
        from gemini_slo.contract import signals as S

        text = http_get(f"{self.agent_url}/metrics").decode(errors="replace")
        return {
            w
            for w in workloads
            if any(
                line.startswith(S.CALLS.prometheus)
                and f'{S.LABEL_WORKLOAD}="{w}"' in line
                and f'{S.LABEL_OUTCOME}="{S.Outcome.OK}"' in line
                for line in text.splitlines()
            )
        }

    def stop_loads(self, timeout: float = 60.0) -> None:
        """Stop the loads (SIGTERM: they stop starting calls and flush their signals)."""
        for proc in self.loads:
            if proc.running():
                with contextlib.suppress(ProcessLookupError):
                    proc.process.send_signal(signal.SIGTERM)
        for proc in self.loads:
            proc.stop(timeout=timeout)

    def stop(self) -> None:
        """Stop everything this stack started, loads first. Idempotent."""
        with contextlib.suppress(Exception):
            self.stop_loads(timeout=10)
        if self.stack is not None:
            self.stack.stop()
        for proc in (self.agent, self.emulator):
            if proc is not None:
                proc.stop()

    def __enter__(self) -> FullStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
