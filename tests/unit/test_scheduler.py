"""The scheduler in-process: its one dispatch job starts each check on its own rhythm,
re-timed checks at once, removed checks never again, and a run that comes too late is
reported missed instead of run."""

from __future__ import annotations

import itertools
import subprocess
import sys
import threading
import time
from collections import defaultdict

import pytest

from tests.helpers import wait_until
from vigil._engine.scheduler import IDLE, Scheduler


class Recorder:
    def __init__(self) -> None:
        self.runs: defaultdict[str, list[float]] = defaultdict(list)
        self.lost: list[tuple[str, str]] = []
        self.block = threading.Event()
        self.block.set()

    def run(self, name: str) -> None:
        self.block.wait()
        self.runs[name].append(time.monotonic())

    def miss(self, name: str, _late_s: float) -> None:
        self.lost.append((name, "missed"))


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


def test_each_check_keeps_its_own_rhythm_and_removed_ones_stop(rec: Recorder) -> None:
    scheduler = Scheduler(rec.run, rec.miss)
    scheduler.start({"fast": 0.2, "slow": 0.5})
    try:
        time.sleep(1.35)
        fast, slow = len(rec.runs["fast"]), len(rec.runs["slow"])
        assert 6 <= fast <= 8 and 2 <= slow <= 4, dict(rec.runs)
        gaps = [b - a for a, b in itertools.pairwise(rec.runs["fast"])]
        assert all(abs(gap - 0.2) < 0.1 for gap in gaps), gaps
        scheduler.set_checks({"slow": 0.5})
        before = len(rec.runs["fast"])
        time.sleep(0.5)
        assert len(rec.runs["fast"]) == before
        assert scheduler.pace("fast") is None and scheduler.pace("slow") == 0.5
    finally:
        scheduler.shutdown()
    assert rec.lost == []


def test_a_check_re_timed_now_runs_at_once(rec: Recorder) -> None:
    scheduler = Scheduler(rec.run, rec.miss)
    scheduler.start({"a": 3600.0})
    try:
        wait_until(lambda: rec.runs["a"], 5, "the first run")
        asked = time.monotonic()
        scheduler.set_interval("a", 0.1, now=True)
        wait_until(lambda: len(rec.runs["a"]) >= 2, 5, "the run asked for")
        assert rec.runs["a"][1] - asked < 0.1
        assert scheduler.pace("a") == 0.1
        scheduler.run_all_now()
        scheduler.set_checks({})
        assert scheduler.earliest() > time.monotonic() + IDLE - 60
    finally:
        scheduler.shutdown()


def test_a_run_far_behind_its_time_is_missed_and_the_rhythm_kept(rec: Recorder) -> None:
    scheduler = Scheduler(rec.run, rec.miss)
    scheduler.start({"a": 1.0, "stuck": 0.2})
    try:
        wait_until(lambda: rec.runs["a"] and rec.runs["stuck"], 5, "first runs")
        rec.block.clear()  # the next dispatch stalls inside a run, as a frozen host would
        time.sleep(2.6)
        rec.block.set()
        wait_until(lambda: ("a", "missed") in rec.lost, 5, "a missed run")
        wait_until(lambda: len(rec.runs["a"]) >= 2, 5, "a runs on")
    finally:
        scheduler.shutdown()


def test_the_timetable_runs_on_the_monotonic_clock(monkeypatch) -> None:
    from vigil._engine import scheduler as _scheduler

    sched = _scheduler.Scheduler(lambda _n: None, lambda _n, _late: None)
    sched.set_checks({"a": 10.0})
    due = sched.earliest()
    assert abs(due - time.monotonic()) < 2, "due times are monotonic"
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() - 3600)
    assert sched.keep_time() < -3500
    assert sched.keep_time() == 0.0, "said once"
    assert abs(_scheduler.wall(due) - (real() - 3600)) < 2


def test_the_scheduler_leaves_apschedulers_pool_executors_unloaded_until_asked_for() -> None:
    """APScheduler's pool module would load multiprocessing (half a megabyte) for a
    default executor vigil never takes; whoever asks for the pool later gets the real
    one, and so does a scheduler built without executors."""
    probe = (
        "import sys\n"
        "import vigil._engine.scheduler\n"
        "print(sorted(m for m in sys.modules if m.startswith(('multiprocessing', "
        "'concurrent.futures.process', 'apscheduler.executors.pool'))))\n"
        "from apscheduler.executors.pool import ProcessPoolExecutor, ThreadPoolExecutor\n"
        "from apscheduler.schedulers.background import BackgroundScheduler\n"
        "s = BackgroundScheduler()\n"
        "s.start(paused=True)\n"
        "print(type(s._lookup_executor('default')) is ThreadPoolExecutor,"
        " ProcessPoolExecutor.__module__)\n"
        "s.shutdown(wait=False)\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=60, check=True).stdout.splitlines()
    assert out == ["[]", "True apscheduler.executors.pool"]
