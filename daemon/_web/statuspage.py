"""``/status``: the status page, rendered on the server from the check table, the healer
and the history, with its stylesheet and script inline (nothing from a CDN, nothing
from disk). The script (``status.js``, beside this module) follows the event stream."""

from __future__ import annotations

import importlib.resources
import json
import socket
import time
from html import escape
from typing import TYPE_CHECKING, Any

from vigil._kit.durations import format_duration
from vigil._kit.redact import redact, redact_value
from vigil._store.records import CheckEntry, Held, ServiceEntry, State
from vigil._web import slopanel
from vigil._web.statusdata import HealLine, Seen

if TYPE_CHECKING:
    from vigil._baseline.watch import SeriesView
    from vigil._slo.objectives import Report

STATE_MARK = {State.OK: "✓", State.FAILING: "✕", State.PENDING: "…",
              State.MAINTENANCE: "⏸"}
#: The chart's size in SVG units (the script draws in it).
CHART_W, CHART_H = 120, 28


def _asset(name: str) -> str:
    return importlib.resources.files("vigil._web").joinpath(name).read_text(encoding="utf-8")


def _ago(at: float | None, now: float) -> str:
    if at is None:
        return "never"
    seconds = max(0, int(now - at))
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}%".replace("100.00%", "100%")


def figure(value: float) -> str:
    """A metric as a person reads it: whole numbers whole (with thousands apart), the
    rest to three significant digits (``0.755``, ``12.3``, ``1,234``)."""
    if float(value).is_integer() or abs(value) >= 1000:
        return f"{round(value):,}"
    return f"{value:.3g}" if abs(value) < 100 else f"{value:.1f}"


def metric_label(name: str) -> str:
    """``events{signature="QA"}`` as ``events (signature QA)``."""
    base, _, labels = name.partition("{")
    if not labels:
        return base
    pairs = [pair.split("=", 1) for pair in labels.rstrip("}").split(",") if "=" in pair]
    return f"{base} ({', '.join(f'{k.strip()} {v.strip().strip(chr(34))}' for k, v in pairs)})"


def _metrics_panel(metrics: dict[str, float]) -> str:
    """A check type's own panel: the metrics of its last result, a row each."""
    rows = "".join(f"<tr><th scope=row>{escape(metric_label(key))}</th>"
                   f"<td>{figure(value)}</td></tr>"
                   for key, value in sorted(metrics.items()) if isinstance(value, int | float))
    if not rows:
        return ""
    return f'<div class="panel"><table><caption>Metrics</caption>{rows}</table></div>'


def category(entry: CheckEntry) -> str:
    """What the top line counts a check as (and the state filter matches): a passing
    check whose last result was WARN is WARN, not OK too."""
    last = entry["last"]
    if entry["state"] == State.OK and last and last["status"] == "WARN":
        return "WARN"
    return str(entry["state"])


def _unusual(watched: dict[str, SeriesView]) -> tuple[str, str]:
    """(the chart's band attributes, the lines naming anomalous series and those whose
    baseline is still learning) of a check."""
    verdicts = {series: view.last for series, view in watched.items() if view.last}
    band = verdicts.get("duration")
    attributes = (f' data-low="{band.low:.3f}" data-high="{band.high:.3f}"'
                  if band is not None else "")
    lines = "".join(f'<p class="anomaly" role="status">Unusual {escape(series)}: score '
                    f'{verdict.score:g}, usually {figure(verdict.usual)}</p>'
                    for series, verdict in sorted(verdicts.items()) if verdict.anomalous)
    lines += "".join(f'<p class="learning">Learning what is usual for {escape(series)}: '
                     f'{view.windows} of {view.needed} windows (no anomaly is found before)</p>'
                     for series, view in sorted(watched.items()) if view.learning)
    return attributes, lines


def _check(name: str, entry: CheckEntry, seen: Seen, now: float, feeds: list[str],
           watched: dict[str, SeriesView]) -> str:
    last = entry["last"]
    state, status = entry["state"], last["status"] if last else "-"
    slowest = max((b["duration_ms"] for b in seen["beats"]), default=0)
    top = f"{slowest:.0f}" if slowest >= 100 else f"{slowest:.1f}"
    uptime = "".join(f"<dt>Up {label}</dt><dd>{_pct(value)}</dd>"
                     for label, value in seen["uptime"].items())
    service = escape(entry["service"] or "none (not healed)")
    # A check still PENDING has not changed yet.
    changed = entry["since"] if state != State.PENDING else None
    objectives = (f"<dt>Objectives</dt><dd>{escape(', '.join(feeds))}</dd>" if feeds else "")
    band, unusual = _unusual(watched)
    return f"""<li class="check st-{state}" id="check-{escape(name)}" data-name="{escape(name)}"
 data-state="{state}" data-status="{escape(status)}"><div class="head"><h3>{escape(name)}</h3>
<span class="state">{STATE_MARK.get(state, "")} {state}</span>
<span class="status s-{escape(status)}">{escape(status)}</span></div>
{_held(entry.get("maintenance"), now)}{unusual}
<p class="summary">{escape(redact(last["summary"] if last else "not run yet"))}</p>
<svg class="beats" viewBox="0 0 60 20" preserveAspectRatio="none" role="img" tabindex="0"
 aria-label="last {len(seen["beats"])} results of {escape(name)}"><path class="s-OK"/><path
 class="s-WARN"/><path class="s-CRIT"/><path class="s-UNKNOWN"/><rect class="current"
 y="0" width="1" height="20"/></svg><p class="beat-info" aria-live="polite"></p>
<svg class="chart" viewBox="0 0 {CHART_W} {CHART_H}" preserveAspectRatio="none" role="img"
 aria-label="response time of the last results, up to {top} ms"{band}><rect class="band"
 x="0" width="{CHART_W}" y="0" height="0"/><g class="marks"></g><polyline
 points=""/></svg><p
 class="scale">response time, top {top} ms</p>
<dl class="facts"><dt>Type</dt><dd>{escape(entry["type"])}</dd><dt>Service</dt><dd>{service}</dd>
{uptime}<dt>Changed</dt><dd class="changed">{_ago(changed, now)}</dd>{objectives}</dl>
{_metrics_panel(last["metrics"] if last else {})}</li>"""


#: A heal's outcome in words.
HEAL_WORDS = {"succeeded": "healed", "failed": "heal failed",
              "deploy.healthy": "deployed, healthy", "deploy.rolled_back": "deploy rolled back",
              "deploy.failed": "deploy failed"}


def _held(held: Held | None, now: float) -> str:
    """The banner of what is under maintenance: until when, why, by whom."""
    if held is None:
        return ""
    until = "until ended" if held["until"] is None else (
        "for " + format_duration(max(1, round(held["until"] - now))) + " more")
    why = f": {held['reason']}" if held["reason"] else ""
    return (f'<p class="maintenance" role="status">Under maintenance {until} '
            f'(by {escape(held["by"])}){escape(why)}</p>')


def _heal_line(heal: HealLine, now: float) -> str:
    outcome = heal["outcome"]
    words = HEAL_WORDS.get(outcome, outcome.replace("_", " "))
    if heal["recovery_s"] is not None:
        words += f' in {heal["recovery_s"]:.1f} s'
    if outcome == "failed" and heal["reason"]:
        words += f' ({heal["reason"]})'
    return f"<li>{_ago(heal['at'], now)}: {escape(redact(words))}</li>"


def _service(name: str, entry: ServiceEntry, heals: list[HealLine], now: float) -> str:
    used = len(entry["history"])
    budget = f"{used} of {entry['restarts']} in {format_duration(entry['within'])}"
    listed = "".join(_heal_line(h, now) for h in heals) or "<li>no heal yet</li>"
    banner = ""
    if entry["given_up"]:
        banner = (f'<p class="gave-up" role="alert">vigil gave up healing {escape(name)}: '
                  f'its restart budget is spent.</p>')
    healing = "1" if entry["healing"] else "0"
    return f"""<li class="service" id="service-{escape(name)}" data-name="{escape(name)}"
 data-healing="{healing}">
<h3>{escape(name)}</h3>{banner}{_held(entry.get("maintenance"), now)}<p>{escape(entry["describe"])}
· <span class="svc-state">{escape(entry["state"])}</span> ·
restarts used: {budget}</p>
<ul class="heals" aria-label="last heals of {escape(name)}">{listed}</ul>
<button type="button" class="heal" data-service="{escape(name)}">Heal {escape(name)} now</button>
<p class="heal-result" aria-live="polite"></p></li>"""


def render(checks: dict[str, CheckEntry], services: dict[str, ServiceEntry],
           seen: dict[str, Seen], heals: dict[str, list[HealLine]],
           slos: list[Report] | None = None,
           burndowns: dict[str, list[tuple[float, float]]] | None = None,
           anomalies: dict[str, dict[str, SeriesView]] | None = None) -> str:
    now = time.time()
    host = escape(socket.gethostname())
    kinds = ("OK", "WARN", "FAILING", "PENDING", "MAINTENANCE")
    counts = {kind: sum(1 for e in checks.values() if category(e) == kind) for kind in kinds}
    healing = sum(1 for e in services.values() if e["healing"])
    given_up = sum(1 for e in services.values() if e["given_up"])
    empty: Seen = {"beats": [], "uptime": {}, "anomalies": []}
    base = int(now)
    # Compact, for the script to draw the bars and charts: a page of 200 checks stays
    # small. A beat's summary is fetched when someone looks at it (/status/NAME.json).
    data = {"base": base, "checks": {name: {
        "t": [round((b["at"] - base) * 10) for b in beats],  # tenths of a second
        "s": "".join(b["status"][0] for b in beats),
        "d": [round(b["duration_ms"], 1) for b in beats],
        # Anomalies, to mark the windows they span (an end of null: still on).
        "a": [[round((start - base) * 10), None if end is None else round((end - base) * 10)]
              for start, end in seen.get(name, empty)["anomalies"]]}
        for name in checks for beats in [seen.get(name, empty)["beats"]]}}
    fed = slopanel.feeds(slos or [])
    cards = "".join(_check(n, e, seen.get(n, empty), now, fed.get(n, []),
                           (anomalies or {}).get(n, {})) for n, e in sorted(checks.items()))
    service_cards = "".join(_service(n, e, heals.get(n, []), now)
                            for n, e in sorted(services.items()))
    options = "".join(f'<option value="{s}">{s}</option>' for s in kinds)
    no_services = ("<li>No services: vigil only reports. Name a service in a check "
                   "(<code>service = ...</code>) and declare it in a "
                   "<code>[services.NAME]</code> section for vigil to heal it.</li>")
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>vigil on {host}</title><link rel="icon" href="data:,">
<style>{_asset("status.css")}</style></head><body>
<header><h1>vigil on {host}</h1><p id="summary" aria-live="polite"><span
 data-count="OK">{counts["OK"]}</span> OK · <span data-count="WARN">{counts["WARN"]}</span>
 WARN · <span data-count="FAILING">{counts["FAILING"]}</span> FAILING · <span
 data-count="PENDING">{counts["PENDING"]}</span> pending · <span
 data-count="MAINTENANCE">{counts["MAINTENANCE"]}</span> in maintenance · <span
 data-count="healing">{healing}</span> healing · <span
 data-count="gave-up">{given_up}</span> gave up</p>
<p id="live" class="live">connecting…</p></header><main>
<section aria-labelledby="services-h"><h2 id="services-h">Services</h2>
<label class="token">Token for actions <input id="token" type="password"
 autocomplete="off"></label><ul class="services"
 id="services-list">{service_cards or no_services}</ul>
</section>{slopanel.render(slos or [], burndowns or {}, now)}<section
 aria-labelledby="checks-h"><h2 id="checks-h">Checks</h2>
<form class="filters" role="search" onsubmit="return false"><label>Name <input
 id="filter-name" type="search"></label> <label>State <select id="filter-state"><option
 value="">all</option>{options}</select></label></form>
<ul class="checks" id="checks">{cards}</ul></section></main>
<script id="vigil-data" type="application/json">{_safe_json(data)}</script>
<script>{_asset("status.js")}</script></body></html>"""


def _safe_json(data: Any) -> str:
    """JSON inside a script element: nothing in it may close the element."""
    # Masked value by value (masking the text could break its quoting); every "<"
    # escaped, so that no check's name or words (``</script>``, ``<!--``) ends the
    # script or puts the HTML parser into another state.
    return json.dumps(redact_value(data), separators=(",", ":")).replace("<", "\\u003c")
