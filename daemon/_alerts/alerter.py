"""When to alert: a FAILING check opens an alert at each sink whose rules take it (for a
check that guards a service, by default only once healing did not help), and its
recovery resolves it. Decisions go to the outbox (``outbox``); each sink's sender
(``delivery``) sends them. The state of the checks and services is read each tick
and at every event, so a restart, a reload or a missed event only delays a decision."""

from __future__ import annotations

import collections
import contextlib
import socket
import sqlite3
import threading
import time
from datetime import UTC, datetime
from typing import TypedDict

import structlog

from vigil._alerts.backlogfile import Item
from vigil._alerts.burns import KEY as BURN_KEY
from vigil._alerts.burns import BurnAlerts
from vigil._alerts.delivery import Sender
from vigil._alerts.outbox import Outbox
from vigil._api.alert import Alert, Silence
from vigil._config.sections import AlertSpec
from vigil._engine.checktable import CheckRuntime, CheckTable
from vigil._engine.events import EventHub, Fields
from vigil._heal.healer import Healer
from vigil._heal.healstate import ServiceRuntime
from vigil._kit.durations import format_duration
from vigil._kit.redact import redact
from vigil._store.database import Unreadable
from vigil._store.records import HealRecord, State, Verdict

log = structlog.get_logger("vigil.alerts")

#: The outbox names a remediation item's alert so, with its subject ("check db").
REMEDIATION_KEY = "remediation:"
#: How often the rules are looked at without an event to wake them.
TICK = 1.0
#: Dropped alerts (and a state database the alerts cannot use) are reported at most
#: this often.
DROPS_REPORTED_EVERY = 60.0


#: How long an open-ended maintenance window's silence lasts at a sink (ten years).
OPEN_ENDED = 10 * 365 * 86400.0


class SinkStats(TypedDict):
    """One alert sink's figures, for /metrics."""

    open: int
    #: False when its last delivery failed.
    up: bool
    sent: int
    failed: int


class Alerter:
    def __init__(self, checks: CheckTable, healer: Healer, outbox: Outbox,
                 events: EventHub) -> None:
        self.checks = checks
        self.healer = healer
        self.outbox = outbox
        self.host = socket.gethostname()
        self.specs: dict[str, AlertSpec] = {}
        self.senders: dict[str, Sender] = {}
        #: The firing alerts, by (sink, check).
        self.open: dict[tuple[str, str], Alert] = {}
        self.silences: dict[str, Silence] = {}
        self.wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._dropped: collections.Counter[str] = collections.Counter()
        self._drops_said: dict[str, float] = {}
        #: Whether the open alerts were taken from the outbox since the last install.
        self._reconciled = False
        self._started = False
        #: Held while deciding and while a reload swaps the sinks.
        self._lock = threading.Lock()
        #: The objectives' burn alerts.
        self.burns = BurnAlerts(outbox, self.host)
        events.subscribe(self._event)

    def install(self, alerts: dict[str, AlertSpec]) -> None:
        """Adopt a config's sinks. The alerts' own thread then takes the open alerts
        from the outbox before it decides anything (and resolves those whose check is
        OK again, sending nothing twice); a state database it cannot read yet (a full
        disk) only delays that. Without sinks there is no thread (a thread costs its
        own malloc arena): the alerts of removed sinks are dropped here."""
        with self._lock:
            for sender in self.senders.values():
                sender.stop()
            self.specs = alerts
            self.open = {key: alert for key, alert in self.open.items() if key[0] in alerts}
            self._reconciled = False
            self.senders = {name: Sender(spec, self.outbox, self._silence_list, self.host)
                            for name, spec in alerts.items()}
            if not alerts:
                with contextlib.suppress(sqlite3.Error, OSError, Unreadable):
                    self._reconcile()
                    self._refresh_silences(time.time())  # said even with no sink to hold
                self.outbox.close()
        if self._started:
            self._run()
        self.wake.set()

    def silences_changed(self) -> None:
        """`vigil silence` wrote the state database: look at it now, not at the tick."""
        if self._thread is not None:
            self.wake.set()
            return
        with self._lock, contextlib.suppress(sqlite3.Error, OSError, Unreadable):
            self._refresh_silences(time.time())
            self.outbox.close()

    def stats(self) -> dict[str, SinkStats]:
        """Each sink's open alerts and deliveries so far, for /metrics. The counts start
        over with a reload, as a new sender takes over."""
        senders = dict(self.senders)
        open_at = collections.Counter(sink for sink, _ in list(self.open))
        return {name: {"open": open_at[name], "up": sender.up, "sent": sender.counts["sent"],
                       "failed": sender.counts["failed"]}
                for name, sender in senders.items()}

    def _reconcile(self) -> None:
        rows = self.outbox.rows()
        for sink, count in collections.Counter(r.sink for r in rows
                                               if r.sink not in self.specs).items():
            self.outbox.forget(sink)
            log.warning("alert.dropped", sink=sink, dropped=count,
                        reason=f"its [alerts.{sink}] section is gone")
        for row in rows:
            if (row.sink in self.specs and row.status == "firing"
                    and not row.check.startswith((REMEDIATION_KEY, BURN_KEY))):
                self.open.setdefault((row.sink, row.check), row.alert)
        self.burns.reconcile(rows, self.specs)
        self._reconciled = True

    def remediation(self, subject: str, item_id: str, item: Item, recovered: bool) -> None:
        """A remediation item written into the backlog, or its recovery noted: an alert
        of its own at each sink whose rules take its check (or service)."""
        kind, _, name = subject.partition(" ")
        key, now = f"{REMEDIATION_KEY}{subject}", time.time()
        rt = self.checks.runtimes.get(name) if kind == "check" else None
        service = rt.spec.service if rt is not None else (name if kind == "service" else None)
        with self._lock:
            for spec in self.specs.values():
                takes = (spec.matches(name, service) if kind == "check"
                         else not spec.services or name in spec.services)
                if not takes or "remediation" not in spec.on:
                    continue
                if not recovered:
                    self.outbox.open(spec.name, Alert(
                        check=name, status="firing", reason="remediation", severity="warning",
                        summary=f"{item_id}: {item.title}", host=self.host, starts_at=now,
                        service=service, extra_labels=dict(spec.labels),
                        notes={"acceptance": item.acceptance, "where": item.where}), key)
                elif spec.resolves and (row := next((r for r in self.outbox.rows() if (
                        r.sink, r.check, r.status) == (spec.name, key, "firing")), None)):
                    row.alert.status, row.alert.ends_at = "resolved", now
                    self.outbox.resolve(spec.name, row.alert, now, key)
                else:
                    self.outbox.forget(spec.name, key)
                self.senders[spec.name].nudge()

    def start(self) -> None:
        self._started = True
        self._run()

    def _run(self) -> None:
        """Start the senders, and the alerts' thread when there are sinks."""
        for sender in self.senders.values():
            sender.start()
        if self.specs and self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="alerts", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self.wake.set()
        if self._thread is not None:
            self._thread.join(5)
        for sender in self.senders.values():
            sender.stop()
        self.outbox.close()

    def _event(self, event: str, _fields: Fields) -> None:
        if event != "check.result":  # a state change or a heal: decide now, not at the tick
            self.wake.set()

    def _loop(self) -> None:
        complained = 0.0
        while not self._stop.is_set():
            self.wake.clear()  # before looking: an event from now on wakes the next look
            try:
                with self._lock:
                    self.evaluate(time.time())
            except (sqlite3.Error, OSError, Unreadable) as exc:
                # Nothing was decided: the next tick decides again. Said once a minute.
                if time.monotonic() - complained >= DROPS_REPORTED_EVERY:
                    complained = time.monotonic()
                    log.error("alert.failed", sink="*", error=f"cannot use the state "
                                                              f"database: {exc}")
            self.wake.wait(TICK)

    # -- decisions -------------------------------------------------------------------

    def evaluate(self, now: float) -> None:
        if not self.specs:
            return
        if not self._reconciled:
            self._reconcile()
        self._refresh_silences(now)
        self.burns.decide(self.specs, self.senders, now, self._drop, self._maintained)
        if not self.open and not self.checks.states[State.FAILING.value]:
            return  # the common case, whatever the number of checks: nothing to look at
        enabled = self.checks.enabled()
        failing = {name: rt for name, rt in enabled.items()
                   if rt.machine.state is State.FAILING}
        for (sink, check), alert in list(self.open.items()):
            spec, rt = self.specs[sink], enabled.get(check)
            if rt is None or not spec.matches(check, rt.spec.service) or _recovered(rt):
                self._resolve(spec, alert, now)
        for name, rt in failing.items():
            if self.checks.maintenance.covering(name, rt.spec.service):
                continue  # worked on: nothing opens
            for spec in self.specs.values():
                if (spec.name, name) not in self.open and spec.matches(name, rt.spec.service):
                    reason = self._reason(spec, rt)
                    if reason is not None:
                        self._open(spec, rt, reason, now)

    def _maintained(self, check: str) -> bool:
        rt = self.checks.runtimes.get(check)
        return rt is not None and self.checks.maintenance.covering(
            check, rt.spec.service) is not None

    def _reason(self, spec: AlertSpec, rt: CheckRuntime) -> str | None:
        """Why ``rt``'s check alerts at this sink now ("failing", "heal_failed",
        "gave_up"); None while healing may still help, or while a dependency of its
        service fails (that one alerts instead)."""
        status = rt.status() or "UNKNOWN"
        srv = self.healer.services.get(rt.spec.service or "")
        reason: str | None = "failing"
        if srv is not None:
            if self.healer.failing_dependency(srv.spec.name):
                return None
            if spec.after_heal and srv.spec.heal:
                reason = self._heal_verdict(srv, rt)
        if reason is None or not spec.opens_on(reason, status):
            return None
        return reason

    def _heal_verdict(self, srv: ServiceRuntime, rt: CheckRuntime) -> str | None:
        if srv.given_up:
            return "gave_up"
        if srv.healing.locked():
            return None
        last: HealRecord = srv.last or {}
        if last.get("outcome") == Verdict.FAILED and last.get("at", 0) >= rt.machine.since:
            return "heal_failed"
        if rt.latest is not None and not rt.latest[0].healable:
            return "failing"  # the healer skips it: a restart would not help
        return None

    def _open(self, spec: AlertSpec, rt: CheckRuntime, reason: str, now: float) -> None:
        sink = spec.name
        if sum(key[0] == sink for key in self.open) >= spec.max_open:
            self._drop(spec, now)
            return
        last = rt.last_result()
        srv = self.healer.services.get(rt.spec.service or "")
        healing, attempts = _healing(srv, reason, rt) if srv is not None else ("", [])
        alert = Alert(check=rt.spec.name, status="firing", reason=reason,
                      severity="critical" if last and last["status"] == "CRIT" else "warning",
                      summary=redact(last["summary"] if last else ""), host=self.host,
                      starts_at=rt.machine.since, service=rt.spec.service,
                      healing=healing, attempts=attempts, extra_labels=dict(spec.labels),
                      opened_at=now)
        self.outbox.open(sink, alert)
        self.open[(sink, alert.check)] = alert
        log.warning("alert.opened", sink=sink, check=alert.check, reason=reason,
                    healing=healing, silenced=self.silenced(alert.check, now))
        self.senders[sink].nudge()

    def _resolve(self, spec: AlertSpec, alert: Alert, now: float) -> None:
        """The check recovered (or is no longer this sink's): its resolution is queued.
        The sender drops it if the sink was never told the alert fired (silenced, or
        not yet through): only it knows, as a send may be under way."""
        del self.open[(spec.name, alert.check)]
        alert.status, alert.ends_at = "resolved", now
        if spec.resolves:
            self.outbox.resolve(spec.name, alert, now)
            self.senders[spec.name].nudge()
        else:
            self.outbox.forget(spec.name, alert.check)
        log.info("alert.resolved", sink=spec.name, check=alert.check,
                 sends_resolution=spec.resolves, lasted_s=round(alert.lasted(now), 1),
                 failing_s=round(now - alert.starts_at, 1))

    def _drop(self, spec: AlertSpec, now: float) -> None:
        """An alert past ``max_open``: counted, and said at most once a minute."""
        self._dropped[spec.name] += 1
        if now - self._drops_said.get(spec.name, 0.0) >= DROPS_REPORTED_EVERY:
            self._drops_said[spec.name] = now
            log.error("alert.dropped", sink=spec.name, dropped=self._dropped[spec.name],
                      open=spec.max_open, reason=f"{spec.max_open} alerts are open at this "
                                                 "sink (max_open)")

    # -- silences --------------------------------------------------------------------

    def _silence_list(self) -> list[Silence]:
        """The silences, and a silence for each check under maintenance: its news is
        held back as a silence holds it (and mirrored to Alertmanager as one)."""
        held = list(self.silences.values())
        book = self.checks.maintenance
        if book:
            for name, rt in self.checks.enabled().items():
                window = book.covering(name, rt.spec.service)
                if window is not None:
                    # Open-ended: a far end a sink can still write (Alertmanager's).
                    held.append(Silence(name, window.since + OPEN_ENDED if window.until is None
                                        else window.until,
                                        f"maintenance: {window.reason or window.by}",
                                        window.since))
        return held

    def silenced(self, check: str, now: float) -> bool:
        return any(s.covers(check, now) for s in self._silence_list())

    def _refresh_silences(self, now: float) -> None:
        expired = {p for p, s in self.silences.items() if s.until <= now}
        if expired:
            self.outbox.expire(now)
        current = {s.pattern: s for s in self.outbox.silences()}
        for pattern, entry in current.items():
            if self.silences.get(pattern) != entry:
                log.info("alert.silenced", pattern=pattern, reason=entry.reason,
                         until=datetime.fromtimestamp(entry.until, UTC).isoformat())
        for pattern in self.silences.keys() - current.keys():
            log.info("alert.unsilenced", pattern=pattern,
                     why="expired" if pattern in expired else "removed")
            for sender in self.senders.values():
                sender.nudge()  # what the silence held back goes now
        self.silences = current


def _recovered(rt: CheckRuntime) -> bool:
    """OK, and by a pass in this process: a state restored at a restart may predate a
    failure whose state change was not yet saved when vigil was killed."""
    return (rt.machine.state is State.OK and rt.latest is not None
            and rt.latest[0].status.passing)


def _healing(srv: ServiceRuntime, reason: str, rt: CheckRuntime) -> tuple[str, list[float]]:
    """What healing did, in a sentence, and when each heal began."""
    attempts = list(srv.history)
    last: HealRecord = srv.last or {}
    at = ", ".join(datetime.fromtimestamp(t, UTC).strftime("%H:%M:%S") for t in attempts)
    heals = f"{len(attempts)} heal{'s' * (len(attempts) != 1)}"
    why = last.get("reason", "unknown")
    if said := (last.get("output") or "").strip().splitlines()[-1:]:
        why += f" ({said[0][:200]})"  # the command's last words: usually the error
    if reason == "gave_up":
        ended = ("succeeded, but the service failed again" if last.get("outcome") ==
                 Verdict.SUCCEEDED else f"failed: {why}")
        return (f"gave up after {heals} within {format_duration(srv.spec.within)} "
                f"(at {at} UTC); the last {ended}", attempts)
    if reason == "heal_failed":
        return (f"heal {len(attempts)} of {srv.spec.restarts} failed at {at.split(', ')[-1]} "
                f"UTC: {why}", attempts)
    if not srv.spec.heal:
        return "not healed: the service is report-only (heal = false)", attempts
    if rt.latest is not None and not rt.latest[0].healable:
        return "not healed: a restart would not help", attempts
    return "", attempts
