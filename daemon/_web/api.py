"""What each HTTP endpoint answers, apart from the HTTP itself (``_http``): the probes
(``/livez``, ``/readyz``, ``/health``), ``/metrics``, the JSON API under ``/api/v1/``
and the badges. Every answer is a :class:`Reply`; the event stream is a ``Stream``."""

from __future__ import annotations

import contextlib
import hmac
import json
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs

from vigil._alerts import outbox
from vigil._engine.checktable import CheckTable
from vigil._engine.events import EventHub
from vigil._heal.healer import Healer
from vigil._kit.redact import redact
from vigil._store import database
from vigil._web import badge, metrics, statusdata, statuspage

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


class WebApi:
    def __init__(self, checks: CheckTable, healer: Healer, hub: EventHub, state_dir: Path,
                 token: str, progress: Callable[[], float],
                 alerts: Callable[[], dict[str, dict[str, Any]]] = dict) -> None:
        self.checks = checks
        #: Each alert sink's figures (``Alerter.stats``).
        self.alerts = alerts
        self.healer = healer
        self.hub = hub
        self.state_dir = state_dir
        self.token = token
        #: monotonic time of the scheduler's last heartbeat.
        self.progress = progress
        #: Probe pages as last built, with the check table's generation they show: a
        #: load balancer polling many times a second gets them without a rebuild.
        self._built: dict[str, tuple[int, Reply]] = {}

    def answer(self, method: str, path: str, query: str,
               headers: Mapping[str, str]) -> Reply | Stream:
        """The reply to one request (no endpoint reads a body)."""
        args = parse_qs(query, keep_blank_values=True)
        parts = [p for p in path.split("/") if p]
        probe = {"livez": self.livez, "readyz": self.readyz, "health": self.health}
        if len(parts) == 1 and parts[0] in probe:
            if method != "GET":
                return _not_allowed("GET")
            if parts[0] == "livez" or query:  # the variants are not kept: any query is one
                return probe[parts[0]](args)
            return self._kept(parts[0], lambda: probe[parts[0]](args))
        if len(parts) == 2 and parts[0] == "badge" and parts[1].endswith(".svg"):
            return self.badge(parts[1][:-4]) if method == "GET" else _not_allowed("GET")
        # The page, its data and its live stream are open, as the probes are; actions
        # are not.
        if (parts in ([], ["status"], ["api", "v1", "events"]) or parts[:1] == ["status"]
                ) and method != "GET":
            return _not_allowed("GET")
        if path == "/":
            return Reply(302, b"", headers={"Location": "/status"})
        if parts == ["status"]:
            return self.status_page()
        if len(parts) == 2 and parts[0] == "status" and parts[1].endswith(".json"):
            return self.beats(parts[1][:-5])
        if parts == ["api", "v1", "events"]:
            return Stream(self.hub)
        if parts[:1] not in (["metrics"], ["api"]):
            return _error(404, f"no such page: {path}")
        allowed = self._allowed(headers.get("Authorization", ""), action=method == "POST")
        if allowed is not None:
            return allowed
        if parts == ["metrics"]:
            if method != "GET":
                return _not_allowed("GET")
            content_type, body = metrics.render(self.snapshot(), headers.get("Accept", ""))
            return Reply(200, body, content_type)
        return self.api(method, parts[1:])

    def _kept(self, page: str, build: Callable[[], Reply]) -> Reply:
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
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(),
                                                              self.token.encode()):
            return None
        reply = _error(401, "the bearer token is wrong" if authorization else
                       "a bearer token is required: Authorization: Bearer TOKEN")
        reply.headers["WWW-Authenticate"] = 'Bearer realm="vigil"'
        return reply

    def snapshot(self) -> dict[str, Any]:
        return {"checks": self.checks.view(), "services": self.healer.snapshot(),
                "alerts": self.alerts()}

    # -- probes ----------------------------------------------------------------------

    def livez(self, _args: dict[str, list[str]]) -> Reply:
        since = time.monotonic() - self.progress()
        if since > WEDGED_AFTER:
            return Reply(503, f"wedged: no scheduler heartbeat for {since:.0f}s\n".encode())
        return Reply(200, b"ok\n")

    def readyz(self, args: dict[str, list[str]]) -> Reply:
        left_out = set(args.get("exclude", []))
        lines, failing = [], False
        runtimes = self.checks.runtimes
        for name, entry in sorted(self.checks.view().items()):
            rt = runtimes.get(name)
            if name in left_out or not entry["enabled"] or (rt and not rt.spec.gates_readiness):
                continue
            if entry["state"] == "FAILING":
                failing = True
                summary = redact((entry.get("last") or {}).get("summary", ""))
                lines.append(f"[-]{name} failed: {summary}")
            else:
                lines.append(f"[+]{name} ok")
        verdict = "failed" if failing else "ok"
        text = "\n".join([*lines, f"readyz check {verdict}"]) if "verbose" in args else verdict
        return Reply(503 if failing else 200, (text + "\n").encode())

    def health(self, _args: dict[str, list[str]]) -> Reply:
        """The IETF health-check draft's format: pass, warn or fail, and each check."""
        checks, worst = {}, "pass"
        for name, entry in sorted(self.checks.view().items()):
            if not entry["enabled"]:
                continue
            last = entry.get("last") or {}
            status = _health_status(entry["state"], last.get("status"))
            worst = max(worst, status, key=("pass", "warn", "fail").index)
            checks[name] = [{"componentType": entry["type"], "status": status,
                             "observedValue": last.get("metrics") or {},
                             "output": redact(last.get("summary", "not run yet")),
                             "time": last.get("at")}]
        return _json(503 if worst == "fail" else 200,
                     {"status": worst, "serviceId": "vigil", "checks": checks},
                     "application/health+json", masked=True)

    def status_page(self) -> Reply:
        checks, services = self.checks.view(), self.healer.snapshot()
        nothing: tuple[dict[str, dict[str, Any]], dict[str, list[dict[str, Any]]]] = ({}, {})
        seen, heals = self._read(
            lambda conn: (statusdata.gather(conn, checks), statusdata.heals(conn)), nothing)
        page = statuspage.render(checks, services, seen, heals)
        return Reply(200, page.encode(), "text/html; charset=utf-8",
                     {"Cache-Control": "no-store", "Content-Security-Policy":
                      "default-src 'none'; style-src 'unsafe-inline'; script-src "
                      "'unsafe-inline'; connect-src 'self'; img-src 'self' data:"})

    def beats(self, check: str) -> Reply:
        if check not in self.checks.view():
            return _error(404, f"no check named {check!r}")
        none_yet: list[dict[str, Any]] = []
        found = self._read(lambda conn: statusdata.beats_of(conn, check), none_yet)
        return _json(200, {"check": check, "beats": found})

    def badge(self, name: str) -> Reply:
        entry = self.checks.view().get(name)
        if entry is None:
            return _error(404, f"no check named {name!r}")
        svg = badge.render(name, entry["state"], (entry.get("last") or {}).get("status"))
        return Reply(200, svg.encode(), "image/svg+xml",
                     {"Cache-Control": "no-cache, max-age=0"})

    # -- /api/v1 ---------------------------------------------------------------------

    def api(self, method: str, parts: list[str]) -> Reply | Stream:
        if parts[:1] != ["v1"]:
            return _error(404, "the API is under /api/v1/")
        parts = parts[1:]
        if len(parts) == 3:
            return self.act(*parts) if method == "POST" else _not_allowed("POST")
        if not parts or len(parts) > 2:
            return _error(404, "no such resource")
        if method != "GET":
            return _not_allowed("GET")
        if parts[0] == "checks":
            view = self.checks.view()
            if len(parts) == 1:
                none: dict[str, float | None] = {}
                uptimes = self._read(lambda conn: database.uptime_24h(conn, list(view)), none)
                for name, entry in view.items():
                    entry["uptime_24h"] = uptimes.get(name)
                return _json(200, {"checks": view})
            if parts[1] not in view:
                return _error(404, f"no check named {parts[1]!r}")
            return _json(200, {**view[parts[1]], "name": parts[1],
                               "history": self._history(parts[1])})
        if parts[0] == "services":
            services = self.healer.snapshot()
            if len(parts) == 1:
                return _json(200, {"services": services})
            if parts[1] not in services:
                return _error(404, f"no service named {parts[1]!r}")
            return _json(200, {**services[parts[1]], "name": parts[1]})
        if parts == ["alerts"]:
            return _json(200, self._read(lambda conn: outbox.as_json(
                *outbox.listing(conn, time.time())), outbox.as_json([], [])))
        return _error(404, "no such resource")

    def act(self, kind: str, name: str, verb: str) -> Reply:
        if (kind, verb) == ("checks", "run"):
            if not self.checks.run_now(name):
                return _error(404, f"no enabled check named {name!r}")
            return _json(202, {"check": name, "queued": True})
        if (kind, verb) == ("services", "heal"):
            if name not in self.healer.services:
                return _error(404, f"no service named {name!r}")
            outcome = self.healer.requested(name, "the HTTP API")
            return _json(200 if outcome.ok else 502, {"ok": outcome.ok, **outcome.to_dict()})
        return _error(404, "the actions are POST checks/NAME/run and services/NAME/heal")

    def _history(self, check: str) -> dict[str, Any] | None:
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


def _health_status(state: str, status: str | None) -> str:
    if state == "FAILING":
        return "fail"
    return "warn" if status in ("WARN", "CRIT", "UNKNOWN") or status is None else "pass"


def _not_allowed(allowed: str) -> Reply:
    reply = _error(405, f"method not allowed here (allowed: {allowed})")
    reply.headers["Allow"] = allowed
    return reply
