"""Good and total over a window, as an objective counts them, from the history's tiers:
the rollups where they cover the window, the raw results only at its edges (since the
last rollup, and before the first whole bucket while raw results of it are still kept).
A rolled-up part is counted once and remembered until the window moves past it."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from vigil._api.ladder import LATENCY_LADDER_MS
from vigil._store.history import STEPS, Retention, rolled


@dataclass(frozen=True)
class Sli:
    """What a run (or an event) must be to count as good."""

    #: availability (OK or WARN), latency (at most ``threshold_ms``), events (a check's
    #: counted good events, at most ``threshold_ms`` when set).
    kind: str
    #: availability counted per minute of each check, good when every run in it passed.
    timeslices: bool = False
    threshold_ms: int | None = None
    group: str | None = None

    def rollup(self, counts: Iterable[int], minutes: int, bad: int, tallies: dict[str, int]
               ) -> tuple[int, int]:
        """(good, total) of one rollup row."""
        runs = list(counts)
        if self.kind == "availability":
            return (minutes - bad, minutes) if self.timeslices else (runs[0] + runs[1], sum(runs))
        if self.kind == "latency":
            return self._under(tallies, "d"), sum(runs)
        good = (self._under(tallies, "good_d") if self.threshold_ms is not None
                else tallies.get(self._key("good"), 0))
        return good, tallies.get(self._key("total"), 0)

    def results(self, rows: Iterable[tuple[int, int, int, int, str | None]]) -> tuple[int, int]:
        """(good, total) of raw results: (check_id, at ms, status, duration us, counts)."""
        good = total = 0
        minutes: dict[tuple[int, int], bool] = {}
        for check_id, at, status, duration_us, counts in rows:
            if self.timeslices:
                key = (check_id, at // 60_000)
                minutes[key] = minutes.get(key, False) or status > 1
            elif self.kind == "availability":
                good, total = good + (status <= 1), total + 1
            elif self.kind == "latency":
                good += self.threshold_ms is not None and duration_us <= self.threshold_ms * 1000
                total += 1
            else:
                more = self.rollup((), 0, 0, json.loads(counts) if counts else {})
                good, total = good + more[0], total + more[1]
        if self.timeslices:
            return len(minutes) - sum(minutes.values()), len(minutes)
        return good, total

    def _key(self, kind: str) -> str:
        return kind if self.group is None else f"{kind}/{self.group}"

    def _under(self, tallies: dict[str, int], prefix: str) -> int:
        limit = self.threshold_ms or 0
        return sum(tallies.get(self._key(f"{prefix}{bound}"), 0)
                   for bound in LATENCY_LADDER_MS if bound <= limit)


#: A window's part: ("raw" or a rollup step, from, until), times in seconds.
Segment = tuple[str | int, float, float]


def segments(since: float, now: float, marks: tuple[int, int], keep: Retention
             ) -> list[Segment]:
    """Where each part of ``[since, now)`` is counted from: whole 5-minute buckets where
    they are kept, hourly ones where those are gone, raw results after the last rollup
    and, while they are kept, before the first whole bucket."""
    five, hour = marks
    if since >= five:
        return [("raw", since, now)]
    parts: list[Segment] = [("raw", five, now)]
    edge = -(-since // STEPS[0]) * STEPS[0]
    if since >= now - keep.results and edge > since:
        parts.append(("raw", since, min(edge, five)))
    five_from = since if since >= now - keep.five_min else max(since, hour)
    if five_from < five:
        parts.append((STEPS[0], max(edge, five_from), five))
    if five_from > since:
        parts.append((STEPS[1], since, five_from))
    return parts


class Tally:
    """Counts objectives' windows on one (read) connection, remembering rolled-up parts."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._known: dict[tuple[Any, ...], tuple[int, int]] = {}
        self._used: set[tuple[Any, ...]] = set()

    def marks(self) -> tuple[int, int]:
        """How far each tier is rolled up: what the window's parts are cut at."""
        five, hour = (rolled(self.conn, step) or 0 for step in STEPS)
        return five, hour

    def count(self, ids: tuple[int, ...], sli: Sli, since: float, now: float,
              keep: Retention, marks: tuple[int, int]) -> tuple[int, int]:
        good = total = 0
        for source, start, end in segments(since, now, marks, keep):
            if source == "raw":
                part = sli.results(self._results(ids, start, end))
            else:
                key = (ids, sli, source, start, end)
                self._used.add(key)
                if key not in self._known:
                    self._known[key] = self._rollups(ids, sli, int(source), start, end)
                part = self._known[key]
            good, total = good + part[0], total + part[1]
        return good, total

    def buckets(self, ids: tuple[int, ...], sli: Sli, since: float
                ) -> list[tuple[int, int, int]]:
        """(start, good, total) of each rolled-up bucket since ``since``, oldest first:
        hourly ones, then 5-minute ones past the hourly tier's mark (for a chart)."""
        five, hour = self.marks()
        found: dict[int, list[int]] = {}
        for step, start, end in ((STEPS[1], since, hour), (STEPS[0], max(since, hour), five)):
            marker = ",".join("?" * len(ids))
            for at, *counts, minutes, bad, tallies in self.conn.execute(
                    f"SELECT start, ok, warn, crit, unknown, minutes, bad_minutes, counts "
                    f"FROM rollups WHERE check_id IN ({marker}) AND step = ? AND start >= ? "
                    f"AND start < ?", (*ids, step, start, end)):
                good, total = sli.rollup(counts, minutes, bad,
                                         json.loads(tallies) if tallies else {})
                seen = found.setdefault(at, [0, 0])
                seen[0], seen[1] = seen[0] + good, seen[1] + total
        return [(at, good, total) for at, (good, total) in sorted(found.items())]

    def forget_unused(self) -> None:
        """Drop the parts the last round of counts did not use: the windows moved on."""
        self._known = {k: v for k, v in self._known.items() if k in self._used}
        self._used = set()

    def _results(self, ids: tuple[int, ...], start: float, end: float
                 ) -> list[tuple[int, int, int, int, str | None]]:
        marker = ",".join("?" * len(ids))
        return self.conn.execute(
            f"SELECT check_id, at, status, duration_us, counts FROM results WHERE at >= ? "
            f"AND at < ? AND maint = 0 AND check_id IN ({marker})",
            (int(start * 1000), int(end * 1000), *ids)).fetchall()

    def _rollups(self, ids: tuple[int, ...], sli: Sli, step: int, start: float, end: float
                 ) -> tuple[int, int]:
        marker = ",".join("?" * len(ids))
        good = total = 0
        for *counts, minutes, bad, tallies in self.conn.execute(
                f"SELECT ok, warn, crit, unknown, minutes, bad_minutes, counts FROM rollups "
                f"WHERE check_id IN ({marker}) AND step = ? AND start >= ? AND start < ?",
                (*ids, step, start, end)):
            part = sli.rollup(counts, minutes, bad, json.loads(tallies) if tallies else {})
            good, total = good + part[0], total + part[1]
        return good, total
