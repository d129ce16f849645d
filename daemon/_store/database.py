"""The state database on disk: its schema, opening it (and setting aside one that cannot
be read), taking in the JSON state file of earlier versions, and reading it back for
the commands. The store (``store``) writes it."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from vigil._kit.redact import redact
from vigil._store import history
from vigil._store.history import Retention
from vigil._store.records import CheckEntry, CheckHistory, DaemonInfo, LastResult, Newest, Snapshot

DB = "state.db"
#: The JSON state file of earlier versions, migrated once and kept as ``.bak``.
LEGACY = "state.json"
#: 2: results say whether they came under maintenance (``maint``).
#: 3: what the objectives count: results' and rollups' ``counts`` (a plugin's event
#: counts; a rollup's durations on the latency ladder), rollups' ``minutes`` (with a
#: run) and ``bad_minutes`` (with a failing run).
#: 4: anomalies, a row per anomaly of a watched series (``baseline`` on a check).
SCHEMA = 4

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checks (name TEXT PRIMARY KEY, data TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS services (name TEXT PRIMARY KEY, data TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS names (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
-- Clustered by time: a write appends, a window is one range.
-- maint: the result came under a maintenance window (kept, but out of the uptime).
CREATE TABLE IF NOT EXISTS results (
    at INTEGER NOT NULL, check_id INTEGER NOT NULL, status INTEGER NOT NULL,
    duration_us INTEGER NOT NULL, metrics TEXT, summary TEXT,
    maint INTEGER NOT NULL DEFAULT 0, counts TEXT,
    PRIMARY KEY (at, check_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollups (
    check_id INTEGER NOT NULL, step INTEGER NOT NULL, start INTEGER NOT NULL,
    ok INTEGER NOT NULL, warn INTEGER NOT NULL, crit INTEGER NOT NULL, unknown INTEGER NOT NULL,
    dur_min INTEGER NOT NULL, dur_avg INTEGER NOT NULL, dur_max INTEGER NOT NULL, metrics TEXT,
    minutes INTEGER NOT NULL DEFAULT 0, bad_minutes INTEGER NOT NULL DEFAULT 0, counts TEXT,
    PRIMARY KEY (check_id, step, start)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS transitions (
    at INTEGER NOT NULL, check_id INTEGER NOT NULL, old TEXT NOT NULL, new TEXT NOT NULL,
    status INTEGER NOT NULL, summary TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS transitions_by_check ON transitions (check_id, at);
CREATE TABLE IF NOT EXISTS heals (
    at INTEGER NOT NULL, service TEXT NOT NULL, outcome TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS heals_by_service ON heals (service, at);
-- An anomaly of a check's series: from its first anomalous window (start) to the first
-- usual one after it (end; NULL while it lasts), its highest score, the value it began
-- with and what was usual then.
CREATE TABLE IF NOT EXISTS anomalies (
    check_id INTEGER NOT NULL, series TEXT NOT NULL, start REAL NOT NULL, end REAL,
    score REAL NOT NULL, value REAL NOT NULL, usual REAL NOT NULL,
    PRIMARY KEY (check_id, series, start)) WITHOUT ROWID;
-- The alert outbox: a row per sink and incident (check, and when it began) while its
-- alert lasts. A row is written before its notification is sent (pending = 1) and
-- marked when the sink took it.
CREATE TABLE IF NOT EXISTS alerts (
    sink TEXT NOT NULL, check_name TEXT NOT NULL, opened REAL NOT NULL, status TEXT NOT NULL,
    data TEXT NOT NULL, pending INTEGER NOT NULL, sent REAL, resolved REAL,
    attempts INTEGER NOT NULL DEFAULT 0, next_try REAL NOT NULL DEFAULT 0, error TEXT,
    PRIMARY KEY (sink, check_name, opened)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS silences (
    pattern TEXT PRIMARY KEY, until REAL NOT NULL, reason TEXT NOT NULL,
    created REAL NOT NULL) WITHOUT ROWID;
-- Maintenance windows: a service's name or a check glob, until when (NULL: until ended),
-- why, since when and who opened it (an operator, a deploy, a `systemctl stop`).
CREATE TABLE IF NOT EXISTS maintenance (
    target TEXT PRIMARY KEY, until REAL, reason TEXT NOT NULL, since REAL NOT NULL,
    by TEXT NOT NULL) WITHOUT ROWID;
-- A scheduled window ([maintenance.NAME]) ended before its time: its occurrence that
-- opened at `opened` is over; the next one opens as scheduled.
CREATE TABLE IF NOT EXISTS schedule_ends (
    name TEXT PRIMARY KEY, opened REAL NOT NULL) WITHOUT ROWID;
"""

log = structlog.get_logger("vigil.store")


def _upgrade(conn: sqlite3.Connection) -> None:
    """Bring a database of an older schema up to this one (its data kept)."""
    added = {"results": ("maint INTEGER NOT NULL DEFAULT 0", "counts TEXT"),  # 1, 2
             "rollups": ("minutes INTEGER NOT NULL DEFAULT 0",  # 2
                         "bad_minutes INTEGER NOT NULL DEFAULT 0", "counts TEXT")}
    for table, columns in added.items():
        have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        for column in columns:
            if column.split()[0] not in have:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column}")


class Unreadable(Exception):
    """The database is not one, or is damaged: it is set aside, never written over."""


# One encoder for every row: json.dumps with options makes a new one on each call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), default=str)


def compact(value: Any) -> str:
    return _ENCODER.encode(value)


def open_database(path: Path) -> sqlite3.Connection:
    """A connection (autocommit, WAL) to the database at ``path``, made with its schema
    if new. Raises Unreadable for a file that is not a sound vigil database."""
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    conn = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
    try:
        # Reading the header and the schema finds a file that is no database. Damage
        # deeper in shows when a page is read (the writer sets the file aside then):
        # an integrity check here would read every page, seconds at the start of a
        # daemon with a month of history.
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        conn.execute("PRAGMA journal_mode = WAL")
        # A kill loses nothing committed with NORMAL in WAL mode; only a power cut may
        # lose the last commits.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.executescript(SCHEMA_SQL)
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if row is not None and int(row[0]) > SCHEMA:
            raise Unreadable(f"written by a newer vigil (schema {row[0]})")
        _upgrade(conn)
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (str(SCHEMA),))
    except sqlite3.DatabaseError as exc:
        conn.close()
        if is_damage(exc):
            raise Unreadable(str(exc)) from exc
        raise
    except Unreadable:
        conn.close()
        raise
    return conn


def is_damage(exc: BaseException) -> bool:
    """Whether an error says the file itself is not (or no longer) a sound database."""
    return isinstance(exc, Unreadable) or (
        isinstance(exc, sqlite3.DatabaseError)
        and getattr(exc, "sqlite_errorname", None) in ("SQLITE_NOTADB", "SQLITE_CORRUPT"))


def set_aside(path: Path, why: str, with_journal: bool = False) -> None:
    suffix = f".unreadable-{int(time.time())}"
    aside = path.with_name(path.name + suffix)
    os.replace(path, aside)
    if with_journal:
        for extra in ("-wal", "-shm"):
            journal = path.with_name(path.name + extra)
            if journal.exists():
                os.replace(journal, aside.with_name(aside.name + extra))
    log.error("state.unreadable", path=str(path), moved_to=str(aside), error=why)


def migrate(conn: sqlite3.Connection, folder: Path) -> None:
    """Bring in the JSON state file of an earlier version, once; keep it as .bak."""
    legacy = folder / LEGACY
    if not legacy.exists():
        return
    if conn.execute("SELECT 1 FROM meta WHERE key = 'migrated'").fetchone() is None:
        try:
            data = json.loads(legacy.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("the state file does not hold a JSON object")
        except ValueError as exc:
            set_aside(legacy, str(exc))
            return
        conn.execute("BEGIN IMMEDIATE")
        for table in ("checks", "services"):
            conn.executemany(f"INSERT OR REPLACE INTO {table} VALUES (?, ?)",
                             [(n, compact(v)) for n, v in data.get(table, {}).items()])
        conn.execute("INSERT INTO meta VALUES ('migrated', ?)", (str(legacy),))
        conn.execute("COMMIT")
    backup = legacy.with_name(LEGACY + ".bak")
    os.replace(legacy, backup)
    log.info("state.migrated", path=str(legacy), to=str(folder / DB), kept_as=str(backup))


def connect_readonly(state_dir: Path) -> sqlite3.Connection | None:
    """A read-only connection to the state database, or None when there is none."""
    path = state_dir / DB
    if not path.exists():
        return None
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)


def read_state_at(state_dir: Path) -> Snapshot | None:
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


UPTIME_WINDOWS = {"24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}


def uptime_24h(conn: sqlite3.Connection, names: list[str]) -> dict[str, float | None]:
    """Each check's share of passing runs over the last 24 hours (None without runs)."""
    retention = retention_of(conn)
    if retention is None:
        return {}
    ids = {name: id_ for name, id_ in conn.execute("SELECT name, id FROM names")
           if name in names}
    now = time.time()
    counts = history.uptime(conn, list(ids.values()), now - 86400, now, retention)
    return {name: round(passed / runs, 6) if runs else None
            for name, id_ in ids.items() for passed, runs in [counts.get(id_, (0, 0))]}


def history_of(conn: sqlite3.Connection, check: str, since: float) -> CheckHistory | None:
    """One check's uptime, results and state changes since ``since`` (rollups where the
    raw results are gone), for `vigil history` and the API; None without history."""
    check_id = history.check_id(conn, check)
    retention = retention_of(conn)
    if check_id is None or retention is None:
        return None
    now = time.time()
    results = history.results(conn, check_id, since)
    # Each result once, at the finest grain kept: rollups where the raw results are
    # gone, up to the end of the bucket the first raw result falls in; raw after it.
    rollups = history.rollups(conn, check_id, since, results[0]["at"] if results else now)
    if rollups:
        edge = max(row["start"] + row["step"] for row in rollups)
        results = [row for row in results if row["at"] >= edge]
    uptime = {}
    for label, seconds in UPTIME_WINDOWS.items():
        passed, runs = history.uptime(conn, [check_id], now - seconds, now, retention)[check_id]
        uptime[label] = round(passed / runs, 6) if runs else None
    transitions = history.transitions(conn, check_id, since)
    for row in results:
        row["summary"] = redact(row["summary"] or "")
    for change in transitions:
        change["summary"] = redact(change["summary"] or "")
    return {"check": check, "since": since, "uptime": uptime,
            "rollups": rollups, "results": results,
            "transitions": transitions}


def _take_newer(entry: CheckEntry, newer: Newest) -> None:
    """Bring a check's saved last result up to its newest one in the history (a healthy
    check's state row is only saved at a checkpoint)."""
    last = entry.get("last")
    saved_at = datetime.fromisoformat(last["at"]).timestamp() if last else 0.0
    if newer["at"] <= saved_at:
        return
    summary = newer["summary"] if newer["summary_at"] > saved_at else None
    if summary is None:
        summary = last["summary"] if last else ""
    taken: LastResult = {"status": newer["status"], "summary": summary,
                         "metrics": newer["metrics"], "duration_ms": newer["duration_ms"],
                         "at": datetime.fromtimestamp(newer["at"], UTC).isoformat()}
    entry["last"] = {**last, **taken} if last else taken


def note_last(conn: sqlite3.Connection, check: str, last: LastResult) -> None:
    """A run made with no daemon (`vigil wait`, `vigil check`) as the check's last result:
    a daemon that starts after it knows when it last ran (a load check's floor)."""
    row = conn.execute("SELECT data FROM checks WHERE name = ?", (check,)).fetchone()
    entry = json.loads(row[0]) if row else {}
    entry["last"] = last
    conn.execute("INSERT INTO checks (name, data) VALUES (?, ?) ON CONFLICT (name) DO "
                 "UPDATE SET data = excluded.data", (check, json.dumps(entry)))


def read_state(conn: sqlite3.Connection) -> Snapshot:
    """What ``vigil status --json`` shows: the daemon's identity, every check (with its
    uptime over the last 24 hours when history is kept) and service."""
    meta = dict(conn.execute("SELECT key, value FROM meta"))
    # The records as a daemon of this vigil or an older one saved them.
    checks: dict[str, CheckEntry] = {name: json.loads(data) for name, data in conn.execute(
        "SELECT name, data FROM checks")}
    if retention_of(conn) is not None:
        ids = dict(conn.execute("SELECT name, id FROM names"))
        fresh = history.latest(conn, time.time() - 2 * history.CHECKPOINT_EVERY)
        uptimes = uptime_24h(conn, list(checks))
        for name, entry in checks.items():
            entry["uptime_24h"] = uptimes.get(name)
            if newer := fresh.get(ids.get(name, -1)):
                _take_newer(entry, newer)
    daemon: DaemonInfo = json.loads(meta.get("daemon", "{}"))
    if "updated" in meta:
        daemon["updated"] = datetime.fromtimestamp(float(meta["updated"]), UTC).isoformat()
    return {"schema": int(meta.get("schema", SCHEMA)), "daemon": daemon, "checks": checks,
            "services": {name: json.loads(data) for name, data in conn.execute(
                "SELECT name, data FROM services")}}
