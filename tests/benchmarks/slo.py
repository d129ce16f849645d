"""What counting objectives costs: 100 objectives over 1,000 checks (ten each: 60
availability, 20 timeslices, 20 latency) counted every 30 s, as the daemon does, over a
month of history.

    .venv/bin/python -m tests.benchmarks.slo [--rounds 20] [--checks 1000] [--slos 100]

The database is the one the history benchmark fills (checks every 30 s here): the last
hour's results through the store's writer, 5-minute buckets for 2 days and hourly ones
for 30 days made by the history module's own code. Then the daemon's rhythm is played
forward: each round is 30 s later, brings every check's next result through the writer,
rolls up as the writer does when a 5-minute bucket has settled, and counts every
objective. The CPU time of the counting alone is measured (the thread's own clock),
and its mean over the rounds is the share of a core.

Target (issue 27; README, Benchmarks): the counting under 1% of a core (its mean over
the rounds after the first count, which runs once, at a start, on the objectives' own
thread)."""

from __future__ import annotations

import argparse
import random
import shutil
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from tests.benchmarks import announce, verdict
from tests.benchmarks.history import KEEP, fill_rollups
from vigil._config.sections import SloSpec
from vigil._kit.durations import Duration
from vigil._slo.objectives import Objectives
from vigil._store import database, history
from vigil._store import store as store_mod

INTERVAL = 30.0


def fill(folder: Path, names: list[str], now: float, rng: random.Random) -> store_mod.Store:
    store = store_mod.Store(folder, KEEP)
    store.load()
    for step in range(int(3600 / INTERVAL)):
        for index, name in enumerate(names):
            at = now - 3600 + step * INTERVAL + index * INTERVAL / len(names)
            store.result(name, at, 0 if rng.random() > 0.001 else 2, rng.uniform(0.25, 2.2),
                         {}, "answered")
        store.flush()
    conn = sqlite3.connect(folder / database.DB, isolation_level=None)
    fill_rollups(conn, rng, INTERVAL, now)
    conn.close()
    return store


def objectives(names: list[str], count: int) -> dict[str, SloSpec]:
    slos = {}
    per = max(1, len(names) // count)
    for index in range(count):
        kind = index % 5
        spec = SloSpec(name=f"slo{index}", objective="99.9%", target=0.999,
                       covers=names[index * per:(index + 1) * per])
        if kind == 3:
            spec.budgeting = "timeslices"
        elif kind == 4:
            spec.sli, spec.threshold = "latency", Duration(0.002)
        slos[spec.name] = spec
    return slos


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--slos", type=int, default=100)
    args = parser.parse_args()
    announce(__doc__)
    rng = random.Random(27)
    folder = Path(tempfile.mkdtemp(prefix="vigil-slo-"))
    try:
        names = [f"tcp{i}" for i in range(args.checks)]
        now = time.time()
        started = time.monotonic()
        store = fill(folder, names, now, rng)
        print(f"{args.checks} checks every {INTERVAL:g}s, 30 days of history, "
              f"made in {time.monotonic() - started:.0f}s")
        writer = store.writer.connect()
        reader = database.connect_readonly(folder)
        assert reader is not None
        counting = Objectives(objectives(names, args.slos), KEEP)
        begin = time.thread_time()
        counting.evaluate(reader, now)
        cold = time.thread_time() - begin
        costs = []
        for _ in range(args.rounds):
            now += INTERVAL
            for index, name in enumerate(names):
                store.result(name, now - INTERVAL + index * INTERVAL / len(names), 0,
                             rng.uniform(0.25, 2.2), {}, "answered")
            store.flush()
            history.roll_up(writer, now)
            begin = time.thread_time()
            reports = counting.evaluate(reader, now)
            costs.append(time.thread_time() - begin)
        store.close()
        share = statistics.mean(costs) / INTERVAL * 100
        print(f"{args.slos} objectives ({len(reports)} counted), every {INTERVAL:g}s over "
              f"{args.rounds} rounds: first count {cold * 1000:.0f} ms CPU, then mean "
              f"{statistics.mean(costs) * 1000:.1f} ms, max {max(costs) * 1000:.1f} ms")
        return verdict([(share < 1, f"share of a core: {share:.3f}% (target < 1%)")])
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
