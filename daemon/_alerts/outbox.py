"""The alert outbox and the silences, in the state database: an alert is written here
before it is sent and marked once a sink took it, so that a restart (or a kill) neither
loses it nor sends it twice. The daemon's threads share one connection; `vigil alerts`
and `vigil silence` open their own."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vigil._api.alert import Alert, Silence
from vigil._store.database import compact, open_database

#: The wait after a failed delivery: 1s, 2s, 4s... at most this.
MAX_BACKOFF = 30.0


@dataclass
class Row:
    sink: str
    check: str
    opened: float
    status: str
    alert: Alert
    pending: bool
    sent: float | None
    resolved: float | None
    attempts: int
    next_try: float
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"sink": self.sink, "check": self.check, "opened": self.opened,
                "status": self.status,
                "pending": self.pending, "sent": self.sent, "resolved": self.resolved,
                "attempts": self.attempts, "next_try": self.next_try, "error": self.error,
                "alert": self.alert.to_dict()}


_COLUMNS = ("sink, check_name, opened, status, data, pending, sent, resolved, attempts, "
            "next_try, error")
#: One row: the incident of a check at a sink.
_ROW = "sink = ? AND check_name = ? AND opened = ?"
#: A check's firing alert at a sink (at most one).
_FIRING = "sink = ? AND check_name = ? AND status = 'firing'"


def _row(values: tuple[Any, ...]) -> Row:
    sink, check, opened, status, data, pending, sent, resolved, attempts, next_try, error = values
    return Row(sink, check, opened, status, Alert.from_dict(json.loads(data)), bool(pending),
               sent, resolved, attempts, next_try, error)


def rows(conn: sqlite3.Connection) -> list[Row]:
    return [_row(v) for v in conn.execute(f"SELECT {_COLUMNS} FROM alerts "
                                          "ORDER BY sink, check_name, opened")]


def silences(conn: sqlite3.Connection) -> list[Silence]:
    return [Silence(*v) for v in conn.execute(
        "SELECT pattern, until, reason, created FROM silences ORDER BY pattern")]


def listing(conn: sqlite3.Connection, now: float) -> tuple[list[Row], list[Silence]]:
    """The outbox and the silences in effect: what `vigil alerts` and the API show."""
    return rows(conn), [s for s in silences(conn) if s.until > now]


def as_json(alerts: list[Row], held: list[Silence]) -> dict[str, Any]:
    return {"alerts": [row.to_dict() for row in alerts], "silences": [vars(s) for s in held]}


def silence(conn: sqlite3.Connection, entry: Silence) -> None:
    conn.execute("INSERT OR REPLACE INTO silences VALUES (?, ?, ?, ?)",
                 (entry.pattern, entry.until, entry.reason, entry.created))


def unsilence(conn: sqlite3.Connection, pattern: str) -> bool:
    return conn.execute("DELETE FROM silences WHERE pattern = ?", (pattern,)).rowcount > 0


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


class Outbox:
    """The daemon's side: every method is one statement or transaction, committed
    before it returns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        #: The file the connection is to: the state writer may set a damaged database
        #: aside (a rename) and start a new one at the path.
        self._file: tuple[int, int] | None = None
        self._lock = threading.Lock()

    def _db(self) -> sqlite3.Connection:
        if self._conn is not None and _identity(self.path) != self._file:
            self.close()
        if self._conn is None:
            self._conn = open_database(self.path)
            self._file = _identity(self.path)
        return self._conn

    def _run(self, sql: str, *args: Any) -> int:
        with self._lock:
            try:
                return self._db().execute(sql, args).rowcount
            except sqlite3.Error:
                self.close()  # reopened next time: the file may have been set aside
                raise

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def rows(self) -> list[Row]:
        with self._lock:
            return rows(self._db())

    def silences(self) -> list[Silence]:
        with self._lock:
            return silences(self._db())

    def expire(self, now: float) -> int:
        return self._run("DELETE FROM silences WHERE until <= ?", now)

    def open(self, sink: str, alert: Alert, key: str | None = None) -> None:
        """Queue a firing alert; ``key`` names it in the outbox when it is not its check
        (a remediation item). An earlier episode's resolution with the same labels is
        dropped: sent after this one fires, it would resolve it at the sink (Alertmanager
        takes the last word for a label set), so one episode per label set is live."""
        name, labels = key or alert.check, alert.fingerprint()
        with self._lock:
            conn = self._db()
            try:
                stale = [opened for opened, data in conn.execute(
                    "SELECT opened, data FROM alerts WHERE sink = ? AND check_name = ? AND "
                    "status = 'resolved'", (sink, name))
                    if Alert.from_dict(json.loads(data)).fingerprint() == labels]
                with conn:
                    conn.executemany(f"DELETE FROM alerts WHERE {_ROW}",
                                     [(sink, name, opened) for opened in stale])
                    conn.execute("INSERT OR REPLACE INTO alerts (sink, check_name, opened, "
                                 "status, data, pending) VALUES (?, ?, ?, 'firing', ?, 1)",
                                 (sink, name, alert.starts_at, compact(alert.to_dict())))
            except sqlite3.Error:
                self.close()
                raise

    def resolve(self, sink: str, alert: Alert, now: float, key: str | None = None) -> None:
        """Queue the resolution of a firing alert."""
        self._run("UPDATE alerts SET status = 'resolved', data = ?, pending = 1, "
                  f"resolved = ?, attempts = 0, next_try = 0, error = NULL WHERE {_FIRING}",
                  compact(alert.to_dict()), now, sink, key or alert.check)

    def forget(self, sink: str, check: str | None = None) -> int:
        """Drop a check's firing alert (its resolution is not needed), or all of a
        sink's alerts."""
        if check is None:
            return self._run("DELETE FROM alerts WHERE sink = ?", sink)
        return self._run(f"DELETE FROM alerts WHERE {_FIRING}", sink, check)

    def due(self, sink: str, now: float, resend_every: float | None) -> list[Row]:
        """What ``sink`` should be sent now: pending notifications whose retry time has
        come, and, for a sink that wants it, firing alerts last sent ``resend_every``
        ago (and resolutions, until they are ``finish``-ed)."""
        resend = now - resend_every if resend_every else -1.0
        with self._lock:
            return [_row(v) for v in self._db().execute(
                f"SELECT {_COLUMNS} FROM alerts WHERE sink = ? AND "
                "((pending AND next_try <= ?) OR (NOT pending AND sent <= ?)) "
                "ORDER BY opened", (sink, now, resend))]

    def delivered(self, row: Row, now: float) -> None:
        """The sink took ``row``; if it was resolved meanwhile, its resolution is still
        to be sent (and is owed now)."""
        self._run("UPDATE alerts SET pending = pending AND status != ?, sent = ?, "
                  f"attempts = 0, next_try = 0, error = NULL WHERE {_ROW}",
                  row.status, now, row.sink, row.check, row.opened)

    def withdraw(self, row: Row) -> None:
        """Drop a resolution the sink does not need: it was never told the alert fired."""
        self._run(f"DELETE FROM alerts WHERE {_ROW} AND sent IS NULL", row.sink, row.check,
                  row.opened)

    def failed(self, row: Row, now: float, error: str) -> float:
        """Note a failed delivery; when to try again."""
        attempts = row.attempts + 1
        retry = now + min(MAX_BACKOFF, 2.0 ** (attempts - 1))
        self._run(f"UPDATE alerts SET attempts = ?, next_try = ?, error = ? WHERE {_ROW} "
                  "AND status = ?", attempts, retry, error, row.sink, row.check, row.opened,
                  row.status)
        return retry

    def remind(self, sink: str, repeat: float, now: float) -> int:
        """Queue again each firing alert last sent ``repeat`` ago."""
        with self._lock:
            conn = self._db()
            due = list(conn.execute(
                "SELECT check_name, opened, data FROM alerts WHERE sink = ? AND "
                "status = 'firing' AND NOT pending AND sent <= ?", (sink, now - repeat)))
            for check, opened, data in due:
                alert = json.loads(data)
                alert["reminder"] = alert.get("reminder", 0) + 1
                conn.execute(f"UPDATE alerts SET pending = 1, data = ? WHERE {_ROW}",
                             (compact(alert), sink, check, opened))
            return len(due)

    def finish(self, sink: str, now: float, keep_for: float) -> int:
        """Drop resolutions delivered more than ``keep_for`` ago."""
        return self._run("DELETE FROM alerts WHERE sink = ? AND status = 'resolved' AND "
                         "NOT pending AND resolved <= ?", sink, now - keep_for)
