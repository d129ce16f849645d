"""Good and total over a window, as an objective counts them, and the runs they come
from (how much data the window holds), from the history's tiers: the rollups where they
cover the window, the raw results only at its edges (since the last rollup, and before
the first whole bucket while raw results of it are still kept). A rolled-up part is
counted once and remembered until the window moves past it."""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from vigil._api.ladder import LATENCY_LADDER_MS
from vigil._store.history import STEPS, Retention, rolled

#: A raw result as counted: (check id, at ms, status, duration us, counts JSON).
RawRow = tuple[int, int, int, int, str | None]


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
               ) -> tuple[int, int, int]:
        """(good, total, runs) of one rollup row."""
        runs = list(counts)
        if self.kind == "availability":
            return ((minutes - bad, minutes, sum(runs)) if self.timeslices
                    else (runs[0] + runs[1], sum(runs), sum(runs)))
        if self.kind == "latency":  # the passing runs' durations are tallied
            return self._under(tallies, "d"), sum(runs), sum(runs)
        good = (self._under(tallies, "good_d") if self.threshold_ms is not None
                else tallies.get(self._key("good"), 0))
        return good, tallies.get(self._key("total"), 0), sum(runs)

    @property
    def tallied(self) -> bool:
        """Whether it reads the rollups' counts (a latency slot, a check's events)."""
        return self.kind != "availability"

    def results(self, rows: Iterable[RawRow]) -> tuple[int, int, int]:
        """(good, total, runs) of raw results: (check_id, at ms, status, duration us,
        counts)."""
        good = total = runs = 0
        minutes: dict[tuple[int, int], bool] = {}
        for check_id, at, status, duration_us, counts in rows:
            runs += 1
            if self.timeslices:
                key = (check_id, at // 60_000)
                minutes[key] = minutes.get(key, False) or status > 1
            elif self.kind == "availability":
                good, total = good + (status <= 1), total + 1
            elif self.kind == "latency":  # a failed run is no good however quick it was
                good += (status <= 1 and self.threshold_ms is not None
                         and duration_us <= self.threshold_ms * 1000)
                total += 1
            else:
                more = self.rollup((), 0, 0, json.loads(counts) if counts else {})
                good, total = good + more[0], total + more[1]
        if self.timeslices:
            return len(minutes) - sum(minutes.values()), len(minutes), runs
        return good, total, runs

    def _key(self, kind: str) -> str:
        return kind if self.group is None else f"{kind}/{self.group}"

    def _under(self, tallies: dict[str, int], prefix: str) -> int:
        limit = self.threshold_ms or 0
        return sum(tallies.get(self._key(f"{prefix}{bound}"), 0)
                   for bound in LATENCY_LADDER_MS if bound <= limit)


#: What a window holds: good, total (runs, minutes or events, as the SLI counts) and
#: the runs they come from.
Count = tuple[int, int, int]
#: A window's part: ("raw" or a rollup step, from, until), times in seconds.
Segment = tuple[str | int, float, float]
#: Rolled-up parts are cut at these (per step), so that the whole ones in the middle of
#: a window stay the same from one count to the next and are counted once.
CHUNK = {STEPS[0]: 3600, STEPS[1]: 86400}


def _up(at: float, step: int) -> int:
    return int(-(-at // step) * step)


def segments(since: float, now: float, marks: tuple[int, int], keep: Retention
             ) -> list[Segment]:
    """Where each part of ``[since, now)`` is counted from: whole 5-minute buckets where
    they are kept, hourly ones where those are gone, raw results after the last rollup
    and, while they are kept, before the first whole bucket."""
    five, hour = marks
    if since >= five:
        return [("raw", since, now)]
    parts: list[Segment] = [("raw", five, now)]
    edge = _up(since, STEPS[0])
    if since >= now - keep.results and edge > since:
        parts.append(("raw", since, min(edge, five)))
    five_from = since if since >= now - keep.five_min else max(since, hour)
    if five_from < five:
        parts += _chunks(STEPS[0], max(edge, _up(five_from, STEPS[0])), five)
    if five_from > since:
        parts += _chunks(STEPS[1], _up(since, STEPS[1]), five_from)
    return parts


def _chunks(step: int, start: float, end: float) -> list[Segment]:
    """``[start, end)`` of tier ``step``, cut at its chunk's boundaries."""
    size = CHUNK[step]
    cuts = [start, *range(_up(start, size), int(end), size), end]
    return [(step, a, b) for a, b in itertools.pairwise(cuts) if b > a]


class Tally:
    """Counts objectives' windows on one (read) connection: the raw results of each edge
    read once per round of counts (for every objective), rolled-up parts remembered
    until no window uses them."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._known: dict[tuple[Any, ...], Count] = {}
        self._used: set[tuple[Any, ...]] = set()
        #: (from, until) -> check id -> its raw results there, for this round.
        self._raw: dict[tuple[float, float], dict[int, list[RawRow]]] = {}

    def marks(self) -> tuple[int, int]:
        """How far each tier is rolled up: what the window's parts are cut at."""
        five, hour = (rolled(self.conn, step) or 0 for step in STEPS)
        return five, hour

    def count(self, ids: tuple[int, ...], sli: Sli, since: float, now: float,
              keep: Retention, marks: tuple[int, int]) -> Count:
        good = total = runs = 0
        for source, start, end in segments(since, now, marks, keep):
            if source == "raw":
                rows = self._results(start, end)
                part = sli.results(row for i in ids for row in rows.get(i, ()))
            else:
                key = (ids, sli, source, start, end)
                self._used.add(key)
                if key not in self._known:
                    self._known[key] = self._rollups(ids, sli, int(source), start, end)
                part = self._known[key]
            good, total, runs = good + part[0], total + part[1], runs + part[2]
        return good, total, runs

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
                good, total, _runs = sli.rollup(counts, minutes, bad,
                                                json.loads(tallies) if tallies else {})
                seen = found.setdefault(at, [0, 0])
                seen[0], seen[1] = seen[0] + good, seen[1] + total
        return [(at, good, total) for at, (good, total) in sorted(found.items())]

    def forget_unused(self) -> None:
        """End a round of counts: drop its raw results, and the parts it did not use
        (the windows moved on)."""
        self._known = {k: v for k, v in self._known.items() if k in self._used}
        self._used = set()
        self._raw = {}

    def _results(self, start: float, end: float) -> dict[int, list[RawRow]]:
        found = self._raw.get((start, end))
        if found is None:
            found = self._raw[(start, end)] = {}
            for row in self.conn.execute(
                    "SELECT check_id, at, status, duration_us, counts FROM results WHERE "
                    "at >= ? AND at < ? AND maint = 0", (int(start * 1000), int(end * 1000))):
                found.setdefault(row[0], []).append(row)
        return found

    def _rollups(self, ids: tuple[int, ...], sli: Sli, step: int, start: float, end: float
                 ) -> Count:
        marker = ",".join("?" * len(ids))
        good = total = runs = 0
        for *counts, minutes, bad, tallies in self.conn.execute(
                f"SELECT ok, warn, crit, unknown, minutes, bad_minutes, counts FROM rollups "
                f"WHERE check_id IN ({marker}) AND step = ? AND start >= ? AND start < ?",
                (*ids, step, start, end)):
            part = sli.rollup(counts, minutes, bad,
                              json.loads(tallies) if tallies and sli.tallied else {})
            good, total, runs = good + part[0], total + part[1], runs + part[2]
        return good, total, runs
