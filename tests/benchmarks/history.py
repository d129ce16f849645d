"""The history database of 1,000 checks at 5 s after 30 days, and how fast uptime comes
back from it.

    .venv/bin/python -m tests.benchmarks.history [--checks 1000] [--interval 5]

Under the default retention a database holds, once 30 days have passed: every result of
the last hour, 5-minute buckets of the last 2 days, hourly buckets of the last 30 days.
This fills exactly that: the last hour's results go through the store's own writer
(as the daemon writes them, summaries and metrics included), the buckets are made by
the history module's own rollup code from one bucket's worth of results per check, and
then one real roll-up and prune pass runs. The size is the database file after its
journal is folded in.

Target (issue 11): the database under 300 MB; every uptime asked of it (one check over
24 h, 7 d and 30 d, twenty checks each) back in under 50 ms."""

from __future__ import annotations

import argparse
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests.benchmarks import announce, verdict
from vigil._store import database, history
from vigil._store import store as store_mod
from vigil._store.history import INSERT_ROLLUP, Bucket, Retention
from vigil._store.records import State

KEEP = Retention(results=3600, five_min=2 * 86400, hourly=30 * 86400)


def bucket(rng: random.Random, runs: int, every: float) -> Bucket:
    made = Bucket()
    for run in range(runs):
        latency = rng.uniform(0.1, 2.0)
        status = 0 if rng.random() > 0.001 else 2
        made.add_result(run * every, status, latency * 1000 + 150, {"latency_ms": latency}, {})
    return made


def fill_rollups(conn: sqlite3.Connection, rng: random.Random, interval: float,
                 now: float) -> None:
    """Every check's rollups of the month before the last hour, as the default retention
    keeps them (5-minute buckets for 2 days, hourly ones for 30), made by the history
    module's own code from one bucket's worth of results each; the tiers marked rolled."""
    ids = dict(conn.execute("SELECT name, id FROM names"))
    five = bucket(rng, int(300 / interval), interval)
    hourly = bucket(rng, int(3600 / interval), interval)
    hour0 = int(now // 3600 * 3600) - 3600
    conn.execute("BEGIN")
    for check_id in ids.values():
        conn.executemany(INSERT_ROLLUP, [five.row(check_id, 300, hour0 - k * 300)
                                         for k in range(1, 2 * 288)])
        conn.executemany(INSERT_ROLLUP, [hourly.row(check_id, 3600, hour0 - k * 3600)
                                         for k in range(1, 720)])
    conn.execute("INSERT OR REPLACE INTO meta VALUES ('rolled_300', ?)", (str(hour0),))
    conn.execute("INSERT OR REPLACE INTO meta VALUES ('rolled_3600', ?)", (str(hour0),))
    conn.execute("COMMIT")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=5)
    args = parser.parse_args()
    announce(__doc__)
    rng = random.Random(5)
    folder = Path(tempfile.mkdtemp(prefix="vigil-history-"))
    now = time.time()
    store = store_mod.Store(folder, KEEP)
    store.load()
    names = [f"tcp{i}" for i in range(args.checks)]
    started = time.monotonic()
    # The last hour, result by result, through the writer.
    per_check = int(3600 / args.interval)
    for step in range(per_check):
        at = now - 3600 + step * args.interval
        for index, name in enumerate(names):
            latency = round(rng.uniform(0.1, 2.0), 3)
            store.result(name, at + index * args.interval / args.checks, 0, latency + 0.15,
                         {"latency_ms": latency}, f"127.0.0.1:5432 answered in {latency:.1f} ms")
        if step % 60 == 59:
            store.flush()
    for name in names:
        store.check(name, {"type": "tcp", "enabled": True, "service": None,
                           "interval_s": args.interval, "state": State.OK, "failures": 0,
                           "since": now, "successes": per_check,
                           "counts": {"runs": per_check}, "last": {
                               "status": "OK", "summary": "127.0.0.1:5432 answered in 0.3 ms",
                               "metrics": {"latency_ms": 0.3}, "details": {},
                               "healable": True, "duration_ms": 0.45,
                               "at": "2026-11-28T08:24:11.194734+00:00"}})
    store.close()
    conn = sqlite3.connect(folder / database.DB, isolation_level=None)
    ids = dict(conn.execute("SELECT name, id FROM names"))
    fill_rollups(conn, rng, args.interval, now)
    conn.execute("BEGIN IMMEDIATE")
    history.roll_up(conn, now)
    history.prune(conn, now, KEEP)
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    filled = time.monotonic() - started
    size = sum(p.stat().st_size for p in folder.glob(f"{database.DB}*"))
    counts = {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
              for table in ("results", "rollups")}
    conn.close()

    reader = sqlite3.connect(f"file:{folder / database.DB}?mode=ro", uri=True)
    timings = {}
    for label, seconds in (("24h", 86400), ("7d", 7 * 86400), ("30d", 30 * 86400)):
        runs = []
        for name in rng.sample(names, 20):
            begin = time.perf_counter()
            history.uptime(reader, [ids[name]], now - seconds, now, KEEP)
            runs.append((time.perf_counter() - begin) * 1000)
        timings[label] = (statistics.median(runs), max(runs))
    begin = time.perf_counter()
    state = database.read_state(reader)
    assert all(entry["uptime_24h"] is not None for entry in state["checks"].values())
    status_ms = (time.perf_counter() - begin) * 1000
    reader.close()
    shutil.rmtree(folder, ignore_errors=True)
    print(f"{args.checks} checks at {args.interval:g}s after 30 days: {counts['results']} "
          f"results, {counts['rollups']} rollup rows; filled in {filled:.0f}s")
    for label, (median, worst) in timings.items():
        print(f"uptime of one check over {label}: median {median:.1f} ms, max {worst:.1f} ms")
    print(f"vigil status (every check with its 24 h uptime): {status_ms:.0f} ms")
    slowest = max(timings, key=lambda label: timings[label][1])
    return verdict([
        (size < 300e6, f"database {size / 1e6:.1f} MB (target < 300)"),
        (timings[slowest][1] < 50, f"slowest uptime {timings[slowest][1]:.1f} ms, over "
                                   f"{slowest} (target < 50)"),
    ])


if __name__ == "__main__":
    sys.exit(main())
