"""History in-process, on a real SQLite database with a controlled clock: results roll
up into 5-minute then hourly buckets exactly once, each tier is pruned at its own age
(never a result not yet rolled up), and uptime comes from the finest tier that still
covers each part of its window."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from vigil import latency_slot
from vigil._store import database, history
from vigil._store.history import SETTLE_S, Retention
from vigil._store.store import Store

T0 = 1_700_000_000 // 3600 * 3600
#: Two hours of one result every 5 s: the first 5 minutes CRIT, then OK.
RUNS = [(T0 + 5 * i, 2 if i < 60 else 0, 1000 + i % 10, i % 10) for i in range(1440)]
KEEP = Retention(results=900, five_min=7200, hourly=30 * 86400)


@pytest.fixture
def db(tmp_path: Path) -> sqlite3.Connection:
    store = Store(tmp_path)
    store.load()
    conn = store.writer.connect()
    conn.executemany("INSERT INTO names VALUES (?, ?)", [(1, "a"), (2, "b")])
    conn.executemany("INSERT INTO meta VALUES (?, ?)",
                     [(f"rolled_{step}", str(T0)) for step in history.STEPS])
    add(conn, RUNS)
    return conn


def add(conn: sqlite3.Connection, runs: list[tuple[int, int, int, int]], check: int = 1) -> None:
    conn.executemany("INSERT INTO results (at, check_id, status, duration_us, metrics) "
                     "VALUES (?, ?, ?, ?, ?)",
                     [(at * 1000, check, status, dur, json.dumps({"latency_ms": metric}))
                      for at, status, dur, metric in runs])


def rows(conn: sqlite3.Connection, step: int) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT start, ok, warn, crit, unknown, dur_min, dur_avg, dur_max, "
                        "metrics FROM rollups WHERE check_id = 1 AND step = ? ORDER BY start",
                        (step,)).fetchall()


def test_results_roll_up_into_both_tiers_exactly_once(db: sqlite3.Connection) -> None:
    now = T0 + 7200 + SETTLE_S
    assert history.roll_up(db, now) == 24 + 2
    five = rows(db, 300)
    assert len(five) == 24
    assert five[0][:5] == (T0, 0, 0, 60, 0) and five[1][:5] == (T0 + 300, 60, 0, 0, 0)
    hourly = rows(db, 3600)
    assert [r[:5] for r in hourly] == [(T0, 660, 0, 60, 0), (T0 + 3600, 720, 0, 0, 0)]
    # min/avg/max of the duration (µs) and of each metric, weighted by runs.
    assert hourly[0][5:8] == (1000, 1004, 1009)
    assert json.loads(hourly[0][8]) == {"latency_ms": [0, 4.5, 9]}
    # Rolling again counts nothing twice; a bucket still open is left alone.
    assert history.roll_up(db, now) == 0
    add(db, [(T0 + 7200 + 1, 0, 1000, 1)])
    assert history.roll_up(db, now + 200) == 0
    assert history.roll_up(db, T0 + 7500 + SETTLE_S) == 1


def test_each_tier_is_pruned_at_its_own_age(db: sqlite3.Connection) -> None:
    now = T0 + 7200 + SETTLE_S
    history.prune(db, now, KEEP)
    # Nothing was rolled up yet: every result stays, however old.
    assert db.execute("SELECT count(*) FROM results").fetchone() == (1440,)
    history.roll_up(db, now)
    history.prune(db, now, KEEP)
    oldest = db.execute("SELECT min(at) FROM results").fetchone()[0] / 1000
    assert oldest == min(at for at, *_ in RUNS if at >= now - KEEP.results)
    assert rows(db, 300)[0][0] == T0 + 300  # older than 2 hours: gone
    assert len(rows(db, 3600)) == 2
    history.prune(db, T0 + 3600 + KEEP.hourly, KEEP)
    assert [r[:8] for r in rows(db, 3600)] == [(T0 + 3600, 720, 0, 0, 0, 1000, 1004, 1009)]


def test_uptime_comes_from_the_finest_tier_that_covers_the_window(db) -> None:
    now = T0 + 7200 + SETTLE_S
    history.roll_up(db, now)
    history.prune(db, now, KEEP)
    # Raw results not rolled up yet count too.
    add(db, [(T0 + 7200 + i, 0, 1000, 1) for i in range(5)])
    add(db, [(T0 + 7200, 2, 1000, 1)], check=2)
    # Two hours back reaches past the 5-minute tier (kept 2 h): hourly buckets there.
    assert history.uptime(db, [1, 2], T0, now, KEEP) == {1: (1385, 1445), 2: (0, 1)}
    # The last hour: 5-minute buckets, then the raw results.
    assert history.uptime(db, [1], T0 + 3600, now, KEEP) == {1: (725, 725)}
    assert history.uptime(db, [], T0, now, KEEP) == {}


def test_results_under_maintenance_are_kept_but_out_of_the_uptime(db) -> None:
    db.execute("DELETE FROM results")
    # Ten minutes: 5 of them OK, then 5 of CRIT under maintenance.
    add(db, [(T0 + 5 * i, 0, 1000, 1) for i in range(60)])
    db.executemany("INSERT INTO results (at, check_id, status, duration_us, maint) "
                   "VALUES (?, 1, 2, 1000, 1)",
                   [((T0 + 300 + 5 * i) * 1000,) for i in range(60)])
    now = T0 + 600 + SETTLE_S
    assert history.uptime(db, [1], T0, now, KEEP) == {1: (60, 60)}, "raw: out"
    history.roll_up(db, now)
    assert [r[:5] for r in rows(db, 300)] == [(T0, 60, 0, 0, 0)], "never rolled up"
    assert history.uptime(db, [1], T0, now, KEEP) == {1: (60, 60)}, "rolled up: out"
    assert len(history.results(db, 1, T0)) == 120, "kept, as every result is"


def test_a_schema_1_database_gets_the_maintenance_column(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    old = sqlite3.connect(path)
    old.executescript("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
                      "INSERT INTO meta VALUES ('schema', '1');"
                      "CREATE TABLE results (at INTEGER NOT NULL, check_id INTEGER NOT NULL, "
                      "status INTEGER NOT NULL, duration_us INTEGER NOT NULL, metrics TEXT, "
                      "summary TEXT, PRIMARY KEY (at, check_id)) WITHOUT ROWID;"
                      "INSERT INTO results VALUES (1000, 1, 0, 5, NULL, 'up');")
    old.commit()
    old.close()
    conn = database.open_database(path)
    assert conn.execute("SELECT status, summary, maint FROM results").fetchall() == [
        (0, "up", 0)]
    assert conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone() == (
        str(database.SCHEMA),)


def test_rollups_show_coarse_buckets_only_where_fine_ones_are_gone(db) -> None:
    now = T0 + 7200 + SETTLE_S
    history.roll_up(db, now)
    db.execute("DELETE FROM rollups WHERE step = 300 AND start < ?", (T0 + 3600,))
    found = history.rollups(db, 1, T0, now)
    assert [(r["start"], r["step"]) for r in found][:2] == [(T0, 3600), (T0 + 3600, 300)]
    assert len(found) == 1 + 12
    first = found[0]
    assert (first["runs"], first["OK"], first["CRIT"], first["dur_avg_ms"]) == (720, 660, 60,
                                                                                  1.004)


def test_history_shows_each_result_once_and_says_a_repeated_summary(db, monkeypatch) -> None:
    from vigil._store import database

    now = T0 + 7200 + SETTLE_S
    history.roll_up(db, now)
    history.prune(db, now, KEEP)  # raw results kept for the last 15 minutes
    db.execute("INSERT INTO meta VALUES ('retention', ?)", (json.dumps(vars(KEEP)),))
    db.execute("UPDATE results SET summary = 'fine' WHERE at = (SELECT min(at) FROM results)")
    monkeypatch.setattr(time, "time", lambda: now)
    found = database.history_of(db, "a", T0 + 3600)
    assert found is not None
    first_raw = found["results"][0]["at"]
    assert all(b["start"] + b["step"] <= first_raw for b in found["rollups"])
    counted = sum(b["runs"] for b in found["rollups"]) + len(found["results"])
    assert counted == sum(1 for at, *_ in RUNS if at >= T0 + 3600), "each result once"
    assert found["results"][-1]["summary"] == "fine"
    # A window inside the raw one: raw results only, their summary carried in from before.
    recent = database.history_of(db, "a", now - 60)
    assert recent is not None and recent["rollups"] == [] and len(recent["results"]) == 10
    assert {r["summary"] for r in recent["results"]} == {"fine"}


def test_rollups_keep_exact_minutes_latency_slots_and_counted_events(db) -> None:
    """What the objectives read: minutes with a run and with a failing one, each passing
    run's duration on the latency ladder, and a check's event counts, summed exactly."""
    db.executemany("INSERT INTO results (at, check_id, status, duration_us, counts) "
                   "VALUES (?, 2, ?, ?, ?)",
                   [((T0 + 20 * i) * 1000, 2 if i == 4 else 0, 90_000 if i % 3 else 120_000,
                     json.dumps({"total": 3, "good": 2 + (i % 2)})) for i in range(360)])
    history.roll_up(db, T0 + 7200 + SETTLE_S)
    five = db.execute("SELECT minutes, bad_minutes, counts FROM rollups WHERE check_id = 2 "
                      "AND step = 300 ORDER BY start").fetchall()
    assert len(five) == 24
    assert five[0][:2] == (5, 1)  # the failing run at 80 s: minute 1 of the first bucket
    # The failing run (90 ms) is on no slot: a latency objective never counts it good.
    assert json.loads(five[0][2]) == {"d100": 9, "d150": 5, "good": 37, "total": 45}
    hourly = db.execute("SELECT ok, crit, minutes, bad_minutes, counts FROM rollups "
                        "WHERE check_id = 2 AND step = 3600 ORDER BY start").fetchall()
    assert [r[:4] for r in hourly] == [(179, 1, 60, 1), (180, 0, 60, 0)]
    assert json.loads(hourly[1][4]) == {"d100": 120, "d150": 60, "good": 450, "total": 540}


@pytest.mark.parametrize(("duration_ms", "key"), [
    (0.2, "d1"), (1, "d1"), (1.01, "d2"), (100, "d100"), (100.5, "d150"), (60_000, "d60000"),
    (60_001, "d+")])
def test_a_duration_falls_in_the_ladders_smallest_slot_at_or_above_it(duration_ms, key) -> None:
    assert latency_slot(duration_ms) == key
