"""Line charts as SVG, drawn on the server: no script, no library, nothing fetched.

:func:`line_chart` turns a few series of (time, value) points and a few horizontal
reference lines (an objective's threshold) into one ``<svg>`` element for the SLO page.
Colours and fonts come from CSS classes (:data:`STYLE`, which the page puts in its one
stylesheet), so that the page's Content-Security-Policy can forbid inline styles. Every
text is escaped. A NaN point is a gap in its line, never a drop to zero; a series with
more points than the chart has pixels is averaged down to one point per pixel column.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from gemini_slo.agent.display import format_tick

#: Series colours, by index (class ``s0`` .. ``s3``), and the reference lines' colour.
STYLE = """
svg.chart { width: 100%; height: auto; display: block; }
svg.chart text { font: 11px system-ui, sans-serif; fill: #6b7280; }
svg.chart text.title { font-size: 12px; font-weight: 600; fill: #374151; }
svg.chart .grid { stroke: #eceef2; stroke-width: 1; }
svg.chart .axis { stroke: #d1d5db; stroke-width: 1; }
svg.chart .line { fill: none; stroke-width: 1.8; stroke-linejoin: round; stroke-linecap: round; }
svg.chart .ref { stroke: #dc2626; stroke-width: 1.2; stroke-dasharray: 5 4; }
svg.chart text.ref-label { fill: #b91c1c; }
svg.chart .s0 { stroke: #2563eb; } svg.chart .k0 { fill: #2563eb; }
svg.chart .s1 { stroke: #7c3aed; } svg.chart .k1 { fill: #7c3aed; }
svg.chart .s2 { stroke: #0d9488; } svg.chart .k2 { fill: #0d9488; }
svg.chart .s3 { stroke: #d97706; } svg.chart .k3 { fill: #d97706; }
"""

PALETTE_SIZE = 4
_PAD_LEFT = 58
_PAD_RIGHT = 12
_PAD_TOP = 40
_PAD_BOTTOM = 22
_TIME_STEPS = (
    5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 3 * 3600, 6 * 3600, 12 * 3600, 86400,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Series:
    """One line: its legend label and its (unix time, value) points, oldest first."""

    label: str
    points: Sequence[tuple[float, float]]


@dataclass(frozen=True, slots=True)
class Reference:
    """A horizontal line at ``value``: an objective's threshold."""

    label: str
    value: float


#: Round axis tops (times a power of ten) and how many grid steps divide each evenly.
_NICE_TOPS = ((1.0, 5), (2.0, 4), (2.5, 5), (5.0, 5), (10.0, 5))


def nice_axis(value: float) -> tuple[float, int]:
    """The smallest round top at or above ``value`` and its grid steps (1, 5 for nothing)."""
    if not math.isfinite(value) or value <= 0:
        return 1.0, 5
    exponent = math.floor(math.log10(value))
    for leading, steps in _NICE_TOPS:
        top = leading * 10.0**exponent
        if top >= value * (1 - 1e-12):
            return top, steps
    return 10.0 ** (exponent + 1), 5  # pragma: no cover - 10 x 10^k always fits


def _downsample(points: Sequence[tuple[float, float]], buckets: int) -> list[tuple[float, float]]:
    if len(points) <= buckets:
        return list(points)
    start, end = points[0][0], points[-1][0]
    width = (end - start) / buckets or 1.0
    sums: dict[int, list[float]] = {}
    for t, v in points:
        index = min(int((t - start) / width), buckets - 1)
        acc = sums.setdefault(index, [0.0, 0.0, 0.0, 0.0])  # time sum, count, value sum, n
        acc[0] += t
        acc[1] += 1
        if not math.isnan(v):
            acc[2] += v
            acc[3] += 1
    return [
        (acc[0] / acc[1], acc[2] / acc[3] if acc[3] else math.nan)
        for _, acc in sorted(sums.items())
    ]


def _time_label(t: float, step: float) -> str:
    return time.strftime("%H:%M:%S" if step < 60 else "%H:%M", time.localtime(t))


def line_chart(
    title: str,
    series: Sequence[Series],
    references: Sequence[Reference] = (),
    *,
    start: float,
    end: float,
    unit: str,
    width: int = 460,
    height: int = 170,
) -> str:
    """One chart as an ``<svg>`` element (see the module docstring)."""
    end = max(end, start + 1.0)
    plot_w = width - _PAD_LEFT - _PAD_RIGHT
    plot_h = height - _PAD_TOP - _PAD_BOTTOM
    lines = [
        (s, _downsample([p for p in s.points if start <= p[0] <= end], plot_w)) for s in series
    ]
    values = [v for _, pts in lines for _, v in pts if math.isfinite(v)]
    values += [r.value for r in references if math.isfinite(r.value)]
    top, steps = nice_axis(max(values, default=0.0) * 1.1)

    def x(t: float) -> float:
        return _PAD_LEFT + (t - start) / (end - start) * plot_w

    def y(v: float) -> float:
        return _PAD_TOP + plot_h - min(max(v, 0.0), top) / top * plot_h

    out = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<text class="title" x="{_PAD_LEFT}" y="14">{escape(title)}</text>',
    ]
    # Legend: one swatch and label per series, then the reference lines.
    legend_x = float(_PAD_LEFT)
    for i, (s, _) in enumerate(lines):
        tone = i % PALETTE_SIZE
        out.append(
            f'<rect class="k{tone}" x="{legend_x:.1f}" y="22" width="10" height="3" rx="1"/>'
            f'<text x="{legend_x + 14:.1f}" y="27">{escape(s.label)}</text>'
        )
        legend_x += 22 + 6.2 * len(s.label)
    # Horizontal grid with value labels.
    for k in range(steps + 1):
        v = top * k / steps
        gy = y(v)
        out.append(
            f'<line class="grid" x1="{_PAD_LEFT}" x2="{width - _PAD_RIGHT}" '
            f'y1="{gy:.1f}" y2="{gy:.1f}"/>'
            f'<text x="{_PAD_LEFT - 6}" y="{gy + 4:.1f}" text-anchor="end">'
            f"{escape(format_tick(v, unit))}</text>"
        )
    # Time ticks: about five, on round times.
    step = next((s for s in _TIME_STEPS if (end - start) / s <= 5), _TIME_STEPS[-1])
    tick = math.ceil(start / step) * step
    while tick <= end:
        tx = x(tick)
        # A label at either end of the axis is kept inside the chart.
        anchor = "end" if tx > width - 30 else "start" if tx < _PAD_LEFT + 10 else "middle"
        out.append(
            f'<line class="axis" x1="{tx:.1f}" x2="{tx:.1f}" y1="{_PAD_TOP + plot_h}" '
            f'y2="{_PAD_TOP + plot_h + 4}"/>'
            f'<text x="{tx:.1f}" y="{height - 6}" text-anchor="{anchor}">'
            f"{_time_label(tick, step)}</text>"
        )
        tick += step
    out.append(
        f'<line class="axis" x1="{_PAD_LEFT}" x2="{width - _PAD_RIGHT}" '
        f'y1="{_PAD_TOP + plot_h}" y2="{_PAD_TOP + plot_h}"/>'
    )
    placed: list[float] = []
    for r in sorted((r for r in references if math.isfinite(r.value)), key=lambda r: r.value):
        ry = y(r.value)
        # Labels sit above their line at the right end; one that would overlap the label
        # below it goes to the left end instead.
        left = any(abs(ry - other) < 18 for other in placed)
        placed.append(ry)
        lx, anchor = (_PAD_LEFT + 4, "start") if left else (width - _PAD_RIGHT, "end")
        out.append(
            f'<line class="ref" x1="{_PAD_LEFT}" x2="{width - _PAD_RIGHT}" '
            f'y1="{ry:.1f}" y2="{ry:.1f}"/>'
            f'<text class="ref-label" x="{lx}" y="{ry - 4:.1f}" '
            f'text-anchor="{anchor}">{escape(r.label)}</text>'
        )
    drawn = False
    for i, (_, pts) in enumerate(lines):
        path = _path(pts, x, y)
        if path:
            drawn = True
            out.append(f'<path class="line s{i % PALETTE_SIZE}" d="{path}"/>')
    if not drawn:
        out.append(
            f'<text x="{_PAD_LEFT + plot_w / 2:.1f}" y="{_PAD_TOP + plot_h / 2:.1f}" '
            'text-anchor="middle">no data yet</text>'
        )
    out.append("</svg>")
    return "".join(out)


def _path(
    points: Sequence[tuple[float, float]],
    x: Callable[[float], float],
    y: Callable[[float], float],
) -> str:
    """An SVG path through the points, lifting the pen over NaN gaps."""
    segments: list[list[str]] = [[]]
    for t, v in points:
        if not math.isfinite(v):
            if segments[-1]:
                segments.append([])
            continue
        segments[-1].append(f"{x(t):.1f},{y(v):.1f}")
    parts = []
    for segment in segments:
        if segment:
            # A lone point is a dot (round caps draw it), not nothing.
            parts.append("M" + "L".join(segment) + ("h0.1" if len(segment) == 1 else ""))
    return "".join(parts)
