"""The daemon's maintenance windows: those `vigil maintenance`, the API and `vigil
deploy` write to the state database, those the config schedules (but for an occurrence
ended early, which the database records), and those the healer opens for a service
stopped on purpose. Read once a second (at once when asked); a
window that began or ended is said, and the checks of one that ended run at once, to be
judged afresh. The database is read at the start and when a window was written there
(`vigil maintenance` and `vigil deploy` say so over the control socket, the API on the
event stream): a connection a second would cost the daemon memory for nothing."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import structlog

from vigil._config.sections import ScheduleSpec
from vigil._engine import maintenance as scheduled
from vigil._engine.checktable import CheckTable
from vigil._store import database, maintenance
from vigil._store.maintenance import Window

log = structlog.get_logger("vigil")

#: How often the windows are read from the state database.
READ_EVERY = 1.0


class Windows:
    def __init__(self, state_dir: Path, checks: CheckTable) -> None:
        self.state_dir = state_dir
        self.checks = checks
        #: monotonic time of the last look; 0: read the database at the next tick.
        self.read_at = 0.0
        #: The windows the database held at the last read, and the scheduled windows
        #: ended early (``maintenance.schedule_ends``).
        self._stored: list[Window] = []
        self._ends: dict[str, float] = {}
        checks.events.subscribe(self._heard)
        #: Held while the windows are read or changed: a read under way must not undo a
        #: window the healer just opened.
        self._lock = threading.Lock()

    @property
    def schedules(self) -> dict[str, ScheduleSpec]:
        """The config's ``[maintenance.NAME]`` windows (the API lists and ends them too)."""
        return self.checks.maintenance.schedules

    @schedules.setter
    def schedules(self, specs: dict[str, ScheduleSpec]) -> None:
        self.checks.maintenance.schedules = specs

    def tick(self) -> None:
        asked = self.read_at == 0.0
        if not asked and time.monotonic() - self.read_at < READ_EVERY:
            return
        self.read_at = time.monotonic()
        with self._lock:
            self._adopt(read=asked)

    def refresh(self) -> None:
        """Read the database's windows now (`vigil maintenance` wrote one): a `vigil
        status` right after shows it in effect."""
        with self._lock:
            self.read_at = time.monotonic()
            self._adopt(read=True)

    def _heard(self, event: str, _fields: object) -> None:
        if event == "maintenance.written":
            self.read_at = 0.0

    def _adopt(self, read: bool) -> None:
        if read:
            try:
                conn = database.connect_readonly(self.state_dir)
                self._stored, self._ends = ([], {}) if conn is None else _read(conn)
            except sqlite3.Error:
                self.read_at = 0.0  # the writer holds it, or it was set aside: again
                return
        now = time.time()
        found = [*self._stored,
                 *scheduled.windows(self.schedules.values(), self._ends, now)]
        began, ended = self.checks.maintenance.update(found, now)
        if began or ended:  # the status page takes its state anew
            self.checks.events.publish("maintenance.changed")
        for window in began:
            log.warning("maintenance.started", target=window.target, reason=window.reason,
                        by=window.by, until=None if window.until is None else
                        datetime.fromtimestamp(window.until, UTC).isoformat())
        for window, why in ended:
            log.info("maintenance.ended", target=window.target, why=why)
            for name, rt in self.checks.enabled().items():
                if window.covers(name, rt.spec.service):
                    self.checks.run_now(name)

    def hold(self, window: Window) -> None:
        """The healer's: a service stopped on purpose is under maintenance, at once and
        across a restart of vigil."""
        with self._lock:
            self._change(lambda conn: maintenance.start(conn, window))
            self._stored = [*(w for w in self._stored if w.target != window.target), window]
            self.checks.maintenance.add(window)
        self.checks.events.publish("maintenance.changed")
        log.warning("maintenance.started", target=window.target, reason=window.reason,
                    by=window.by, until=None)

    def release(self, target: str, why: str) -> None:
        with self._lock:
            self._change(lambda conn: maintenance.end(conn, target))
            for window in self._stored:
                if window.target == target:
                    self.checks.maintenance.remove(window)
            self._stored = [w for w in self._stored if w.target != target]
        self.checks.events.publish("maintenance.changed")
        log.info("maintenance.ended", target=target, why=why)

    def _change(self, change: Callable[[sqlite3.Connection], object]) -> None:
        try:
            with contextlib.closing(database.open_database(self.state_dir / database.DB)) as c:
                change(c)
        except (sqlite3.Error, database.Unreadable, OSError) as exc:
            log.error("maintenance.unsaved", error=str(exc),
                      hint="in effect until vigil restarts, not after")


def _read(conn: sqlite3.Connection) -> tuple[list[Window], dict[str, float]]:
    with contextlib.closing(conn):
        return maintenance.windows(conn), maintenance.schedule_ends(conn)
