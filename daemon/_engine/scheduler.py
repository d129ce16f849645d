"""When each check runs: a timetable of due times, staggered, that one APScheduler job
works through, waking exactly when the next check is due.

The rhythm is kept on the monotonic clock: the timetable's due times are monotonic, and
only the moment the dispatch job should fire is said to APScheduler in wall-clock time.
APScheduler waits by the wall clock, so when that clock steps (NTP's first sync, a VM
resumed, `date -s`) :meth:`Scheduler.keep_time`, called from the daemon's main loop,
notices and sets its jobs again: a step back does not pause the checks for its length,
a step forward does not fire them all at once.

APScheduler's bookkeeping for a job run (next fire time, job store update, events)
costs more than a TCP check itself, so checks are not one APScheduler job each: the
timetable is a heap, and the dispatch job's trigger is "the earliest due time". Each
check still runs as a job of its own on the runner, isolated from the others."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import structlog
from apscheduler.events import EVENT_JOB_ERROR, JobEvent, JobExecutionEvent
from apscheduler.executors.debug import DebugExecutor
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from vigil._engine.aps import BackgroundScheduler

log = structlog.get_logger("vigil.scheduler")

#: The scheduler's own heartbeat: proof for the watchdog that jobs still run.
HEARTBEAT = "__heartbeat__"
HEARTBEAT_EVERY = 1.0
#: The job that starts the checks that are due.
DISPATCH = "__dispatch__"
#: Checks due within this many seconds of each other start together.
SLOT = 0.1
#: How far ahead the dispatch job is set when no check is due at all.
IDLE = 3600.0
#: A change of the wall clock against the monotonic one larger than this is a step.
STEP = 1.0


def wall(mono: float) -> float:
    """The wall-clock time of a monotonic one, by the clocks as they are now."""
    return time.time() + (mono - time.monotonic())


class _Earliest(BaseTrigger):  # type: ignore[misc]  # APScheduler 3 has no types
    """Fires at the timetable's earliest due time, whatever that is by then. A time
    already past is as good as just after ``now``: APScheduler asks again and again
    until it hears of a time after ``now``."""

    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler

    def get_next_fire_time(self, previous_fire_time: datetime | None,
                           now: datetime) -> datetime:
        when = max(wall(self._scheduler.earliest()), now.timestamp() + 1e-6)
        return datetime.fromtimestamp(when, UTC)


class Scheduler:
    """Calls ``run(name)`` for each check on its interval, on the scheduler's own thread
    (so ``run`` only starts the check and returns), and ``missed(name, late_s)`` for a
    run that came later than half its interval (at least 1 s): the next one keeps the
    check's rhythm.

    Checks that share an interval are spread over a window (up to the interval) instead
    of firing together, in slots of SLOT seconds: the scheduler wakes once per slot, not
    once per check. The spread is deterministic, so each keeps a steady rhythm.
    """

    def __init__(self, run: Callable[[str], None],
                 missed: Callable[[str, float], None]) -> None:
        self._run = run
        self._missed = missed
        self._aps: BackgroundScheduler | None = None
        #: Each check's own interval, as configured.
        self._intervals: dict[str, float] = {}
        #: The interval each check runs at now: its own, or its fast one.
        self._pace: dict[str, float] = {}
        #: (due time, entry number, check); an entry not in _entry is stale.
        self._due: list[tuple[float, int, str]] = []
        self._entry: dict[str, int] = {}
        self._numbers = itertools.count()
        self._lock = threading.Lock()
        #: monotonic time of the last heartbeat job; proof that jobs still run.
        self.last_progress = time.monotonic()
        #: The wall clock's lead over the monotonic one when last looked at.
        self._offset = time.time() - time.monotonic()

    def start(self, intervals: dict[str, float]) -> None:
        self._aps = BackgroundScheduler(
            # The dispatch job only hands checks to the runner's workers and returns, so
            # it runs on the scheduler's own thread: no thread hand-off.
            executors={"default": DebugExecutor()},
            job_defaults={"coalesce": True, "max_instances": 1},
            timezone=UTC,
        )
        self._aps.add_listener(self._on_event, EVENT_JOB_ERROR)
        self.set_checks(intervals)
        self._aps.add_job(self._dispatch, _Earliest(self), id=DISPATCH,
                          misfire_grace_time=None)
        self._aps.add_job(self._beat, IntervalTrigger(seconds=HEARTBEAT_EVERY), id=HEARTBEAT,
                          misfire_grace_time=1)
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
        """Add, remove and re-time checks so that they match ``intervals`` exactly."""
        by_interval: dict[float, list[str]] = {}
        for name, interval in sorted(intervals.items()):
            by_interval.setdefault(interval, []).append(name)
        now = time.monotonic()
        with self._lock:
            for name in self._intervals.keys() - intervals.keys():
                self._pace.pop(name, None)
                self._entry.pop(name, None)
            for interval, names in by_interval.items():
                window = min(interval, 1.0 + len(names) / 100)
                for index, name in enumerate(names):
                    if self._intervals.get(name) == interval:
                        continue
                    offset = round(window * index / len(names) / SLOT) * SLOT
                    self._pace[name] = interval
                    self._put(name, now + 0.05 + offset)
            self._intervals = dict(intervals)
        self._wake()

    def run_all_now(self) -> None:
        """Run every check at once, then on its rhythm again."""
        now = time.monotonic()
        with self._lock:
            for name in self._intervals:
                self._put(name, now)
        self._wake()

    def pace(self, name: str) -> float | None:
        """The interval a check runs at now."""
        return self._pace.get(name)

    def set_interval(self, name: str, interval: float, now: bool = False) -> None:
        """Re-time one check: its fast interval while a failure is confirmed, its own
        interval again after; ``now`` runs it at once first."""
        with self._lock:
            if name not in self._intervals:
                return
            self._pace[name] = interval
            self._put(name, time.monotonic() + (0 if now else interval))
        self._wake()

    def postpone(self, name: str, delay: float) -> None:
        """Run ``name`` no sooner than ``delay`` seconds from now, then on its rhythm."""
        with self._lock:
            if name not in self._intervals:
                return
            self._put(name, time.monotonic() + delay)
        self._wake()

    def earliest(self) -> float:
        """The monotonic time the next check is due (IDLE from now when none is)."""
        with self._lock:
            while self._due and self._entry.get(self._due[0][2]) != self._due[0][1]:
                heapq.heappop(self._due)  # a stale entry: re-timed or removed since
            return self._due[0][0] if self._due else time.monotonic() + IDLE

    def keep_time(self) -> float:
        """(The main loop's, every tick.) When the wall clock stepped since the last look,
        log ``clock.stepped`` and set APScheduler's jobs by the new clock; the step in
        seconds (0 when none)."""
        offset = time.time() - time.monotonic()
        step, self._offset = offset - self._offset, offset
        if abs(step) <= STEP:
            return 0.0
        log.warning("clock.stepped", by_s=round(step, 1),
                    hint="the checks keep their rhythm (it is kept on the monotonic clock)")
        if self._aps is not None and self._aps.running:
            self._aps.modify_job(HEARTBEAT, next_run_time=datetime.now(UTC))
            self._wake()
        return step

    def _put(self, name: str, due: float) -> None:
        """(Called with the lock held.) ``name`` is next due at ``due``."""
        number = next(self._numbers)
        self._entry[name] = number
        heapq.heappush(self._due, (due, number, name))

    def _wake(self) -> None:
        """Have the dispatch job fire at the (maybe new) earliest due time."""
        if self._aps is not None and self._aps.running:
            self._aps.modify_job(DISPATCH, next_run_time=datetime.fromtimestamp(
                wall(self.earliest()), UTC))

    def _dispatch(self) -> None:
        now = time.monotonic()
        started: list[tuple[str, float]] = []
        with self._lock:
            while self._due and self._due[0][0] <= now:
                due, number, name = heapq.heappop(self._due)
                if self._entry.get(name) != number:
                    continue
                interval = self._pace[name]
                # The next run keeps the rhythm, skipping what a frozen host missed.
                self._put(name, due + interval * (int((now - due) // interval) + 1))
                started.append((name, now - due))
        for name, late in started:
            try:
                if late > max(1, int(self._pace.get(name, 0) / 2)):
                    self._missed(name, late)
                else:
                    self._run(name)
            except Exception as exc:
                log.error("check.error", check=name, error=f"could not start: {exc}")

    def _beat(self) -> None:
        self.last_progress = time.monotonic()

    def _on_event(self, event: JobEvent) -> None:
        if isinstance(event, JobExecutionEvent) and event.exception is not None:
            log.error("check.error", check=event.job_id,
                      error=f"scheduler job failed: {event.exception}")
