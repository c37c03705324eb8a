"""Shared pieces of the dashboards: datasource, variables, panel factories, layout.

Every panel gets the ``$datasource`` variable as its datasource and refIds A, B, C... in
the order its queries are added. Layout is explicit: :class:`Grid` places panels left to
right in rows of 24 columns, so positions never overlap and never depend on the SDK's
auto-placement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gemini_slo.contract import promql
from gemini_slo.contract import signals as s
from gemini_slo.contract.artifacts import GENERATED_BY
from gemini_slo.contract.signals import Mode
from gemini_slo.contract.spec import SloSpec, format_duration
from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus, stat, table, timeseries
from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import prometheus as pm

DATASOURCE_VAR = "datasource"
WORKLOAD_VAR = "workload"
MODEL_VAR = "model"
JOB_VAR = "job"
DATASOURCE = dm.DataSourceRef(type_val="prometheus", uid=f"${{{DATASOURCE_VAR}}}")
#: The uid of the datasource the provisioning file creates (the variable's default).
PROVISIONED_DATASOURCE_UID = "gemini-slo-prometheus"
PROVISIONED_DATASOURCE_NAME = "Prometheus (gemini-slo)"
TAG = "gemini-slo"

#: Matchers every query of a workload dashboard uses.
WORKLOAD = f'{s.LABEL_WORKLOAD}=~"${WORKLOAD_VAR}"'
MODEL = f'{s.LABEL_MODEL}=~"${MODEL_VAR}"'
JOB = f'{promql.JOB}=~"${JOB_VAR}"'
#: Matchers of every query of raw (not recorded) series: the workload and the job.
RAW = f"{WORKLOAD},{JOB}"


def legend(label: str) -> str:
    """Grafana's legend placeholder for a Prometheus label (``{{label}}``)."""
    return "{{" + label + "}}"


#: Raw rates use Grafana's $__rate_interval (at least 4 scrape intervals of the datasource).
RATE = "$__rate_interval"

GREEN, YELLOW, RED = "green", "yellow", "red"


def uid(name: str) -> str:
    """A dashboard's deterministic uid: ``gemini-slo-<name>``."""
    return f"gemini-slo-{name}"


def description(spec: SloSpec, what: str) -> str:
    """Dashboard description: what it shows, and that it is generated."""
    return f"{what} {GENERATED_BY.format(source=spec.source).capitalize()}."


def new_dashboard(
    spec: SloSpec, name: str, title: str, what: str, workloads: str = ""
) -> Dashboard:
    """A dashboard with gemini-slo's uid, tags, time range, links to its siblings and an
    annotation of firing alerts for ``workloads`` (a matcher; default: ``$workload``)."""
    return (
        Dashboard(title)
        .uid(uid(name))
        .description(description(spec, what))
        .tags([TAG])
        .time("now-1h", "now")
        .refresh("30s")
        .timezone("browser")
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
        .editable()
        .annotation(
            db.AnnotationQuery()
            .name("Annotations & Alerts")
            .datasource(dm.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
            .enable(True)
            .hide(True)
            .icon_color("rgba(0, 211, 255, 1)")
            .type("dashboard")
            .built_in(1)
        )
        .annotation(
            # Firing gemini-slo alerts of the selected workload(s), drawn on every graph.
            db.AnnotationQuery()
            .name("gemini-slo alerts")
            .datasource(DATASOURCE)
            .enable(True)
            .icon_color("red")
            .expr(f'ALERTS{{alertstate="firing",{workloads or WORKLOAD}}}')
        )
        .link(
            db.DashboardLink("Gemini SLO")
            .type(dm.DashboardLinkType.DASHBOARDS)
            .tags([TAG])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
    )


def datasource_variable() -> db.DatasourceVariable:
    """The Prometheus datasource picker, defaulting to the provisioned datasource."""
    return (
        db.DatasourceVariable(DATASOURCE_VAR)
        .label("Datasource")
        .type("prometheus")
        .current(
            dm.VariableOption(
                selected=True, text=PROVISIONED_DATASOURCE_NAME, value=PROVISIONED_DATASOURCE_UID
            )
        )
    )


# ---- variables driven by labels ------------------------------------------------------
# $workload and $model come from label_values() over the duration histogram, which both the
# project's instrumentation and every OpenTelemetry GenAI emitter send (a foreign series
# gets its workload from the spec's selectors, see docs/official-instrumentation.md); the
# spec's first workload of the mode is the default. $job selects the scrape job (the agent,
# or each app behind an OpenTelemetry Collector) in every query of raw series; recorded SLO
# series are summed over jobs by the rules and are selected by workload only.

#: The series the label-driven variables read: the duration histogram's count.
VARIABLE_SOURCE = f"{s.OPERATION_DURATION.prometheus}_count"


def _query_variable(name: str, label: str, query: str) -> db.QueryVariable:
    return (
        db.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query({"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"})
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
    )


def job_variable() -> db.QueryVariable:
    """The scrape jobs that send the duration histogram; All (any job, or none) by default."""
    return (
        _query_variable(JOB_VAR, "Job", f"label_values({VARIABLE_SOURCE}, {promql.JOB})")
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(dm.VariableOption(selected=True, text="All", value="$__all"))
    )


def workload_variable(spec: SloSpec, mode: Mode | None) -> db.QueryVariable:
    """The workloads seen in the duration histogram (of one mode, or all); the spec's
    first one of the mode selected by default."""
    names = [w.name for w in spec.workloads if mode is None or w.mode is mode]
    first = names[0] if names else ""
    matchers = [JOB] + ([f'{s.LABEL_MODE}="{mode.value}"'] if mode is not None else [])
    query = f"label_values({promql.sel(VARIABLE_SOURCE, *matchers)}, {s.LABEL_WORKLOAD})"
    return (
        _query_variable(WORKLOAD_VAR, "Workload", query)
        .current(dm.VariableOption(selected=True, text=first, value=first))
        .multi(False)
    )


def model_variable() -> db.QueryVariable:
    """The models the selected workload called, from the duration histogram; All by default."""
    query = f"label_values({promql.sel(VARIABLE_SOURCE, WORKLOAD, JOB)}, {s.LABEL_MODEL})"
    return (
        _query_variable(MODEL_VAR, "Model", query)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(dm.VariableOption(selected=True, text="All", value="$__all"))
    )


@dataclass(frozen=True, slots=True)
class Query:
    """One PromQL query of a panel and its legend."""

    expr: str
    legend: str = ""
    instant: bool = False


def _targets(queries: Sequence[Query], table_format: bool = False) -> list[prometheus.Dataquery]:
    targets = []
    for i, q in enumerate(queries):
        t = (
            prometheus.Dataquery()
            .expr(q.expr)
            .ref_id(chr(ord("A") + i))
            .datasource(DATASOURCE)
            .editor_mode(pm.QueryEditorMode.CODE)
        )
        if q.legend:
            t = t.legend_format(q.legend)
        t = t.instant() if q.instant else t.range()
        if table_format:
            t = t.format(pm.PromQueryFormat.TABLE)
        targets.append(t)
    return targets


def steps(*levels: tuple[float | None, str]) -> db.ThresholdsConfig:
    """Absolute threshold steps; the first level must be None (the base colour)."""
    return (
        db.ThresholdsConfig()
        .mode(dm.ThresholdsMode.ABSOLUTE)
        .steps([dm.Threshold(value=v, color=c) for v, c in levels])
    )


def ceiling(limit: float | None) -> db.ThresholdsConfig:
    """Green below ``limit``, red from it (no limit: all green)."""
    return steps((None, GREEN), (limit, RED)) if limit is not None else steps((None, GREEN))


def floor(limit: float | None) -> db.ThresholdsConfig:
    """Red below ``limit``, green from it."""
    return steps((None, RED), (limit, GREEN)) if limit is not None else steps((None, GREEN))


def timeseries_panel(  # noqa: PLR0917 - thresholds and minimum read well positionally
    title: str,
    queries: Sequence[Query],
    unit: str,
    desc: str,
    thresholds: db.ThresholdsConfig | None = None,
    minimum: float | None = None,
) -> timeseries.Panel:
    """A time series with a table legend; thresholds (objective lines) drawn dashed."""
    p = (
        timeseries.Panel()
        .title(title)
        .description(desc)
        .datasource(DATASOURCE)
        .targets(list(_targets(queries)))
        .unit(unit)
        .line_width(1)
        .fill_opacity(10)
        .legend(
            cb.VizLegendOptions()
            .display_mode(cm.LegendDisplayMode.TABLE)
            .placement(cm.LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs(["lastNotNull", "max"])
        )
    )
    if minimum is not None:
        p = p.min(minimum)
    if thresholds is not None:
        p = p.thresholds(thresholds).thresholds_style(
            cb.GraphThresholdsStyleConfig().mode(cm.GraphThresholdsStyleMode.DASHED)
        )
    return p


def stat_panel(
    title: str,
    queries: Sequence[Query],
    unit: str,
    desc: str,
    thresholds: db.ThresholdsConfig,
) -> stat.Panel:
    """A stat of the last value, coloured by ``thresholds``."""
    return (
        stat.Panel()
        .title(title)
        .description(desc)
        .datasource(DATASOURCE)
        .targets(list(_targets(queries)))
        .unit(unit)
        .thresholds(thresholds)
        .color_mode(cm.BigValueColorMode.BACKGROUND)
        .graph_mode(cm.BigValueGraphMode.AREA)
        .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )


def table_panel(title: str, queries: Sequence[Query], desc: str) -> table.Panel:
    """An instant table (one row per series)."""
    return (
        table.Panel()
        .title(title)
        .description(desc)
        .datasource(DATASOURCE)
        .targets(list(_targets(queries, table_format=True)))
    )


class Grid:
    """Explicit layout: rows of panels, left to right, 24 columns wide."""

    def __init__(self, dashboard: Dashboard) -> None:
        self.dashboard = dashboard
        self.y = 0
        self.x = 0
        self.row_height = 0
        self.next_id = 1

    def row(self, title: str) -> None:
        """Start a (non-collapsible in effect: always expanded) row header."""
        self._newline()
        self.dashboard.with_row(
            db.Row(title).id(self._id()).grid_pos(dm.GridPos(h=1, w=24, x=0, y=self.y))
        )
        self.y += 1

    def add(self, panel: cogbuilder.Builder[dm.Panel], w: int, h: int = 8) -> None:
        """Place a panel of width ``w`` (columns) and height ``h`` on the current line."""
        if self.x + w > 24:
            self._newline()
        built = panel.build()
        built.id_val = self._id()
        built.grid_pos = dm.GridPos(h=h, w=w, x=self.x, y=self.y)
        self.dashboard.with_panel(_Built(built))
        self.x += w
        self.row_height = max(self.row_height, h)

    def _newline(self) -> None:
        if self.x > 0:
            self.y += self.row_height
        self.x = 0
        self.row_height = 0

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id - 1


class _Built(cogbuilder.Builder[dm.Panel]):
    """Wraps an already built panel so Dashboard.with_panel can take it."""

    def __init__(self, panel: dm.Panel) -> None:
        self._panel = panel

    def build(self) -> dm.Panel:
        return self._panel


def window_label(spec: SloSpec, nominal_seconds: float) -> str:
    """The real length of a nominal recording window under the spec's window_scale."""
    return format_duration(spec.alerting.window(nominal_seconds))
