"""History in the state database: every result for a recent window, then rolled up at
coarser steps (counts per status, min/avg/max of the duration and of each metric), and
every state change and heal. The store's writer thread calls ``roll_up`` and ``prune``;
the commands read through the query functions here."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from vigil._api.ladder import latency_slot as slot
from vigil._store.records import AnomalyRow, KeptResult, Newest, RollupRow, TransitionRow

#: Rollup steps in seconds, finest first: each is made from the one before it (raw
#: results for the first).
STEPS = (300, 3600)
#: A bucket is rolled up this long after it ends: results reach the writer a little late.
SETTLE_S = 10
#: A healthy check's state row is saved at least this often (seconds); its newer
#: results are read from the raw history (``latest``).
CHECKPOINT_EVERY = 30.0
#: Statuses by number, as results store them (Nagios exit codes); the first two pass.
STATUSES: Final = ("OK", "WARN", "CRIT", "UNKNOWN")


@dataclass(frozen=True)
class Retention:
    """How long each tier is kept, in seconds."""

    results: float
    five_min: float
    hourly: float

    def of(self, step: int) -> float:
        return self.five_min if step == STEPS[0] else self.hourly


@dataclass
class Bucket:
    """One check's results over one step: what a rollup row holds."""

    counts: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    dur_min: float = float("inf")
    dur_sum: float = 0.0
    dur_max: float = 0.0
    #: metric -> [min, weighted sum, max, weight]
    metrics: dict[str, list[float]] = field(default_factory=dict)
    #: Minutes with a run, and with a failing run: the objectives' time slices.
    minutes: int = 0
    bad_minutes: int = 0
    #: Exact sums: passing runs per latency slot (``d100``), and the events a check
    #: counted.
    tallies: Counter[str] = field(default_factory=Counter)
    #: (The first tier's, while it is made.) minute -> whether a run in it failed.
    _seen: dict[int, bool] = field(default_factory=dict, init=False, repr=False)

    @property
    def runs(self) -> int:
        return sum(self.counts)

    def add(self, counts: Iterable[int], dur_min: float, dur_avg: float, dur_max: float,
            metrics: Mapping[str, float | list[float]]) -> None:
        """Fold in a result (counts of one) or a finer rollup row."""
        counts = list(counts)
        runs = sum(counts)
        self.counts = [a + b for a, b in zip(self.counts, counts, strict=True)]
        self.dur_min = min(self.dur_min, dur_min)
        self.dur_max = max(self.dur_max, dur_max)
        self.dur_sum += dur_avg * runs
        for name, value in metrics.items():
            low, avg, high = value if isinstance(value, list) else (value, value, value)
            if not all(isinstance(v, int | float) for v in (low, avg, high)):
                continue
            seen = self.metrics.setdefault(name, [low, 0.0, high, 0])
            seen[0], seen[2] = min(seen[0], low), max(seen[2], high)
            seen[1] += avg * runs
            seen[3] += runs

    def add_result(self, at: float, status: int, duration_us: float,
                   metrics: Mapping[str, float], tallies: Mapping[str, int]) -> None:
        counts = [0, 0, 0, 0]
        counts[status] = 1
        self.add(counts, duration_us, duration_us, duration_us, metrics)
        minute = int(at // 60)
        self._seen[minute] = self._seen.get(minute, False) or status > 1
        if status <= 1:  # what a latency objective counts good: a refused call is quick
            self.tallies[slot(duration_us / 1000)] += 1
        self.tallies.update(tallies)

    def add_rollup(self, counts: Iterable[int], dmin: float, davg: float, dmax: float,
                   metrics: Mapping[str, float | list[float]], minutes: int, bad: int,
                   tallies: Mapping[str, int]) -> None:
        self.add(counts, dmin, davg, dmax, metrics)
        self.minutes += minutes
        self.bad_minutes += bad
        self.tallies.update(tallies)

    def row(self, check_id: int, step: int, start: int) -> tuple[Any, ...]:
        metrics = {name: [_round(low), _round(total / weight), _round(high)]
                   for name, (low, total, high, weight) in self.metrics.items() if weight}
        minutes = self.minutes + len(self._seen)
        bad = self.bad_minutes + sum(self._seen.values())
        return (check_id, step, start, *self.counts, round(self.dur_min),
                round(self.dur_sum / self.runs), round(self.dur_max),
                json.dumps(metrics, separators=(",", ":")) if metrics else None,
                minutes, bad, _tallies(self.tallies))


def _tallies(tallies: Counter[str]) -> str | None:
    kept = {key: count for key, count in sorted(tallies.items()) if count}
    return json.dumps(kept, separators=(",", ":")) if kept else None


def _round(value: float) -> float:
    return float(f"{value:.4g}")


#: A rollup row as ``Bucket.row`` makes it.
INSERT_ROLLUP: Final = (
    "INSERT OR REPLACE INTO rollups (check_id, step, start, ok, warn, crit, unknown, "
    "dur_min, dur_avg, dur_max, metrics, minutes, bad_minutes, counts) "
    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)")


def roll_up(conn: sqlite3.Connection, now: float) -> int:
    """Roll every bucket that has ended (and settled) into its tier; how many rows were
    written. Each tier remembers how far it got in ``meta``, so a restart goes on from
    there and nothing is counted twice."""
    written = 0
    for index, step in enumerate(STEPS):
        done = _mark(conn, step, now)
        until = int((now - SETTLE_S) // step * step)
        if until <= done:
            continue
        made = _from_results if index == 0 else _from_rollups
        buckets = made(conn, step, done, until)
        conn.executemany(INSERT_ROLLUP, (bucket.row(check_id, step, start)
                                         for (check_id, start), bucket in buckets.items()))
        conn.execute("UPDATE meta SET value = ? WHERE key = ?", (str(until), f"rolled_{step}"))
        written += len(buckets)
    return written


Buckets = dict[tuple[int, int], Bucket]


def _from_results(conn: sqlite3.Connection, step: int, since: int, until: int) -> Buckets:
    """The first tier's buckets between two times (s), made from the raw results."""
    buckets: Buckets = {}
    for check_id, at_ms, status, dur, metrics, tallies in conn.execute(
            "SELECT check_id, at, status, duration_us, metrics, counts FROM results "
            "WHERE at >= ? AND at < ? AND maint = 0", (since * 1000, until * 1000)):
        start = int(at_ms // 1000 // step * step)
        buckets.setdefault((check_id, start), Bucket()).add_result(
            at_ms / 1000, status, dur, _json(metrics), _json(tallies))
    return buckets


def _from_rollups(conn: sqlite3.Connection, step: int, since: int, until: int) -> Buckets:
    """A coarser tier's buckets, made from the tier before it."""
    buckets: Buckets = {}
    for check_id, at, *counts, dmin, davg, dmax, metrics, minutes, bad, tallies in (
            conn.execute(
                "SELECT check_id, start, ok, warn, crit, unknown, dur_min, dur_avg, dur_max, "
                "metrics, minutes, bad_minutes, counts FROM rollups WHERE check_id IN "
                "(SELECT id FROM names) AND step = ? AND start >= ? AND start < ?",
                (STEPS[STEPS.index(step) - 1], since, until))):
        buckets.setdefault((check_id, int(at // step * step)), Bucket()).add_rollup(
            counts, dmin, davg, dmax, _json(metrics), minutes, bad, _json(tallies))
    return buckets


def rolled(conn: sqlite3.Connection, step: int) -> int | None:
    """How far tier ``step`` is rolled up (a time in seconds); None before it ever was."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (f"rolled_{step}",)).fetchone()
    return None if row is None else int(row[0])


def _mark(conn: sqlite3.Connection, step: int, now: float) -> int:
    """(The writer's.) How far tier ``step`` is rolled up; a new database starts rolling
    at the bucket it is made in."""
    done = rolled(conn, step)
    if done is not None:
        return done
    start = int(now // step * step)
    conn.execute("INSERT INTO meta VALUES (?, ?)", (f"rolled_{step}", str(start)))
    return start


def _json(text: str | None) -> Any:
    return json.loads(text) if text else {}


def prune(conn: sqlite3.Connection, now: float, keep: Retention) -> None:
    """Drop what is older than its tier keeps, and never a result not yet rolled up."""
    rolled = _mark(conn, STEPS[0], now)
    conn.execute("DELETE FROM results WHERE at < ?",
                 (int(min(now - keep.results, rolled) * 1000),))
    for step in STEPS:
        conn.execute("DELETE FROM rollups WHERE check_id IN (SELECT id FROM names) "
                     "AND step = ? AND start < ?", (step, now - keep.of(step)))
    conn.execute("DELETE FROM anomalies WHERE end < ?", (now - keep.hourly,))
    for table in ("transitions", "heals"):
        conn.execute(f"DELETE FROM {table} WHERE at < ?", (int((now - keep.hourly) * 1000),))


def uptime(conn: sqlite3.Connection, ids: list[int], since: float, now: float,
           keep: Retention) -> dict[int, tuple[int, int]]:
    """(passing runs, runs) of each check since ``since``, from the finest tier that
    still covers each part of the window: raw results after the last rollup, 5-minute
    rollups before that, hourly ones where the 5-minute ones are gone."""
    # Read only: commands read through a read-only connection. Nothing rolled up yet
    # means every result is still raw.
    marks = [rolled(conn, step) or 0 for step in STEPS]
    totals = {check_id: [0, 0] for check_id in ids}
    marker = ",".join("?" * len(ids))

    def add(sql: str, *args: float) -> None:
        for check_id, passed, runs in conn.execute(sql, (*ids, *args)):
            totals[check_id][0] += passed or 0
            totals[check_id][1] += runs or 0

    # A result under maintenance counts neither as up nor as down: it is out.
    add(f"SELECT check_id, sum(status <= 1), count(*) FROM results WHERE check_id IN "
        f"({marker}) AND at >= ? AND maint = 0 GROUP BY check_id",
        max(since, marks[0]) * 1000)
    rollup = (f"SELECT check_id, sum(ok + warn), sum(ok + warn + crit + unknown) FROM rollups "
              f"WHERE check_id IN ({marker}) AND step = ? AND start >= ? AND start < ? "
              "GROUP BY check_id")
    # The 5-minute tier covers the window unless it begins before what that tier keeps.
    five_from = since if since >= now - keep.five_min else marks[1]
    add(rollup, STEPS[0], max(since, five_from), marks[0])
    if five_from > since:
        add(rollup, STEPS[1], since, five_from)
    return {check_id: (passed, runs) for check_id, (passed, runs) in totals.items()}


def latest(conn: sqlite3.Connection, since: float) -> dict[int, Newest]:
    """Each check's newest result since ``since``; its ``summary`` is the newest one
    said in that window (with ``summary_at``), None when none was."""
    ms = int(since * 1000)
    found: dict[int, Newest] = {
        check_id: {"at": at / 1000, "status": STATUSES[status], "duration_ms": dur / 1000,
                   "metrics": json.loads(metrics) if metrics else {}, "summary": None,
                   "summary_at": 0.0}
             for check_id, at, status, dur, metrics in conn.execute(
                 "SELECT check_id, max(at), status, duration_us, metrics FROM results "
                 "WHERE at >= ? GROUP BY check_id", (ms,))}
    for check_id, at, summary in conn.execute(
            "SELECT check_id, max(at), summary FROM results WHERE at >= ? "
            "AND summary IS NOT NULL GROUP BY check_id", (ms,)):
        found[check_id]["summary"] = summary
        found[check_id]["summary_at"] = at / 1000
    return found


def check_id(conn: sqlite3.Connection, name: str) -> int | None:
    row = conn.execute("SELECT id FROM names WHERE name = ?", (name,)).fetchone()
    return None if row is None else int(row[0])


def results(conn: sqlite3.Connection, check: int, since: float) -> list[KeptResult]:
    """Every result kept since ``since``, oldest first; a summary that did not change
    from the result before is carried forward (from before ``since`` for the first)."""
    row = conn.execute("SELECT summary FROM results WHERE check_id = ? AND at < ? AND "
                       "summary IS NOT NULL ORDER BY at DESC LIMIT 1",
                       (check, int(since * 1000))).fetchone()
    rows: list[KeptResult] = []
    summary = row[0] if row else None
    for at, status, dur, metrics, said, maint in conn.execute(
            "SELECT at, status, duration_us, metrics, summary, maint FROM results "
            "WHERE at >= ? AND check_id = ? ORDER BY at", (int(since * 1000), check)):
        summary = said if said is not None else summary
        rows.append({"at": at / 1000, "status": STATUSES[status], "duration_ms": dur / 1000,
                     "metrics": json.loads(metrics) if metrics else {}, "summary": summary,
                     "maintenance": bool(maint)})
    return rows


def rollups(conn: sqlite3.Connection, check: int, since: float, until: float
            ) -> list[RollupRow]:
    """Rolled-up buckets between two times, oldest first: 5-minute ones where they are
    kept, hourly ones before that."""
    fine, coarse = (_rollup_rows(conn, check, step, since, until) for step in STEPS)
    edge = fine[0]["start"] if fine else until
    return [row for row in coarse if row["start"] + STEPS[1] <= edge] + fine


def _rollup_rows(conn: sqlite3.Connection, check: int, step: int, since: float,
                 until: float) -> list[RollupRow]:
    rows: list[RollupRow] = []
    for start, *counts, dmin, davg, dmax, metrics in conn.execute(
            "SELECT start, ok, warn, crit, unknown, dur_min, dur_avg, dur_max, metrics "
            "FROM rollups WHERE check_id = ? AND step = ? AND start >= ? AND start < ? "
            "ORDER BY start", (check, step, since, until)):
        ok, warn, crit, unknown = counts
        rows.append({"start": start, "step": step, "runs": sum(counts),
                     "OK": ok, "WARN": warn, "CRIT": crit, "UNKNOWN": unknown,
                     "dur_min_ms": dmin / 1000, "dur_avg_ms": davg / 1000,
                     "dur_max_ms": dmax / 1000,
                     "metrics": json.loads(metrics) if metrics else {}})
    return rows


def anomalies(conn: sqlite3.Connection, check: int, since: float) -> list[AnomalyRow]:
    """The check's anomalies that lasted into ``since`` or began after, oldest first."""
    return [{"series": series, "start": start, "end": end, "score": score, "value": value,
             "usual": usual}
            for series, start, end, score, value, usual in conn.execute(
                "SELECT series, start, end, score, value, usual FROM anomalies WHERE "
                "check_id = ? AND (end IS NULL OR end >= ?) ORDER BY start", (check, since))]


def baselines(conn: sqlite3.Connection) -> dict[str, dict[str, int]] | None:
    """The windows each watched series' baseline has learnt, by check, as the daemon
    last said; None when no daemon has said (an older vigil wrote the database)."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'baselines'").fetchone()
    return None if row is None else dict(json.loads(row[0]))


def transitions(conn: sqlite3.Connection, check: int, since: float) -> list[TransitionRow]:
    return [{"at": at / 1000, "from": old, "to": new, "status": STATUSES[status],
             "summary": summary}
            for at, old, new, status, summary in conn.execute(
                "SELECT at, old, new, status, summary FROM transitions "
                "WHERE check_id = ? AND at >= ? ORDER BY at", (check, int(since * 1000)))]
