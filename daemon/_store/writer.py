"""The state database's one writer: a thread that commits what the store queued, about
once a second, in one transaction, and rolls the history up once a minute. A write that
fails (a full disk) is logged, put back for the next try, and the checks go on."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import structlog

from vigil._store import history
from vigil._store.batch import Batch
from vigil._store.database import Unreadable, compact, is_damage, open_database, set_aside
from vigil._store.history import Retention

#: How often the writer commits what was queued.
FLUSH_EVERY = 1.0
#: How often history is rolled up and pruned.
ROLL_EVERY = 60.0
#: A failing write is logged at most this often.
COMPLAIN_EVERY = 60.0

log = structlog.get_logger("vigil.store")


class Writer:
    """Takes batches with ``take()``; hands back one that failed with ``put_back(batch)``
    (which says how many results it had to drop)."""

    def __init__(self, path: Path, take: Callable[[], Batch],
                 put_back: Callable[[Batch], int],
                 retention: Callable[[], Retention | None]) -> None:
        self.path = path
        self._take = take
        self._put_back = put_back
        self._retention = retention
        self._conn: sqlite3.Connection | None = None
        self._ids: dict[str, int] = {}
        #: The last summary written for each check: a result repeats it as NULL.
        self._summaries: dict[int, str] = {}
        self._wake = threading.Event()
        self._cycles = threading.Condition()
        self._started = self._done = 0
        self._stop = False
        self._thread: threading.Thread | None = None
        self._rolled = 0.0
        self._failing_since: float | None = None
        self._complained = 0.0
        self._dropped = 0

    def connect(self) -> sqlite3.Connection:
        """The writer's connection, opened (with its caches) when there is none."""
        if self._conn is None:
            conn = open_database(self.path)
            self._ids = dict(conn.execute("SELECT name, id FROM names"))
            self._summaries = {}
            self._conn = conn
        return self._conn

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="state-writer",
                                        daemon=True)
        self._thread.start()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued before this call is committed (or has failed)."""
        if self._thread is None:
            self._cycle()
            return True
        with self._cycles:
            wanted = self._started + 1
            self._wake.set()
            return self._cycles.wait_for(lambda: self._done >= wanted, timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Commit what is queued, stop the writer, and fold the journal into the file."""
        self._stop = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        else:
            self._cycle()
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._conn.close()
            self._conn = None

    def _loop(self) -> None:
        while not self._stop:
            self._wake.wait(FLUSH_EVERY)
            self._wake.clear()
            self._cycle()
        self._cycle()

    def _cycle(self) -> None:
        with self._cycles:
            self._started += 1
            number = self._started
        batch = self._take()
        try:
            if batch:
                self._commit(batch)
            retention = self._retention()
            if retention is not None and time.monotonic() - self._rolled >= ROLL_EVERY:
                self._roll(retention)
            if self._failing_since is not None:
                log.info("state.write_recovered", path=str(self.path),
                         failed_for_s=round(time.monotonic() - self._failing_since, 1),
                         dropped_results=self._dropped)
                self._failing_since, self._dropped = None, 0
        except (sqlite3.Error, OSError, Unreadable) as exc:
            self._dropped += self._put_back(batch)
            self.failed(exc)
        finally:
            with self._cycles:
                self._done = number
                self._cycles.notify_all()

    def failed(self, exc: BaseException) -> None:
        """After an error: reconnect next time (the cached ids and summaries may not have
        been committed); a damaged file is set aside for inspection, and the next try
        starts a new one; anything else (a full disk) is logged."""
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
        self._conn = None
        if not is_damage(exc):
            self._complain(exc)
            return
        try:
            set_aside(self.path, str(exc), with_journal=True)
        except OSError as err:
            self._complain(err)

    def _complain(self, exc: BaseException) -> None:
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
        elif now - self._complained < COMPLAIN_EVERY:
            return
        self._complained = now
        log.error("state.write_failed", path=str(self.path), error=str(exc),
                  dropped_results=self._dropped,
                  hint="the checks go on; the state is written again once this is fixed")

    def _commit(self, batch: Batch) -> None:
        conn = self.connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            self._write(conn, batch)
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise

    def _write(self, conn: sqlite3.Connection, batch: Batch) -> None:
        upsert = ("INSERT INTO {0} VALUES (?, ?) "
                  "ON CONFLICT (name) DO UPDATE SET data = excluded.data")
        conn.executemany(upsert.format("checks"),
                         [(name, compact(entry)) for name, entry in batch.checks.items()])
        if batch.services is not None:
            conn.executemany(upsert.format("services"),
                             [(n, compact(e)) for n, e in batch.services.items()])
            conn.execute("DELETE FROM services WHERE name NOT IN (SELECT value FROM "
                         "json_each(?))", (compact(list(batch.services)),))
        if batch.retain is not None:
            conn.execute("DELETE FROM checks WHERE name NOT IN (SELECT value FROM "
                         "json_each(?))", (compact(sorted(batch.retain)),))
        if batch.retention is not None:
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('retention', ?)",
                         (compact(vars(batch.retention)),))
        if batch.daemon is not None:
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('daemon', ?)",
                         (compact(batch.daemon),))
        if batch.baselines is not None:
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('baselines', ?)",
                         (compact(batch.baselines),))
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('updated', ?)", (str(time.time()),))
        rows = []
        for name, at, status, duration_ms, metrics, summary, maint, counts in batch.results:
            check_id = self._id(conn, name)
            said = None if self._summaries.get(check_id) == summary else summary
            self._summaries[check_id] = summary
            rows.append((int(at * 1000), check_id, status, int(duration_ms * 1000),
                         compact(metrics) if metrics else None, said, int(maint),
                         compact(counts) if counts else None))
        conn.executemany("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.executemany("INSERT INTO transitions VALUES (?, ?, ?, ?, ?, ?)",
                         [(int(at * 1000), self._id(conn, name), old, new, status, summary)
                          for name, at, old, new, status, summary in batch.transitions])
        conn.executemany("INSERT OR REPLACE INTO anomalies VALUES (?, ?, ?, ?, ?, ?, ?)",
                         [(self._id(conn, check), *rest) for check, *rest in batch.anomalies])
        conn.executemany("INSERT INTO heals VALUES (?, ?, ?, ?)",
                         [(int(at * 1000), service, outcome.get("outcome", ""),
                           compact(outcome)) for service, at, outcome in batch.heals])

    def _id(self, conn: sqlite3.Connection, name: str) -> int:
        check_id = self._ids.get(name)
        if check_id is None:
            cursor = conn.execute("INSERT INTO names (name) VALUES (?)", (name,))
            check_id = self._ids[name] = int(cursor.lastrowid or 0)
        return check_id

    def _roll(self, retention: Retention) -> None:
        conn = self.connect()
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            history.roll_up(conn, now)
            history.prune(conn, now, retention)
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        self._rolled = time.monotonic()
