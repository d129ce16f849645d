"""The state database: each check's and service's state, and the history, in SQLite
(WAL) in the state folder. Callers only queue what changed; one writer thread commits
it in a batch about once a second. A kill at any moment loses at most the batch not
yet committed and never leaves an unreadable database (SQLite's journal sees to that);
a database that cannot be read is set aside and vigil starts fresh; a write that fails
(a full disk) is logged, kept for the next try, and the checks go on."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from vigil import _history as history
from vigil._history import Retention

DB = "state.db"
#: The JSON state file of earlier versions, migrated once and kept as ``.bak``.
LEGACY = "state.json"
SCHEMA = 1
#: How often the writer commits what was queued.
FLUSH_EVERY = 1.0
#: How often history is rolled up and pruned.
ROLL_EVERY = 60.0
#: Results kept in memory while writes fail; the oldest go first beyond this.
MAX_PENDING = 100_000
#: A failing write is logged at most this often.
COMPLAIN_EVERY = 60.0

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checks (name TEXT PRIMARY KEY, data TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS services (name TEXT PRIMARY KEY, data TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS names (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
-- Clustered by time: a write appends, a window is one range.
CREATE TABLE IF NOT EXISTS results (
    at INTEGER NOT NULL, check_id INTEGER NOT NULL, status INTEGER NOT NULL,
    duration_us INTEGER NOT NULL, metrics TEXT, summary TEXT,
    PRIMARY KEY (at, check_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollups (
    check_id INTEGER NOT NULL, step INTEGER NOT NULL, start INTEGER NOT NULL,
    ok INTEGER NOT NULL, warn INTEGER NOT NULL, crit INTEGER NOT NULL, unknown INTEGER NOT NULL,
    dur_min INTEGER NOT NULL, dur_avg INTEGER NOT NULL, dur_max INTEGER NOT NULL, metrics TEXT,
    PRIMARY KEY (check_id, step, start)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS transitions (
    at INTEGER NOT NULL, check_id INTEGER NOT NULL, old TEXT NOT NULL, new TEXT NOT NULL,
    status INTEGER NOT NULL, summary TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS transitions_by_check ON transitions (check_id, at);
CREATE TABLE IF NOT EXISTS heals (
    at INTEGER NOT NULL, service TEXT NOT NULL, outcome TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS heals_by_service ON heals (service, at);
"""

log = structlog.get_logger("vigil.store")


class Unreadable(Exception):
    """The database is not one, or is damaged: it is set aside, never written over."""


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


@dataclass
class _Batch:
    """What is queued between two commits: state by name (the latest wins), history in
    order."""

    checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    services: dict[str, dict[str, Any]] | None = None
    daemon: dict[str, Any] | None = None
    #: Names of the configured checks: rows of any other check are dropped.
    retain: set[str] | None = None
    retention: Retention | None = None
    results: list[tuple[str, float, int, float, dict[str, float], str]] = field(
        default_factory=list)
    transitions: list[tuple[str, float, str, str, int, str]] = field(default_factory=list)
    heals: list[tuple[str, float, dict[str, Any]]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.checks or self.services is not None or self.daemon is not None
                    or self.retain is not None or self.results or self.transitions
                    or self.heals)

    def merge_older(self, older: _Batch) -> int:
        """Put back a batch that failed to commit, under what was queued since; how many
        results were dropped to keep memory bounded."""
        self.checks = {**older.checks, **self.checks}
        for name in ("services", "daemon", "retain", "retention"):
            if getattr(self, name) is None:
                setattr(self, name, getattr(older, name))
        self.results = older.results + self.results
        self.transitions = older.transitions + self.transitions
        self.heals = older.heals + self.heals
        dropped = max(0, len(self.results) - MAX_PENDING)
        del self.results[:dropped]
        return dropped


class Store:
    def __init__(self, state_dir: Path, retention: Retention | None = None) -> None:
        self.dir = state_dir
        self.path = state_dir / DB
        #: None: no history is kept.
        self.retention = retention
        self._pending = _Batch(retention=retention)
        self._lock = threading.Lock()
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

    # -- opening ---------------------------------------------------------------------

    def load(self) -> dict[str, Any]:
        """Open (or make) the database and read the saved state: ``{"checks": {...},
        "services": {...}}``. An unreadable database is set aside first; one that cannot
        be opened at all (a full disk) gives empty state, and the writer keeps trying."""
        self.dir.mkdir(parents=True, exist_ok=True)
        for leftover in self.dir.glob(f".{LEGACY}.*.tmp"):
            leftover.unlink(missing_ok=True)
        try:
            conn = self._connect()
        except Unreadable as exc:
            self._set_aside(self.path, str(exc), with_journal=True)
            try:
                conn = self._connect()
            except (sqlite3.Error, OSError, Unreadable) as again:
                self._complain(again)
                return {}
        except (sqlite3.Error, OSError) as exc:
            self._complain(exc)
            return {}
        try:
            self._migrate(conn)
        except (sqlite3.Error, OSError) as exc:
            self._complain(exc)
        return {table: {name: json.loads(data)
                        for name, data in conn.execute(f"SELECT name, data FROM {table}")}
                for table in ("checks", "services")}

    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        if not self.path.exists():
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        conn = sqlite3.connect(self.path, timeout=10, isolation_level=None,
                               check_same_thread=False)
        try:
            if conn.execute("PRAGMA quick_check").fetchone() != ("ok",):
                raise Unreadable("the database fails its integrity check")
            conn.execute("PRAGMA journal_mode = WAL")
            # A kill loses nothing committed with NORMAL in WAL mode; only a power cut
            # may lose the last commits.
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.executescript(SCHEMA_SQL)
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if row is None:
                conn.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA),))
            elif int(row[0]) > SCHEMA:
                raise Unreadable(f"written by a newer vigil (schema {row[0]})")
        except sqlite3.DatabaseError as exc:
            conn.close()
            if exc.sqlite_errorname in ("SQLITE_NOTADB", "SQLITE_CORRUPT"):
                raise Unreadable(str(exc)) from exc
            raise
        except Unreadable:
            conn.close()
            raise
        self._ids = dict(conn.execute("SELECT name, id FROM names"))
        self._summaries = {}
        self._conn = conn
        return conn

    def _set_aside(self, path: Path, why: str, with_journal: bool = False) -> None:
        suffix = f".unreadable-{int(time.time())}"
        aside = path.with_name(path.name + suffix)
        os.replace(path, aside)
        if with_journal:
            for extra in ("-wal", "-shm"):
                journal = path.with_name(path.name + extra)
                if journal.exists():
                    os.replace(journal, aside.with_name(aside.name + extra))
        log.error("state.unreadable", path=str(path), moved_to=str(aside), error=why)

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Bring in the JSON state file of an earlier version, once; keep it as .bak."""
        legacy = self.dir / LEGACY
        if not legacy.exists():
            return
        if conn.execute("SELECT 1 FROM meta WHERE key = 'migrated'").fetchone() is None:
            try:
                data = json.loads(legacy.read_text(encoding="utf-8"))
                if not isinstance(data, dict):
                    raise ValueError("the state file does not hold a JSON object")
            except ValueError as exc:
                self._set_aside(legacy, str(exc))
                return
            conn.execute("BEGIN IMMEDIATE")
            for table in ("checks", "services"):
                conn.executemany(f"INSERT OR REPLACE INTO {table} VALUES (?, ?)",
                                 [(n, _compact(v)) for n, v in data.get(table, {}).items()])
            conn.execute("INSERT INTO meta VALUES ('migrated', ?)", (str(legacy),))
            conn.execute("COMMIT")
        backup = legacy.with_name(LEGACY + ".bak")
        os.replace(legacy, backup)
        log.info("state.migrated", path=str(legacy), to=str(self.path), kept_as=str(backup))

    # -- recording: any thread; cheap, only queues -----------------------------------

    def check(self, name: str, entry: dict[str, Any]) -> None:
        with self._lock:
            self._pending.checks[name] = entry

    def services(self, snapshot: dict[str, dict[str, Any]]) -> None:
        with self._lock:
            self._pending.services = snapshot

    def daemon(self, info: dict[str, Any]) -> None:
        with self._lock:
            self._pending.daemon = info

    def retain(self, names: set[str], retention: Retention | None) -> None:
        """The configured checks (state rows of others are dropped) and how long history
        is kept (None: no history)."""
        with self._lock:
            self._pending.retain = set(names)
            self._pending.retention = self.retention = retention

    def result(self, name: str, at: float, status: int, duration_ms: float,
               metrics: dict[str, float], summary: str) -> None:
        if self.retention is not None:
            with self._lock:
                self._pending.results.append((name, at, status, duration_ms, metrics, summary))

    def transition(self, name: str, at: float, old: str, new: str, status: int,
                   summary: str) -> None:
        if self.retention is not None:
            with self._lock:
                self._pending.transitions.append((name, at, old, new, status, summary))

    def heal(self, service: str, at: float, outcome: dict[str, Any]) -> None:
        if self.retention is not None:
            with self._lock:
                self._pending.heals.append((service, at, outcome))

    # -- the writer ------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._write_loop, name="state-writer",
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

    def _write_loop(self) -> None:
        while not self._stop:
            self._wake.wait(FLUSH_EVERY)
            self._wake.clear()
            self._cycle()
        self._cycle()

    def _cycle(self) -> None:
        with self._cycles:
            self._started += 1
            number = self._started
        with self._lock:
            batch, self._pending = self._pending, _Batch()
        try:
            if batch:
                self._commit(batch)
            if self.retention is not None and time.monotonic() - self._rolled >= ROLL_EVERY:
                self._roll(self.retention)
            if self._failing_since is not None:
                log.info("state.write_recovered", path=str(self.path),
                         failed_for_s=round(time.monotonic() - self._failing_since, 1),
                         dropped_results=self._dropped)
                self._failing_since, self._dropped = None, 0
        except (sqlite3.Error, OSError, Unreadable) as exc:
            if self._conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.close()
            # Reconnect next time: the cached ids and summaries may not have been committed.
            self._conn = None
            with self._lock:
                self._dropped += self._pending.merge_older(batch)
            self._complain(exc)
        finally:
            with self._cycles:
                self._done = number
                self._cycles.notify_all()

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

    def _commit(self, batch: _Batch) -> None:
        conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            self._write(conn, batch)
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise

    def _write(self, conn: sqlite3.Connection, batch: _Batch) -> None:
        upsert = ("INSERT INTO {0} VALUES (?, ?) "
                  "ON CONFLICT (name) DO UPDATE SET data = excluded.data")
        conn.executemany(upsert.format("checks"),
                         [(name, _compact(entry)) for name, entry in batch.checks.items()])
        if batch.services is not None:
            conn.executemany(upsert.format("services"),
                             [(n, _compact(e)) for n, e in batch.services.items()])
            conn.execute("DELETE FROM services WHERE name NOT IN (SELECT value FROM "
                         "json_each(?))", (_compact(list(batch.services)),))
        if batch.retain is not None:
            conn.execute("DELETE FROM checks WHERE name NOT IN (SELECT value FROM "
                         "json_each(?))", (_compact(sorted(batch.retain)),))
        if batch.retention is not None:
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('retention', ?)",
                         (_compact(vars(batch.retention)),))
        if batch.daemon is not None:
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('daemon', ?)",
                         (_compact(batch.daemon),))
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('updated', ?)", (str(time.time()),))
        rows = []
        for name, at, status, duration_ms, metrics, summary in batch.results:
            check_id = self._id(conn, name)
            said = None if self._summaries.get(check_id) == summary else summary
            self._summaries[check_id] = summary
            rows.append((int(at * 1000), check_id, status, int(duration_ms * 1000),
                         _compact(metrics) if metrics else None, said))
        conn.executemany("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?)", rows)
        conn.executemany("INSERT INTO transitions VALUES (?, ?, ?, ?, ?, ?)",
                         [(int(at * 1000), self._id(conn, name), old, new, status, summary)
                          for name, at, old, new, status, summary in batch.transitions])
        conn.executemany("INSERT INTO heals VALUES (?, ?, ?, ?)",
                         [(int(at * 1000), service, outcome.get("outcome", ""),
                           _compact(outcome)) for service, at, outcome in batch.heals])

    def _id(self, conn: sqlite3.Connection, name: str) -> int:
        check_id = self._ids.get(name)
        if check_id is None:
            cursor = conn.execute("INSERT INTO names (name) VALUES (?)", (name,))
            check_id = self._ids[name] = int(cursor.lastrowid or 0)
        return check_id

    def _roll(self, retention: Retention) -> None:
        conn = self._connect()
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


def connect_readonly(state_dir: Path) -> sqlite3.Connection | None:
    """A read-only connection to the state database, or None when there is none."""
    path = state_dir / DB
    if not path.exists():
        return None
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)


def read_state_at(state_dir: Path) -> dict[str, Any] | None:
    """``read_state`` of the database in ``state_dir``; None when there is none."""
    conn = connect_readonly(state_dir)
    if conn is None:
        return None
    with contextlib.closing(conn):
        return read_state(conn)


def retention_of(conn: sqlite3.Connection) -> Retention | None:
    """How long the daemon keeps history, as it last said; None when it keeps none."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'retention'").fetchone()
    return Retention(**json.loads(row[0])) if row else None


def read_state(conn: sqlite3.Connection) -> dict[str, Any]:
    """What ``vigil status --json`` shows: the daemon's identity, every check (with its
    uptime over the last 24 hours when history is kept) and service."""
    meta = dict(conn.execute("SELECT key, value FROM meta"))
    checks = {name: json.loads(data) for name, data in conn.execute(
        "SELECT name, data FROM checks")}
    if (retention := retention_of(conn)) is not None:
        ids = dict(conn.execute("SELECT name, id FROM names"))
        now = time.time()
        counts = history.uptime(conn, [ids[n] for n in checks if n in ids], now - 86400, now,
                                retention)
        for name, entry in checks.items():
            passed, runs = counts.get(ids.get(name, -1), (0, 0))
            entry["uptime_24h"] = round(passed / runs, 6) if runs else None
    daemon = json.loads(meta.get("daemon", "{}"))
    if "updated" in meta:
        daemon["updated"] = datetime.fromtimestamp(float(meta["updated"]), UTC).isoformat()
    return {"schema": int(meta.get("schema", SCHEMA)), "daemon": daemon, "checks": checks,
            "services": {name: json.loads(data) for name, data in conn.execute(
                "SELECT name, data FROM services")}}
