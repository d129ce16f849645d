"""What each HTTP endpoint answers, apart from the HTTP itself (``_http``): the probes
(``/livez``, ``/readyz``, ``/health``), ``/metrics``, the JSON API under ``/api/v1/``
and the badges. Every answer is a :class:`Reply`; the event stream is a ``Stream``."""

from __future__ import annotations

import contextlib
import fnmatch
import json
import re
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qs

from vigil._alerts import outbox
from vigil._alerts.alerter import SinkStats
from vigil._engine.checktable import CheckTable
from vigil._engine.events import EventHub
from vigil._heal.healer import Healer
from vigil._kit.digest import same_secret
from vigil._kit.durations import parse_duration
from vigil._kit.redact import redact
from vigil._store import database, maintenance
from vigil._store.records import CheckHistory, State
from vigil._web import badge, metrics, statusdata, statuspage

if TYPE_CHECKING:
    from vigil._baseline.watch import SeriesView
    from vigil._slo.objectives import Report

#: The scheduler's heartbeat runs every second: this long without one is wedged.
WEDGED_AFTER = 3.0
#: How far back a check's page of the API lists its results.
RECENT = 3600
JSON = "application/json"
T = TypeVar("T")


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Stream:
    """The Server-Sent Events stream: the HTTP side writes what ``hub`` publishes."""

    hub: EventHub


def _json(status: int, data: Any, content_type: str = JSON, masked: bool = False) -> Reply:
    """Summaries and outputs may quote a DSN or a token: masked as in the log, unless
    the page ``masked`` them itself (a hot page, where masking all of it costs most)."""
    text = json.dumps(data)
    return Reply(status, ((text if masked else redact(text)) + "\n").encode(), content_type)


def _error(status: int, message: str) -> Reply:
    return _json(status, {"error": message})


#: Who may use a route: anyone (the probes, the badges, the status page and its stream),
#: a reader (anyone without a token set, else the token's holder), the token's holder.
OPEN, READ, ACTION = "open", "read", "action"


@dataclass(frozen=True)
class Request:
    path: str
    args: dict[str, list[str]]
    headers: Mapping[str, str]


@dataclass(frozen=True)
class Route:
    method: str
    #: The path, whole; its groups follow the request in the handler's arguments.
    pattern: re.Pattern[str]
    handler: Callable[..., Reply | Stream]
    access: str = READ
    #: A probe: its page is kept while the check table has not moved (unless a query
    #: asks for a variant).
    kept: bool = False


class WebApi:
    def __init__(self, checks: CheckTable, healer: Healer, hub: EventHub, state_dir: Path,
                 token: str, progress: Callable[[], float],
                 alerts: Callable[[], dict[str, SinkStats]] = dict,
                 slos: Callable[[], list[Report]] = list,
                 anomalies: Callable[[], dict[str, dict[str, SeriesView]]] = dict,
                 forecasts: Callable[[], dict[str, dict[str, float]]] = dict) -> None:
        self.checks = checks
        #: Each alert sink's figures (``Alerter.stats``).
        self.alerts = alerts
        #: The objectives' last reports (``SloWatch.reports``).
        self.slos = slos
        #: Each watched series' last verdict and forecast (``Baselines``).
        self.anomalies, self.forecasts = anomalies, forecasts
        self.healer = healer
        self.hub = hub
        self.state_dir = state_dir
        self.token = token
        #: monotonic time of the scheduler's last heartbeat.
        self.progress = progress
        #: Probe pages as last built, with the check table's generation they show: a
        #: load balancer polling many times a second gets them without a rebuild.
        self._built: dict[str, tuple[int, Reply | Stream]] = {}
        name = r"([^/]+)"
        self.routes = [Route(method, re.compile(pattern), handler, access, kept) for
                       method, pattern, handler, access, kept in (
            ("GET", r"/livez", self.livez, OPEN, False),
            ("GET", r"/readyz", self.readyz, OPEN, True),
            ("GET", r"/health", self.health, OPEN, True),
            ("GET", rf"/badge/{name}\.svg", self.badge, OPEN, False),
            ("GET", r"/", self.home, OPEN, False),
            ("GET", r"/status", self.status_page, OPEN, False),
            ("GET", rf"/status/{name}\.json", self.beats, OPEN, False),
            ("GET", r"/api/v1/events", self.events, OPEN, False),
            ("GET", r"/metrics", self.metrics, READ, False),
            ("GET", r"/api/v1/checks", self.check_list, READ, False),
            ("GET", rf"/api/v1/checks/{name}", self.check_page, READ, False),
            ("GET", r"/api/v1/services", self.service_list, READ, False),
            ("GET", r"/api/v1/slos", self.slo_list, READ, False),
            ("GET", rf"/api/v1/services/{name}", self.service_page, READ, False),
            ("GET", r"/api/v1/alerts", self.alert_list, READ, False),
            ("GET", r"/api/v1/maintenance", self.maintenance_list, READ, False),
            ("POST", rf"/api/v1/maintenance/{name}", self.maintenance_start, ACTION, False),
            ("DELETE", rf"/api/v1/maintenance/{name}", self.maintenance_end, ACTION, False),
            ("POST", rf"/api/v1/checks/{name}/run", self.run_check, ACTION, False),
            ("POST", rf"/api/v1/services/{name}/heal", self.heal, ACTION, False))]

    def answer(self, method: str, path: str, query: str,
               headers: Mapping[str, str]) -> Reply | Stream:
        """The reply to one request (no endpoint reads a body)."""
        found = [(route, match) for route in self.routes
                 if (match := route.pattern.fullmatch(path))]
        if not found:
            return _error(404, _missing(path))
        chosen = next(((route, match) for route, match in found if route.method == method),
                      None)
        if chosen is None:
            return _not_allowed(", ".join(sorted({route.method for route, _ in found})))
        route, match = chosen
        if route.access != OPEN:
            refused = self._allowed(headers.get("Authorization", ""), route.access == ACTION)
            if refused is not None:
                return refused
        request = Request(path, parse_qs(query, keep_blank_values=True), headers)
        if route.kept and not query:
            return self._kept(path, lambda: route.handler(request, *match.groups()))
        return route.handler(request, *match.groups())

    def _kept(self, page: str, build: Callable[[], Reply | Stream]) -> Reply | Stream:
        generation = self.checks.generation
        kept = self._built.get(page)
        if kept is None or kept[0] != generation:
            kept = self._built[page] = (generation, build())
        return kept[1]

    def _allowed(self, authorization: str, action: bool) -> Reply | None:
        """None when the request may go on: actions always need the token; with a token
        set, so does everything but the probes and badges."""
        if not self.token:
            return _error(403, "set [daemon] http_token to allow actions") if action else None
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() == "bearer" and same_secret(given.strip().encode(),
                                                              self.token.encode()):
            return None
        reply = _error(401, "the bearer token is wrong" if authorization else
                       "a bearer token is required: Authorization: Bearer TOKEN")
        reply.headers["WWW-Authenticate"] = 'Bearer realm="vigil"'
        return reply

    # -- probes ----------------------------------------------------------------------

    def livez(self, _request: Request) -> Reply:
        since = time.monotonic() - self.progress()
        if since > WEDGED_AFTER:
            return Reply(503, f"wedged: no scheduler heartbeat for {since:.0f}s\n".encode())
        return Reply(200, b"ok\n")

    def readyz(self, request: Request) -> Reply:
        args = request.args
        left_out = set(args.get("exclude", []))
        lines, failing = [], False
        runtimes = self.checks.runtimes
        for name, entry in sorted(self.checks.view().items()):
            rt = runtimes.get(name)
            if name in left_out or not entry["enabled"] or (rt and not rt.spec.gates_readiness):
                continue
            if entry["state"] == State.FAILING:
                failing = True
                summary = redact(entry["last"]["summary"] if entry["last"] else "")
                lines.append(f"[-]{name} failed: {summary}")
            else:
                lines.append(f"[+]{name} ok")
        verdict = "failed" if failing else "ok"
        text = "\n".join([*lines, f"readyz check {verdict}"]) if "verbose" in args else verdict
        return Reply(503 if failing else 200, (text + "\n").encode())

    def health(self, _request: Request) -> Reply:
        """The IETF health-check draft's format: pass, warn or fail, and each check."""
        checks, worst = {}, "pass"
        for name, entry in sorted(self.checks.view().items()):
            if not entry["enabled"]:
                continue
            last = entry["last"]
            status = _health_status(entry["state"], last["status"] if last else None)
            worst = max(worst, status, key=("pass", "warn", "fail").index)
            checks[name] = [{"componentType": entry["type"], "status": status,
                             "observedValue": last["metrics"] if last else {},
                             "output": redact(last["summary"] if last else "not run yet"),
                             "time": last["at"] if last else None}]
        return _json(503 if worst == "fail" else 200,
                     {"status": worst, "serviceId": "vigil", "checks": checks},
                     "application/health+json", masked=True)

    def home(self, _request: Request) -> Reply:
        return Reply(302, headers={"Location": "/status"})

    def events(self, _request: Request) -> Stream:
        return Stream(self.hub)

    def status_page(self, _request: Request) -> Reply:
        checks, services = self.checks.view(), self.healer.snapshot()
        nothing: tuple[dict[str, statusdata.Seen], dict[str, list[statusdata.HealLine]]] = (
            {}, {})
        seen, heals = self._read(
            lambda conn: (statusdata.gather(conn, checks), statusdata.heals(conn)), nothing)
        from vigil._slo.objectives import burndown

        slos, now = self.slos(), time.time()
        none: dict[str, list[tuple[float, float]]] = {}
        burndowns = self._read(lambda conn: {r.name: burndown(conn, r, now) for r in slos},
                               none)
        page = statuspage.render(checks, services, seen, heals, slos, burndowns,
                                 self.anomalies())
        return Reply(200, page.encode(), "text/html; charset=utf-8",
                     {"Cache-Control": "no-store", "Content-Security-Policy":
                      "default-src 'none'; style-src 'unsafe-inline'; script-src "
                      "'unsafe-inline'; connect-src 'self'; img-src 'self' data:"})

    def beats(self, _request: Request, check: str) -> Reply:
        if check not in self.checks.view():
            return _error(404, f"no check named {check!r}")
        none_yet: list[statusdata.Beat] = []
        found = self._read(lambda conn: statusdata.beats_of(conn, check), none_yet)
        return _json(200, {"check": check, "beats": found})

    def badge(self, _request: Request, name: str) -> Reply:
        entry = self.checks.view().get(name)
        if entry is None:
            return _error(404, f"no check named {name!r}")
        last = entry["last"]
        svg = badge.render(name, entry["state"], last["status"] if last else None)
        return Reply(200, svg.encode(), "image/svg+xml",
                     {"Cache-Control": "no-cache, max-age=0"})

    # -- /metrics and /api/v1 ---------------------------------------------------------

    def metrics(self, request: Request) -> Reply:
        content_type, body = metrics.render(self.checks.view(), self.healer.snapshot(),
                                            self.alerts(), self.slos(), self.anomalies(),
                                            self.forecasts(),
                                            request.headers.get("Accept", ""))
        return Reply(200, body, content_type)

    def check_list(self, _request: Request) -> Reply:
        view = self.checks.view()
        none: dict[str, float | None] = {}
        uptimes = self._read(lambda conn: database.uptime_24h(conn, list(view)), none)
        for name, entry in view.items():
            entry["uptime_24h"] = uptimes.get(name)
        return _json(200, {"checks": view})

    def check_page(self, _request: Request, name: str) -> Reply:
        entry = self.checks.view().get(name)
        if entry is None:
            return _error(404, f"no check named {name!r}")
        return _json(200, {**entry, "name": name, "history": self._history(name)})

    def slo_list(self, _request: Request) -> Reply:
        """The objectives as ``vigil slo --json`` shows them, as last counted."""
        return _json(200, {"slos": [r.as_json() for r in sorted(self.slos(),
                                                                  key=lambda r: r.name)]})

    def service_list(self, _request: Request) -> Reply:
        return _json(200, {"services": self.healer.snapshot()})

    def service_page(self, _request: Request, name: str) -> Reply:
        entry = self.healer.snapshot().get(name)
        if entry is None:
            return _error(404, f"no service named {name!r}")
        return _json(200, {**entry, "name": name})

    def alert_list(self, _request: Request) -> Reply:
        return _json(200, self._read(lambda conn: outbox.as_json(
            *outbox.listing(conn, time.time())), outbox.as_json([], [])))

    def maintenance_list(self, _request: Request) -> Reply:
        now, none = time.time(), list[maintenance.Window]()
        found = self._read(maintenance.windows, none)
        return _json(200, {"maintenance": [vars(w) for w in found if w.open(now)]})

    def maintenance_start(self, request: Request, target: str) -> Reply:
        """POST /api/v1/maintenance/TARGET?for=30m&reason=...: as `vigil maintenance
        start` (``until_end`` instead of ``for`` for a window until ended)."""
        length, reason = request.args.get("for", [""])[0], request.args.get("reason", [""])[0]
        if not length and "until_end" not in request.args:
            return _error(400, "say how long: ?for=30m, or ?until_end for a window that lasts "
                               "until DELETE")
        try:
            until = float(parse_duration(length)) + time.time() if length else None
        except ValueError as exc:
            return _error(400, f"for: {exc}")
        known = self.checks.runtimes
        if target not in self.healer.services and not any(
                fnmatch.fnmatchcase(name, target) for name in known):
            return _error(404, f"{target!r} is neither a service nor a glob matching a check")
        window = maintenance.Window(target, until, reason, time.time(), "the HTTP API")
        self._write(lambda conn: maintenance.start(conn, window))
        return _json(200, {"maintenance": vars(window)})

    def maintenance_end(self, _request: Request, target: str) -> Reply:
        if not self._write(lambda conn: maintenance.end(conn, target)):
            return _error(404, f"no maintenance of {target!r}")
        return _json(200, {"ended": target})

    def _write(self, change: Callable[[sqlite3.Connection], T]) -> T:
        """``change`` committed to the state database, and the daemon told."""
        with contextlib.closing(database.open_database(self.state_dir / database.DB)) as conn:
            done = change(conn)  # autocommit
        self.hub.publish("maintenance.written")
        return done

    def run_check(self, _request: Request, name: str) -> Reply:
        if not self.checks.run_now(name):
            return _error(404, f"no enabled check named {name!r}")
        return _json(202, {"check": name, "queued": True})

    def heal(self, _request: Request, name: str) -> Reply:
        if name not in self.healer.services:
            return _error(404, f"no service named {name!r}")
        outcome = self.healer.requested(name, "the HTTP API")
        return _json(200 if outcome.ok else 502, {"ok": outcome.ok, **outcome.record()})

    def _history(self, check: str) -> CheckHistory | None:
        return self._read(lambda conn: database.history_of(conn, check, time.time() - RECENT),
                          None)

    def _read(self, query: Callable[[sqlite3.Connection], T], default: T) -> T:
        """``query`` on a read-only connection to the state database; ``default`` when
        there is none or it cannot be read (the writer holds it, or it was set aside):
        the rest of the page still answers."""
        try:
            conn = database.connect_readonly(self.state_dir)
            if conn is None:
                return default
            with contextlib.closing(conn):
                return query(conn)
        except sqlite3.Error:
            return default


def _health_status(state: State, status: str | None) -> str:
    if state == State.FAILING:
        return "fail"
    if state == State.MAINTENANCE:
        return "warn"  # worked on, not failed
    return "warn" if status in ("WARN", "CRIT", "UNKNOWN") or status is None else "pass"


def _missing(path: str) -> str:
    if path.startswith("/api/") and not path.startswith("/api/v1/"):
        return "the API is under /api/v1/"
    if path.startswith("/api/v1/"):
        return ("no such resource (the actions are POST checks/NAME/run and "
                "services/NAME/heal)")
    return f"no such page: {path}"


def _not_allowed(allowed: str) -> Reply:
    reply = _error(405, f"method not allowed here (allowed: {allowed})")
    reply.headers["Allow"] = allowed
    return reply
