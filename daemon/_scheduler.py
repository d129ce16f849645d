"""When each check runs: one APScheduler job per check, staggered, never overlapping."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import structlog
from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MISSED,
    JobEvent,
    JobExecutionEvent,
)
from apscheduler.executors.debug import DebugExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

log = structlog.get_logger("vigil.scheduler")

#: The scheduler's own heartbeat: proof for the watchdog that jobs still run.
HEARTBEAT = "__heartbeat__"
HEARTBEAT_EVERY = 1.0
#: Checks due within this many seconds of each other start together.
SLOT = 0.1


class Scheduler:
    """Calls ``run(name)`` for each check on its interval, on the scheduler's own thread
    (so ``run`` only starts the check and returns), and ``lost(name, "missed")`` for a
    run that came later than half its interval.

    Checks that share an interval are spread over a window (up to the interval) instead
    of firing together, in slots of SLOT seconds: the scheduler wakes once per slot, not
    once per check. The spread is deterministic, so each keeps a steady rhythm.
    """

    def __init__(self, run: Callable[[str], None], lost: Callable[[str, str], None]) -> None:
        self._run = run
        self._lost = lost
        self._aps: BackgroundScheduler | None = None
        #: Each check's own interval, as configured.
        self._intervals: dict[str, float] = {}
        #: The interval each job runs at now: its own, or its fast one.
        self._pace: dict[str, float] = {}
        #: monotonic time of the last heartbeat job; proof that jobs still run.
        self.last_progress = time.monotonic()

    def start(self, intervals: dict[str, float]) -> None:
        self._aps = BackgroundScheduler(
            # A job only hands its check to the runner's workers and returns, so it runs
            # on the scheduler's own thread: no thread hand-off per run.
            executors={"default": DebugExecutor()},
            job_defaults={"coalesce": True, "max_instances": 1},
            timezone=UTC,
        )
        self._aps.add_listener(self._on_event, EVENT_JOB_MISSED | EVENT_JOB_ERROR)
        self.set_checks(intervals)
        self._aps.add_job(self._beat, IntervalTrigger(seconds=HEARTBEAT_EVERY), id=HEARTBEAT,
                          misfire_grace_time=None)
        self._aps.start()

    def shutdown(self, grace: float = 1.0) -> None:
        """Stop scheduling. Never waits for running checks (one that hangs must not hold
        up the daemon's exit), and gives up after ``grace`` on a scheduler so wedged that
        it cannot even stop (it would wait forever for its own lock)."""
        if self._aps is None or not self._aps.running:
            return
        stopper = threading.Thread(target=self._aps.shutdown, kwargs={"wait": False},
                                   name="scheduler-shutdown", daemon=True)
        stopper.start()
        stopper.join(grace)
        if stopper.is_alive():
            log.error("daemon.wedged", since_s=round(time.monotonic() - self.last_progress, 1),
                      reason="the scheduler did not stop; exiting without it")

    def set_checks(self, intervals: dict[str, float]) -> None:
        """Add, remove and re-time jobs so that they match ``intervals`` exactly."""
        assert self._aps is not None
        for name in self._intervals.keys() - intervals.keys():
            self._aps.remove_job(name)
            self._pace.pop(name, None)
        by_interval: dict[float, list[str]] = {}
        for name, interval in sorted(intervals.items()):
            by_interval.setdefault(interval, []).append(name)
        now = datetime.now(UTC)
        for interval, names in by_interval.items():
            window = min(interval, 1.0 + len(names) / 100)
            for index, name in enumerate(names):
                if self._intervals.get(name) == interval:
                    continue
                offset = round(window * index / len(names) / SLOT) * SLOT
                start = now + timedelta(seconds=0.05 + offset)
                self._pace[name] = interval
                self._aps.add_job(
                    self._run, IntervalTrigger(seconds=interval, start_date=start),
                    args=(name,), id=name, name=name, replace_existing=True,
                    # A run later than half its interval is counted as missed.
                    misfire_grace_time=max(1, int(interval / 2)),
                )
        self._intervals = dict(intervals)

    def run_all_now(self) -> None:
        """Run every check at once, then on its rhythm again."""
        assert self._aps is not None
        now = datetime.now(UTC)
        for name in self._intervals:
            self._aps.modify_job(name, next_run_time=now)

    def pace(self, name: str) -> float | None:
        """The interval a check's job runs at now."""
        return self._pace.get(name)

    def set_interval(self, name: str, interval: float, now: bool = False) -> None:
        """Re-time one check: its fast interval while a failure is confirmed, its own
        interval again after."""
        assert self._aps is not None
        if name not in self._intervals:
            return
        self._pace[name] = interval
        first = datetime.now(UTC) + timedelta(seconds=0 if now else interval)
        self._aps.reschedule_job(name, trigger=IntervalTrigger(seconds=interval,
                                                               start_date=first))

    def _beat(self) -> None:
        self.last_progress = time.monotonic()

    def _on_event(self, event: JobEvent) -> None:
        if event.code == EVENT_JOB_MISSED:
            self._lost(event.job_id, "missed")
        elif isinstance(event, JobExecutionEvent) and event.exception is not None:
            log.error("check.error", check=event.job_id,
                      error=f"scheduler job failed: {event.exception}")
