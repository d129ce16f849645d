"""The status page's objectives: a panel per objective with its status, SLI, a gauge of
the error budget left and a burn-down chart of it over the window (SVG drawn here, as
the page's other charts are shapes in SVG), and the burn rates."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from vigil._kit.durations import format_duration

if TYPE_CHECKING:
    from vigil._slo.objectives import Report

#: The burn-down chart's size in SVG units.
CHART_W, CHART_H = 120, 28


def _points(points: list[tuple[float, float]], start: float, window: float) -> str:
    """The chart's polyline: time across, the budget left up (0 at the bottom: what is
    overspent lies on it)."""
    step = max(1, len(points) // CHART_W)
    shown = points[::step] + ([points[-1]] if len(points) % step != 1 else [])
    return " ".join(f"{(at - start) / window * CHART_W:.1f},"
                    f"{CHART_H - max(0.0, min(1.0, left)) * CHART_H:.1f}"
                    for at, left in shown if at >= start)


def _panel(report: Report, points: list[tuple[float, float]], now: float) -> str:
    left, budget = report.budget_remaining, escape(report.budget_left())
    sli = "no runs yet" if report.sli is None else f"{report.sli * 100:.3f}%"
    scarce = report.too_little_data
    held = f" (held back: {escape(', '.join(map(str, report.held)))})" if report.held else ""
    data = f'<p class="data">too little data: {escape(scarce)}{held}</p>' if scarce else ""
    span = format_duration(report.window)
    rates = "".join(f"<tr><th scope=row>{name}</th><td>{rate:.2f}</td></tr>"
                    for name, rate in report.burn_rate.items())
    gauge = max(0.0, min(1.0, left)) * 100
    return f"""<li class="slo sl-{report.status}" id="slo-{escape(report.name)}">
<div class="head"><h3>{escape(report.name)}</h3>
<span class="status sl-{report.status}">{report.status}</span></div>
<p>{report.objective * 100:g}% over {span} of {escape(", ".join(report.checks))}
({escape(report.kind)}): SLI {sli}, {report.good:,} good of {report.total:,}</p>{data}
<svg class="gauge" viewBox="0 0 100 6" preserveAspectRatio="none" role="img"
 aria-label="error budget: {budget}"><rect class="used" x="0" y="0" width="100"
 height="6"/><rect class="left" x="0" y="0" width="{gauge:.1f}" height="6"/></svg>
<p class="scale">error budget: {budget}</p>
<svg class="chart burndown" viewBox="0 0 {CHART_W} {CHART_H}" preserveAspectRatio="none"
 role="img" aria-label="error budget left over the last {span}"><polyline
 points="{_points(points, now - report.window, report.window)}"/></svg>
<p class="scale">budget burn-down over {span}</p>
<div class="panel"><table><caption>Burn rate</caption>{rates}</table></div></li>"""


def render(reports: list[Report], burndowns: dict[str, list[tuple[float, float]]],
           now: float) -> str:
    """The page's Objectives section; "" without objectives."""
    if not reports:
        return ""
    panels = "".join(_panel(r, burndowns.get(r.name, []), now)
                     for r in sorted(reports, key=lambda r: r.name))
    return (f'<section aria-labelledby="slos-h"><h2 id="slos-h">Objectives</h2>'
            f'<ul class="slos" id="slos">{panels}</ul></section>')


def feeds(reports: list[Report]) -> dict[str, list[str]]:
    """The objectives each check feeds, by check."""
    found: dict[str, list[str]] = {}
    for report in sorted(reports, key=lambda r: r.name):
        for check in report.checks:
            found.setdefault(check, []).append(report.name)
    return found
