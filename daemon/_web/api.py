"""What each HTTP endpoint answers, apart from the HTTP itself (``http``): the probes
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
from urllib.parse import parse_qs, unquote

from vigil._alerts import outbox
from vigil._alerts.alerter import SinkStats
from vigil._engine import maintenance as scheduled
from vigil._engine.checktable import CheckTable
from vigil._engine.events import EventHub
from vigil._heal.healer import Healer
from vigil._kit.durations import parse_duration
from vigil._kit.redact import redact, redact_value
from vigil._store import database, maintenance
from vigil._store.records import CheckHistory, State
from vigil._web import badge, metrics, statusdata, statuspage
from vigil._web.access import (
    Access,
    cross_origin,
    host_allowed,
    host_name,
    presented,
    token_matches,
)

if TYPE_CHECKING:
    from vigil._baseline.watch import SeriesView
    from vigil._slo.objectives import Report

#: The scheduler's heartbeat runs every second: this long without one is wedged.
WEDGED_AFTER = 3.0
#: How long a wrong token's 401 waits: a guesser tries a token a second per connection.
WRONG_TOKEN_DELAY = 1.0
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
    #: Seconds the answer waits before it is sent (a wrong token's).
    delay: float = 0.0


@dataclass
class Stream:
    """The Server-Sent Events stream: the HTTP side writes what ``hub`` publishes."""

    hub: EventHub


def _json(status: int, data: Any, content_type: str = JSON, masked: bool = False) -> Reply:
    """Summaries and outputs may quote a DSN or a token: each value masked as in the log
    before the JSON is made (masking the text would break its quoting), unless the page
    ``masked`` them itself (a hot page, where masking all of it costs most)."""
    text = json.dumps(data if masked else redact_value(data))
    return Reply(status, (text + "\n").encode(), content_type)


def _error(status: int, message: str) -> Reply:
    return _json(status, {"error": message})


#: Who may use a route: anyone (the probes); the status page's viewers (anyone without a
#: token set or with ``public_status``, else the token's holder: the page, its data, its
#: stream, /health and the badges); a reader (anyone without a token set, else the
#: token's holder); the token's holder.
OPEN, PAGE, READ, ACTION = "open", "page", "read", "action"


#: A name in a path: a check's, a service's, a maintenance window's target.
NAME = r"([^/]+)"
#: Every route: its method, its path (whole; its groups follow the request in the
#: handler's arguments), the WebApi method that answers, who may use it, and whether its
#: page is kept (``Route.kept``). The HTTP server serves every method named here.
ROUTES = (
    ("GET", r"/livez", "livez", OPEN, False),
    ("GET", r"/readyz", "readyz", OPEN, True),
    ("GET", r"/health", "health", PAGE, True),
    ("GET", rf"/badge/{NAME}\.svg", "badge", PAGE, False),
    ("GET", r"/", "home", OPEN, False),
    ("GET", r"/status", "status_page", PAGE, False),
    ("GET", rf"/status/{NAME}\.json", "beats", PAGE, False),
    ("GET", r"/api/v1/events", "events", PAGE, False),
    ("GET", r"/metrics", "metrics", READ, False),
    ("GET", r"/api/v1/checks", "check_list", READ, False),
    ("GET", rf"/api/v1/checks/{NAME}", "check_page", READ, False),
    ("GET", r"/api/v1/services", "service_list", READ, False),
    ("GET", r"/api/v1/slos", "slo_list", READ, False),
    ("GET", rf"/api/v1/services/{NAME}", "service_page", READ, False),
    ("GET", r"/api/v1/alerts", "alert_list", READ, False),
    ("GET", r"/api/v1/maintenance", "maintenance_list", READ, False),
    ("POST", rf"/api/v1/maintenance/{NAME}", "maintenance_start", ACTION, False),
    ("DELETE", rf"/api/v1/maintenance/{NAME}", "maintenance_end", ACTION, False),
    ("POST", rf"/api/v1/checks/{NAME}/run", "run_check", ACTION, False),
    ("POST", rf"/api/v1/services/{NAME}/heal", "heal", ACTION, False))


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
                 access: Access, progress: Callable[[], float],
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
        self.access = access
        #: monotonic time of the scheduler's last heartbeat.
        self.progress = progress
        #: Probe pages as last built, with the check table's generation they show: a
        #: load balancer polling many times a second gets them without a rebuild.
        self._built: dict[str, tuple[int, Reply | Stream]] = {}
        self.routes = [Route(method, re.compile(pattern), getattr(self, handler), access, kept)
                       for method, pattern, handler, access, kept in ROUTES]

    def answer(self, method: str, path: str, query: str,
               headers: Mapping[str, str]) -> Reply | Stream:
        """The reply to one request (no endpoint reads a body)."""
        if not host_allowed(self.access, headers.get("Host")):
            return _error(421, f"this server does not answer to the host name "
                               f"{host_name(headers.get('Host', ''))!r}: name it in "
                               "[daemon] allowed_hosts")
        found = [(route, match) for route in self.routes
                 if (match := route.pattern.fullmatch(path))]
        if not found:
            return _error(404, _missing(path))
        chosen = next(((route, match) for route, match in found if route.method == method),
                      None)
        if chosen is None:
            return _not_allowed(", ".join(sorted({route.method for route, _ in found})))
        route, match = chosen
        args = parse_qs(query, keep_blank_values=True)
        # A probe asked more than its verdict (/readyz?verbose, ?exclude=NAME) tells what
        # fails, as the status page does.
        access = PAGE if route.access == OPEN and args else route.access
        if access != OPEN:
            refused = self._allowed(headers, access)
            if refused is not None:
                return refused
        request = Request(path, args, headers)
        # A name is matched as sent, then decoded: `my%20check`, `a%2Fb`.
        names = [unquote(group) for group in match.groups()]
        if route.kept and not query:
            return self._kept(path, lambda: route.handler(request, *names))
        return route.handler(request, *names)

    def _kept(self, page: str, build: Callable[[], Reply | Stream]) -> Reply | Stream:
        generation = self.checks.generation
        kept = self._built.get(page)
        if kept is None or kept[0] != generation:
            kept = self._built[page] = (generation, build())
        return kept[1]

    def _allowed(self, headers: Mapping[str, str], access: str) -> Reply | None:
        """None when the request may go on: actions always need the token, as a bearer
        token and from no other origin's page; with a token set, so does everything but
        the probes (and the page, with public_status). A wrong token is answered only
        after WRONG_TOKEN_DELAY: guessing is slow, and the right token never waits."""
        if access == ACTION and (why := cross_origin(headers)):
            return _error(403, f"an action from another site's page is refused ({why})")
        token = self.access.token
        if not token:
            if access == ACTION:
                return _error(403, "set [daemon] http_token to allow actions")
            return None
        if access == PAGE and self.access.public_status:
            return None
        authorization = headers.get("Authorization", "")
        if token_matches(self.access, authorization, action=access == ACTION):
            return None
        if access == ACTION and presented(authorization) is not None and not (
                authorization.strip().lower().startswith("bearer ")):
            return _error(401, "an action takes the token as a bearer token (Authorization: "
                               "Bearer), never a browser's login")
        reply = _error(401, "the token is wrong" if authorization else
                       "a token is required: send it as a bearer token in the "
                       "Authorization header (or log in with it as the password)")
        if authorization:
            reply.delay = WRONG_TOKEN_DELAY
        # A browser asks its user for a login on the page's routes; an API client is
        # told the scheme it speaks.
        reply.headers["WWW-Authenticate"] = ('Basic realm="vigil", charset="UTF-8"'
                                             if access == PAGE else 'Bearer realm="vigil"')
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
            elif entry["state"] == State.MAINTENANCE:
                lines.append(f"[+]{name} ok (under maintenance: not judged)")
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
        slos, now = self.slos(), time.time()
        burndowns: dict[str, list[tuple[float, float]]] = {}
        if slos:  # the objectives' modules are imported only when there are objectives
            from vigil._slo.objectives import burndown

            burndowns = self._read(
                lambda conn: {r.name: burndown(conn, r, now) for r in slos}, burndowns)
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
        # Another site's page could read a check's state from the badge's size: shown
        # there only when the operator says so.
        policy = "cross-origin" if self.access.cross_origin_badges else "same-origin"
        return Reply(200, svg.encode(), "image/svg+xml",
                     {"Cache-Control": "no-cache, max-age=0",
                      "Cross-Origin-Resource-Policy": policy})

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
        """As `vigil maintenance list --json`: the windows in force, and every scheduled
        window (in force or not, and when it next opens)."""
        now, none = time.time(), (list[maintenance.Window](), dict[str, float]())
        found, ends = self._read(lambda conn: (maintenance.windows(conn),
                                               maintenance.schedule_ends(conn)), none)
        plans = scheduled.listing(self.checks.maintenance.schedules.values(), ends, now)
        return _json(200, {"maintenance": [vars(w) for w in found if w.open(now)],
                           "scheduled": plans})

    def maintenance_start(self, request: Request, target: str) -> Reply:
        """POST /api/v1/maintenance/TARGET?for=30m&reason=...: as `vigil maintenance
        start` (``until_end`` instead of ``for`` for a window until ended)."""
        length, reason = request.args.get("for", [""])[0], request.args.get("reason", [""])[0]
        if not length and "until_end" not in request.args:
            return _error(400, "say how long: ?for=30m, or ?until_end for a window that lasts "
                               "until DELETE")
        try:
            seconds = float(parse_duration(length)) if length else None
        except ValueError as exc:
            return _error(400, f"for: {exc}")
        if seconds is not None and seconds <= 0:
            return _error(400, f"for: must be longer than 0s, got {length!r}")
        known = self.checks.runtimes
        if target not in self.healer.services and not any(
                fnmatch.fnmatchcase(name, target) for name in known):
            return _error(404, f"{target!r} is neither a service nor a glob matching a check")
        now = time.time()
        window = maintenance.Window(target, None if seconds is None else now + seconds,
                                    reason, now, "the HTTP API")
        self._write(lambda conn: maintenance.start(conn, window))
        return _json(200, {"maintenance": vars(window)})

    def maintenance_end(self, _request: Request, target: str) -> Reply:
        """DELETE /api/v1/maintenance/NAME: as `vigil maintenance end NAME`, the window on
        that target and the scheduled window of that name in force."""
        schedules = self.checks.maintenance.schedules
        if not self._write(lambda conn: scheduled.end(conn, target, schedules, time.time())):
            return _error(404, f"no maintenance of {target!r} in force")
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
        # A check that loads its service may be held back (its floor, a heal, a window).
        held = self.checks.held(name)
        return _json(202, {"check": name, "queued": True, **({"held": held} if held else {})})

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
        return ("no such resource (the actions are POST checks/NAME/run, POST "
                "services/NAME/heal, and POST and DELETE maintenance/TARGET)")
    return f"no such page: {path}"


def _not_allowed(allowed: str) -> Reply:
    reply = _error(405, f"method not allowed here (allowed: {allowed})")
    reply.headers["Allow"] = allowed
    return reply
