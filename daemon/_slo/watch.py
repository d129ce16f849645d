"""The daemon's objectives: counted every ``[daemon] slo_interval`` on a thread of their
own from a read-only connection to the state database, the last reports kept for
/metrics, the API and the status page. A change of status is logged (``slo.burning``,
``slo.recovered``, ``slo.exhausted`` when the budget is spent) and published on the
hub, where the alerts open and resolve their burn alerts."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from vigil._config.sections import SloSpec
from vigil._engine.events import EventHub
from vigil._store import database
from vigil._store.history import Retention

if TYPE_CHECKING:
    from vigil._slo.objectives import Objectives, Report

log = structlog.get_logger("vigil.slo")

class SloWatch:
    """The objectives' own thread (there is none without objectives): a first count at
    a start takes seconds for a month of history, which the main loop must not wait
    for."""

    def __init__(self, state_dir: Path, events: EventHub) -> None:
        self.state_dir = state_dir
        self.events = events
        #: name -> the last report; replaced whole, never changed in place (the web
        #: reads it from its own threads).
        self.reports: dict[str, Report] = {}
        self.interval = 30.0
        self._objectives: Objectives | None = None
        self._conn: sqlite3.Connection | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def install(self, slos: dict[str, SloSpec], keep: Retention | None,
                interval: float = 30.0) -> None:
        """Adopt a config's objectives (none without history), counted at once. An
        objective that stays keeps its last report, so a reload logs no change."""
        objectives = None
        if slos and keep is not None:
            # Imported with the first objective: a daemon without one does not carry them.
            from vigil._slo.objectives import Objectives

            objectives = Objectives(slos, keep)
        with self._lock:
            self._objectives = objectives
            self.reports = {name: r for name, r in self.reports.items() if name in slos}
            self.interval = interval
        if self._objectives is not None and self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="objectives", daemon=True)
            self._thread.start()
        self._wake.set()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
        self._disconnect()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            self.count(time.time())
            self._wake.wait(self.interval)

    def count(self, now: float) -> None:
        """Count every objective now (on this thread, without the lock: a reload on the
        main loop never waits for a count); log and publish what changed."""
        objectives = self._objectives
        if objectives is None:
            return
        try:
            if self._conn is None:
                self._conn = database.connect_readonly(self.state_dir)
                if self._conn is None:
                    return  # nothing written yet
            reports = objectives.evaluate(self._conn, now)
        except sqlite3.Error as exc:
            log.error("slo.failed", error=str(exc), retry_in_s=self.interval)
            self._disconnect()
            return
        with self._lock:
            if objectives is not self._objectives:
                return  # reloaded meanwhile: the new objectives are counted next
            for report in reports:
                self._compare(self.reports.get(report.name), report)
            self.reports = {report.name: report for report in reports}

    def _disconnect(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None

    def _compare(self, old: Report | None, new: Report) -> None:
        was = old.status if old is not None else "ok"
        fields = {"slo": new.name, "status": new.status,
                  "budget_remaining": round(new.budget_remaining, 4),
                  "burn_rate": {k: round(v, 2) for k, v in new.burn_rate.items()}}
        if new.status != was:
            if new.status == "ok":
                log.info("slo.recovered", was=was, **fields)
            else:
                log.warning("slo.burning", was=was, firing=new.as_json()["firing"], **fields)
            self.events.publish("slo.changed", **fields)
        spent = old.budget_remaining <= 0 if old is not None else False
        if new.budget_remaining <= 0 < new.total and not spent:
            log.error("slo.exhausted", **fields)
