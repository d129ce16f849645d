"""Maintenance windows in the state database: what `vigil maintenance` and the API open
and end, what a deploy opens around its command, the scheduled windows ended before
their time, and what the daemon reads each tick.
While a window covers a check, the check keeps running and its results are kept, but it
is in MAINTENANCE: its service is not healed and it opens no alert."""

from __future__ import annotations

import fnmatch
import sqlite3
from dataclasses import dataclass

from vigil._store.records import Held


@dataclass(frozen=True)
class Window:
    #: A service's name, or a glob of check names.
    target: str
    #: time.time() it ends at; None while it lasts until ended.
    until: float | None
    reason: str
    since: float
    #: Who opened it: "vigil maintenance", "the HTTP API", "systemctl stop", "deploy".
    by: str

    def open(self, now: float) -> bool:
        return self.until is None or self.until > now

    def held(self) -> Held:
        return {"target": self.target, "until": self.until, "reason": self.reason,
                "by": self.by}

    def covers(self, check: str, service: str | None) -> bool:
        """Whether this window covers ``check`` (guarding ``service``)."""
        return self.target == service or fnmatch.fnmatchcase(check, self.target)


def windows(conn: sqlite3.Connection) -> list[Window]:
    return [Window(*row) for row in conn.execute(
        "SELECT target, until, reason, since, by FROM maintenance ORDER BY target")]


def start(conn: sqlite3.Connection, window: Window) -> None:
    """Open ``window``, in place of one on the same target."""
    conn.execute("INSERT OR REPLACE INTO maintenance VALUES (?, ?, ?, ?, ?)",
                 (window.target, window.until, window.reason, window.since, window.by))


def end(conn: sqlite3.Connection, target: str) -> bool:
    """End the window on ``target``; whether there was one."""
    return conn.execute("DELETE FROM maintenance WHERE target = ?", (target,)).rowcount > 0


def schedule_ends(conn: sqlite3.Connection) -> dict[str, float]:
    """Each scheduled window ended early: its name -> when the occurrence ended opened."""
    # A database of an earlier vigil, read before a daemon of this one opened it, has
    # no such table yet: no schedule was ended there.
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'schedule_ends'").fetchone():
        return {}
    return dict(conn.execute("SELECT name, opened FROM schedule_ends"))


def end_schedule(conn: sqlite3.Connection, name: str, opened: float) -> None:
    """End the occurrence of the scheduled window ``name`` that opened at ``opened``."""
    conn.execute("INSERT OR REPLACE INTO schedule_ends VALUES (?, ?)", (name, opened))
