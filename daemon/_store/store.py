"""The state store: each check's and service's state, and the history, in the state
database (``database``). Callers only queue what changed, from any thread; the
writer (``writer``) commits it in one batch about once a second. A kill at any moment
loses at most the batch not yet committed and never leaves an unreadable database
(SQLite's journal sees to that)."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import cast

from vigil._kit.private import private_dir
from vigil._store import database
from vigil._store.batch import Batch, PendingResult
from vigil._store.database import Unreadable
from vigil._store.history import CHECKPOINT_EVERY, Retention
from vigil._store.records import CheckEntry, DaemonInfo, HealRecord, Saved, ServiceEntry
from vigil._store.writer import Writer


class Store:
    def __init__(self, state_dir: Path, retention: Retention | None = None) -> None:
        self.dir = state_dir
        self.path = state_dir / database.DB
        #: None: no history is kept.
        self.retention = retention
        self._pending = Batch(retention=retention)
        self._lock = threading.Lock()
        self.writer = Writer(self.path, self._take, self._put_back, lambda: self.retention)

    def load(self) -> Saved:
        """Open (or make) the database and read the saved state: ``{"checks": {...},
        "services": {...}}``. An unreadable database is set aside first; one that cannot
        be opened at all (a full disk) gives empty state, and the writer keeps trying."""
        private_dir(self.dir)
        for leftover in self.dir.glob(f".{database.LEGACY}.*.tmp"):
            leftover.unlink(missing_ok=True)
        for _ in range(2):  # a second time only after a damaged file was set aside
            try:
                conn = self.writer.connect()
                database.migrate(conn, self.dir)
                # The rows are the records as they were saved (by this vigil or an
                # older one: their readers take missing keys into account).
                return cast(Saved, {table: {name: json.loads(data) for name, data in
                                            conn.execute(f"SELECT name, data FROM {table}")}
                                    for table in ("checks", "services")})
            except (sqlite3.Error, OSError, Unreadable) as exc:
                self.writer.failed(exc)
                if not database.is_damage(exc):
                    break
        return {"checks": {}, "services": {}}

    def checkpoint_due(self, saved: float, now: float) -> bool:
        """Whether a check whose entry was last saved at ``saved`` is saved again now,
        though nothing changed: at every run without history (its latest result lives
        nowhere else), else every CHECKPOINT_EVERY."""
        return self.retention is None or now - saved >= CHECKPOINT_EVERY

    # -- recording: any thread; cheap, only queues -----------------------------------

    def check(self, name: str, entry: CheckEntry) -> None:
        with self._lock:
            self._pending.checks[name] = entry

    def services(self, snapshot: dict[str, ServiceEntry]) -> None:
        with self._lock:
            self._pending.services = snapshot

    def daemon(self, info: DaemonInfo) -> None:
        with self._lock:
            self._pending.daemon = info

    def baselines(self, learnt: dict[str, dict[str, int]]) -> None:
        """The windows each watched series' baseline has learnt, by check: all of them,
        the latest word wins."""
        with self._lock:
            self._pending.baselines = learnt

    def retain(self, names: set[str], retention: Retention | None) -> None:
        """The configured checks (state rows of others are dropped) and how long history
        is kept (None: no history)."""
        with self._lock:
            self._pending.retain = set(names)
            self._pending.retention = self.retention = retention

    def result(self, name: str, at: float, status: int, duration_ms: float,
               metrics: dict[str, float], summary: str, maintenance: bool = False,
               counts: dict[str, int] | None = None) -> None:
        """One result; ``maintenance``: it came under a maintenance window (kept, but
        not counted in the uptime); ``counts``: the events it counted."""
        if self.retention is not None:
            with self._lock:
                self._pending.results.append(PendingResult(
                    name, at, status, duration_ms, metrics, summary, maintenance, counts or {}))

    def transition(self, name: str, at: float, old: str, new: str, status: int,
                   summary: str) -> None:
        if self.retention is not None:
            with self._lock:
                self._pending.transitions.append((name, at, old, new, status, summary))

    def heal(self, service: str, at: float, outcome: HealRecord) -> None:
        if self.retention is not None:
            with self._lock:
                self._pending.heals.append((service, at, outcome))

    def anomaly(self, check: str, series: str, start: float, end: float | None, score: float,
                value: float, usual: float) -> None:
        """An anomaly of a watched series, begun (``end`` None) or ended."""
        if self.retention is not None:
            with self._lock:
                self._pending.anomalies.append((check, series, start, end, score, value,
                                                usual))

    def _take(self) -> Batch:
        with self._lock:
            batch, self._pending = self._pending, Batch()
        return batch

    def _put_back(self, batch: Batch) -> int:
        with self._lock:
            return self._pending.merge_older(batch)

    def start(self) -> None:
        self.writer.start()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued before this call is committed (or has failed)."""
        return self.writer.flush(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Commit what is queued, stop the writer, and fold the journal into the file."""
        self.writer.close(timeout)
