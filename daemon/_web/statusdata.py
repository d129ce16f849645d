"""What the status page shows, gathered in one pass over the state database: each check's
last results (the heartbeat bar and the response-time chart), its uptime over 24 h,
7 d and 30 d and its last state change; each service's last heals."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import TypedDict

from vigil._store import history
from vigil._store.database import UPTIME_WINDOWS, retention_of
from vigil._store.records import CheckEntry

#: Results per heartbeat bar.
BEATS = 60
#: Heals listed per service.
HEALS = 5


class Beat(TypedDict):
    """One result on a check's heartbeat bar."""

    at: float
    status: str
    duration_ms: float
    #: None until carried forward from the result that said it.
    summary: str | None


class Seen(TypedDict):
    """A check's bar and its uptime by window."""

    beats: list[Beat]
    uptime: dict[str, float | None]
    #: Its anomalies of the last day: (start, end; None while it lasts).
    anomalies: list[tuple[float, float | None]]


class HealLine(TypedDict):
    """One of a service's last heals, as the page lists it."""

    at: float
    #: "succeeded" or "failed".
    outcome: str
    recovery_s: float | None
    reason: str | None


def gather(conn: sqlite3.Connection, checks: dict[str, CheckEntry]) -> dict[str, Seen]:
    """Per check: ``beats`` (oldest first) and ``uptime`` by window. (When its state
    last changed is in the check's own entry: ``since``.)"""
    ids = {name: id_ for name, id_ in conn.execute("SELECT name, id FROM names")
           if name in checks}
    names = {id_: name for name, id_ in ids.items()}
    found: dict[str, Seen] = {name: {"beats": [], "uptime": {}, "anomalies": []}
                              for name in checks}
    # Newest first, until each check has its bar (or enough rows were read for all).
    missing, budget = set(ids.values()), BEATS * max(1, len(ids)) * 3
    rows = conn.execute("SELECT at, check_id, status, duration_us, summary FROM results "
                        "ORDER BY at DESC")
    for at, check_id, status, duration_us, summary in rows:
        budget -= 1
        if budget < 0 or not missing:
            break
        if check_id not in missing:
            continue
        beats = found[names[check_id]]["beats"]
        beats.append({"at": at / 1000, "status": history.STATUSES[status],
                      "duration_ms": duration_us / 1000, "summary": summary})
        if len(beats) == BEATS:
            missing.discard(check_id)
    rows.close()
    for entry in found.values():
        entry["beats"].reverse()
        _carry_summaries(entry["beats"])
    now = time.time()
    for check_id, start, end in conn.execute(
            "SELECT check_id, start, end FROM anomalies WHERE end IS NULL OR end >= ? "
            "ORDER BY start", (now - 86400,)):
        if check_id in names:
            found[names[check_id]]["anomalies"].append((start, end))
    if (retention := retention_of(conn)) is not None and ids:
        for label, seconds in UPTIME_WINDOWS.items():
            counts = history.uptime(conn, list(ids.values()), now - seconds, now, retention)
            for check_id, (passed, runs) in counts.items():
                found[names[check_id]]["uptime"][label] = passed / runs if runs else None
    return found


def beats_of(conn: sqlite3.Connection, check: str) -> list[Beat]:
    """One check's last BEATS results with their summaries, oldest first: what the page
    fetches when someone looks at its bar."""
    check_id = history.check_id(conn, check)
    if check_id is None:
        return []
    beats: list[Beat] = [{"at": at / 1000, "status": history.STATUSES[status],
              "duration_ms": duration_us / 1000, "summary": summary}
             for at, status, duration_us, summary in conn.execute(
                 "SELECT at, status, duration_us, summary FROM results WHERE check_id = ? "
                 "ORDER BY at DESC LIMIT ?", (check_id, BEATS))]
    beats.reverse()
    # The oldest kept summary may be older than the bar: take it from before.
    if beats and beats[0]["summary"] is None:
        row = conn.execute("SELECT summary FROM results WHERE check_id = ? AND at < ? AND "
                           "summary IS NOT NULL ORDER BY at DESC LIMIT 1",
                           (check_id, int(beats[0]["at"] * 1000))).fetchone()
        beats[0]["summary"] = row[0] if row else ""
    _carry_summaries(beats)
    return beats


def _carry_summaries(beats: list[Beat]) -> None:
    """The database keeps a summary only when it changed: carry each one forward."""
    summary = ""
    for beat in beats:
        summary = beat["summary"] if beat["summary"] is not None else summary
        beat["summary"] = summary


def heals(conn: sqlite3.Connection) -> dict[str, list[HealLine]]:
    """The last HEALS heals of each service, newest first."""
    found: dict[str, list[HealLine]] = {}
    for service, at, outcome, data in conn.execute(
            "SELECT service, at, outcome, data FROM (SELECT *, row_number() OVER "
            "(PARTITION BY service ORDER BY at DESC) AS n FROM heals) WHERE n <= ? "
            "ORDER BY service, at DESC", (HEALS,)):
        fields = json.loads(data)
        found.setdefault(service, []).append(
            {"at": at / 1000, "outcome": outcome.removeprefix("heal."),
             "recovery_s": fields.get("recovery_s"), "reason": fields.get("reason")})
    return found
