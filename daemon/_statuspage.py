"""``/status``: the status page, rendered on the server from the check table, the healer
and the history, with its stylesheet and script inline (nothing from a CDN, nothing
from disk). The script (``status.js``, beside this module) follows the event stream."""

from __future__ import annotations

import importlib.resources
import json
import socket
import time
from html import escape
from typing import Any

from vigil._redact import redact

STATE_MARK = {"OK": "✓", "FAILING": "✕", "PENDING": "…"}
#: The chart's size in SVG units (the script draws in it).
CHART_W, CHART_H = 120, 28


def _asset(name: str) -> str:
    return importlib.resources.files("vigil").joinpath(name).read_text(encoding="utf-8")


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


def _metrics_panel(metrics: dict[str, Any]) -> str:
    """A check type's own panel: the metrics of its last result, a row each."""
    if not metrics:
        return ""
    rows = "".join(f"<tr><th scope=row>{escape(key)}</th><td>{value:g}</td></tr>"
                   for key, value in sorted(metrics.items()) if isinstance(value, int | float))
    return f'<table class="panel"><caption>Metrics</caption>{rows}</table>'


def _check(name: str, entry: dict[str, Any], seen: dict[str, Any], now: float) -> str:
    last = entry.get("last") or {}
    state, status = entry["state"], last.get("status", "-")
    slowest = max((b["duration_ms"] for b in seen["beats"]), default=0)
    uptime = "".join(f"<dt>Up {label}</dt><dd>{_pct(value)}</dd>"
                     for label, value in seen["uptime"].items())
    service = escape(entry.get("service") or "none")
    # A check still PENDING has not changed yet.
    changed = entry.get("since") if state != "PENDING" else None
    return f"""<li class="check st-{state}" id="check-{escape(name)}" data-name="{escape(name)}"
 data-state="{state}"><div class="head"><h3>{escape(name)}</h3>
<span class="state">{STATE_MARK.get(state, "")} {state}</span>
<span class="status s-{escape(status)}">{escape(status)}</span></div>
<p class="summary">{escape(redact(last.get("summary", "not run yet")))}</p>
<svg class="beats" viewBox="0 0 60 20" preserveAspectRatio="none" role="img" tabindex="0"
 aria-label="last {len(seen["beats"])} results of {escape(name)}"><path class="s-OK"/><path
 class="s-WARN"/><path class="s-CRIT"/><path class="s-UNKNOWN"/><rect class="current"
 y="0" width="1" height="20"/></svg><p class="beat-info" aria-live="polite"></p>
<svg class="chart" viewBox="0 0 {CHART_W} {CHART_H}" preserveAspectRatio="none" role="img"
 aria-label="response time of the last results, up to {slowest:.1f} ms"><polyline
 points=""/></svg>
<dl class="facts"><dt>Type</dt><dd>{escape(entry["type"])}</dd><dt>Service</dt><dd>{service}</dd>
{uptime}<dt>Changed</dt><dd class="changed">{_ago(changed, now)}</dd></dl>
{_metrics_panel(last.get("metrics") or {})}</li>"""


def _service(name: str, entry: dict[str, Any], heals: list[dict[str, Any]], now: float) -> str:
    used = len(entry.get("history", []))
    listed = "".join(
        f'<li>{_ago(h["at"], now)}: {escape(h["outcome"])}'
        + (f' in {h["recovery_s"]:.2f}s' if h.get("recovery_s") is not None else "")
        + "</li>" for h in heals) or "<li>no heal yet</li>"
    banner = ""
    if entry.get("given_up"):
        banner = (f'<p class="gave-up" role="alert">vigil gave up healing {escape(name)}: '
                  f'its restart budget is spent.</p>')
    return f"""<li class="service" id="service-{escape(name)}" data-name="{escape(name)}">
<h3>{escape(name)}</h3>{banner}<p>{escape(entry.get("describe", entry.get("manager", "")))}
· <span class="svc-state">{escape(entry.get("state", ""))}</span> · restarts used:
{used}</p>
<ul class="heals" aria-label="last heals of {escape(name)}">{listed}</ul>
<button type="button" class="heal" data-service="{escape(name)}">Heal {escape(name)} now</button>
<p class="heal-result" aria-live="polite"></p></li>"""


def render(checks: dict[str, dict[str, Any]], services: dict[str, dict[str, Any]],
           seen: dict[str, dict[str, Any]], heals: dict[str, list[dict[str, Any]]]) -> str:
    now = time.time()
    host = escape(socket.gethostname())
    counts = {state: sum(1 for e in checks.values() if e["state"] == state)
              for state in ("OK", "FAILING", "PENDING")}
    warn = sum(1 for e in checks.values() if (e.get("last") or {}).get("status") == "WARN")
    healing = sum(1 for e in services.values() if e.get("healing"))
    given_up = sum(1 for e in services.values() if e.get("given_up"))
    empty: dict[str, Any] = {"beats": [], "uptime": {}}
    base = int(now)
    # Compact, for the script to draw the bars and charts: a page of 200 checks stays
    # small. A beat's summary is fetched when someone looks at it (/status/NAME.json).
    data = {"base": base, "checks": {name: {
        "t": [round(b["at"] - base) for b in beats],
        "s": "".join(b["status"][0] for b in beats),
        "d": [round(b["duration_ms"], 1) for b in beats]}
        for name in checks for beats in [seen.get(name, empty)["beats"]]}}
    cards = "".join(_check(n, e, seen.get(n, empty), now) for n, e in sorted(checks.items()))
    service_cards = "".join(_service(n, e, heals.get(n, []), now)
                            for n, e in sorted(services.items()))
    options = "".join(f'<option value="{s}">{s}</option>' for s in ("OK", "FAILING", "PENDING"))
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>vigil on {host}</title><link rel="icon" href="data:,">
<style>{_asset("status.css")}</style></head><body>
<header><h1>vigil on {host}</h1><p id="summary" aria-live="polite"><span
 data-count="OK">{counts["OK"]}</span> OK · <span data-count="WARN">{warn}</span> WARN · <span
 data-count="FAILING">{counts["FAILING"]}</span> FAILING · <span
 data-count="PENDING">{counts["PENDING"]}</span> pending · {healing} healing · <span
 data-count="gave-up">{given_up}</span> gave up</p>
<p id="live" class="live">connecting…</p></header><main>
<section aria-labelledby="services-h"><h2 id="services-h">Services</h2>
<label class="token">Token for actions <input id="token" type="password"
 autocomplete="off"></label><ul class="services">{service_cards or "<li>none</li>"}</ul>
</section><section aria-labelledby="checks-h"><h2 id="checks-h">Checks</h2>
<form class="filters" role="search" onsubmit="return false"><label>Name <input
 id="filter-name" type="search"></label> <label>State <select id="filter-state"><option
 value="">all</option>{options}</select></label></form>
<ul class="checks" id="checks">{cards}</ul></section></main>
<script id="vigil-data" type="application/json">{_safe_json(data)}</script>
<script>{_asset("status.js")}</script></body></html>"""


def _safe_json(data: Any) -> str:
    """JSON inside a script element: nothing in it may close the element."""
    return redact(json.dumps(data, separators=(",", ":"))).replace("</", "<\\/")
