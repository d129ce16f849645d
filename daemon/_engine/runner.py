"""Run checks under the core's timeout, whatever a check itself does: on reused worker
threads, each outcome handed to a callback exactly once."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from vigil._api.check import Check, Result, Status

#: How often the reaper looks for runs past their timeout: a timeout is noticed up to
#: this much late.
REAP_EVERY = 0.05
#: A worker with no job for this long retires (one always stays): a burst of checks due
#: together grows the pool for the burst, not for the life of the daemon.
RETIRE_AFTER = 30.0


class _Worker:
    """A worker thread's mailbox: the job it is handed, and the event that wakes it."""

    __slots__ = ("job", "wake")

    def __init__(self, job: _Job) -> None:
        self.job: _Job | None = job
        self.wake = threading.Event()


@dataclass
class Outcome:
    result: Result
    duration_ms: float
    #: "ok", "timeout" (overran, or its last run still hangs) or "error" (raised).
    kind: str = "ok"
    error: str | None = None


Done = Callable[[Outcome], None]


@dataclass(eq=False)
class _Job:
    check: Check
    timeout: float
    done: Done
    since: float = field(default_factory=time.monotonic)
    #: Set when the check's own run() has returned or raised (or was never called).
    ended: bool = False
    #: An outcome known without running the check (its last run still hangs).
    known: Outcome | None = None
    reported: bool = False

    @property
    def deadline(self) -> float:
        return self.since + self.timeout


class Runner:
    """Runs checks on a pool of reusable worker threads and hands each outcome to
    ``done`` on the worker's thread. Checks due together wait for the workers at work
    and run one after another, rather than all at once on as many threads fighting
    over the GIL: an idle worker is woken (the one that went idle last) only when none
    is at work, or when none took a job for REAP_EVERY (a slow check, a hang), and a
    new one is started when none is idle. A run's time and timeout start when a worker
    takes it. A run that overruns its timeout is reported as timed out by the reaper
    and abandoned: it costs one worker, which returns to the pool if the run ever ends.
    A worker idle for RETIRE_AFTER retires (one always stays), so the pool follows the
    load down again. While a check's abandoned run still hangs, its next runs report
    that at once instead of tying up more workers."""

    def __init__(self, stopping: threading.Event | None = None) -> None:
        self._stopping = stopping or threading.Event()
        #: Workers started so far (their names), and alive now.
        self._workers = 0
        self._alive = 0
        #: Workers waiting for a job, the last to go idle at the end; jobs waiting for
        #: a worker, in the order they came.
        self._idle: list[_Worker] = []
        self._pending: deque[_Job] = deque()
        #: Jobs taken from the queue so far: the reaper's proof that it moves.
        self._taken = 0
        #: Runs in flight within their timeout, by check.
        self._active: dict[str, _Job] = {}
        #: Runs abandoned at their timeout, by check.
        self._hung: dict[str, _Job] = {}
        self._lock = threading.Lock()
        self._reaper: threading.Thread | None = None

    def hung(self, grace: float = 0.0) -> list[str]:
        """The checks whose run has not ended: abandoned at their timeout and still
        hanging, or running now and not ended within ``grace`` seconds (a run that ends
        in it was merely under way: a stop came in the middle of it)."""
        until = time.monotonic() + grace
        while True:
            with self._lock:
                jobs = [*self._hung.values(), *self._active.values()]
                busy = any(not job.ended and job.check.name not in self._hung
                           for job in self._active.values())
            if not busy or time.monotonic() >= until:
                return sorted({job.check.name for job in jobs if not job.ended})
            time.sleep(0.02)

    def submit(self, check: Check, timeout: float, done: Done) -> bool:
        """Start a run of ``check``; its outcome goes to ``done``. False (and nothing
        runs) while the check's previous run is still within its timeout."""
        job = _Job(check, timeout, done)
        name = check.name
        with self._lock:
            if name in self._active:
                return False
            stuck = self._hung.get(name)
            if stuck is not None and not stuck.ended:
                stuck_s = job.since - stuck.since
                job.known = Outcome(Result(
                    Status.UNKNOWN, f"previous run still hangs after {stuck_s:.1f}s"),
                    0.0, "timeout")
            else:
                self._hung.pop(name, None)
                self._active[name] = job
            # Checks due together wait for the workers at work: the reaper brings in
            # another only when none took a job for REAP_EVERY (all busy, or one hangs).
            # Handing each to an idle worker instead would wake every worker at every
            # burst, and none would ever be idle long enough to retire.
            if self._idle and len(self._idle) == self._alive:
                self._hand(self._idle.pop(), job)
            elif not self._alive:
                self._start_worker(job)
            else:
                self._pending.append(job)
            if self._reaper is None:
                self._reaper = threading.Thread(target=self._reap, name="check-reaper",
                                                daemon=True)
                self._reaper.start()
        return True

    def run(self, check: Check, timeout: float) -> Outcome:
        """One run, waited for: the outcome (or a timeout at ``timeout``)."""
        box: list[Outcome] = []
        finished = threading.Event()

        def done(outcome: Outcome) -> None:
            box.append(outcome)
            finished.set()

        while not self.submit(check, timeout, done):
            time.sleep(REAP_EVERY)  # a run of the same check waited for elsewhere
        finished.wait()
        return box[0]

    def running_for(self, name: str) -> float | None:
        """How long the run of check ``name`` under way has lasted; None when none is."""
        with self._lock:
            job = self._active.get(name)
            return None if job is None else time.monotonic() - job.since

    def _report(self, job: _Job, outcome: Outcome, hung: bool = False) -> None:
        """Hand ``outcome`` to the job's callback, unless the job was reported already
        (a run that ends after the reaper gave up on it)."""
        with self._lock:
            if job.reported:
                return
            job.reported = True
            if self._active.get(job.check.name) is job:
                del self._active[job.check.name]
                if hung:
                    self._hung[job.check.name] = job
        job.done(outcome)

    def _execute(self, job: _Job) -> None:
        # The run's time, and its timeout, start now: not when it came due, which for a
        # check of a burst may be a while before a worker took it.
        job.since = time.monotonic()
        if job.known is not None:
            job.ended = True
            self._report(job, job.known)
            return
        try:
            result: object = job.check.run()
        except BaseException as exc:
            message = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
            outcome = Outcome(Result(Status.UNKNOWN, f"check raised {message}"), 0.0,
                              "error", message)
        else:
            if isinstance(result, Result):
                outcome = Outcome(result, 0.0)
            else:
                message = f"run() returned {type(result).__name__}, not a Result"
                outcome = Outcome(Result(Status.UNKNOWN, message), 0.0, "error", message)
        job.ended = True
        outcome.duration_ms = (time.monotonic() - job.since) * 1000
        self._report(job, outcome)

    def _reap(self) -> None:
        taken = -1
        while True:
            time.sleep(REAP_EVERY)
            now = time.monotonic()
            with self._lock:
                late = [job for job in self._active.values()
                        if now >= job.deadline or self._stopping.is_set()]
                # Jobs wait, and no worker took one since the last look: all are busy.
                if self._pending and self._taken == taken:
                    if self._idle:
                        self._hand(self._idle.pop(), self._pending.popleft())
                    else:
                        self._start_worker(self._pending.popleft())
                taken = self._taken
            for job in late:
                self._report(job, Outcome(
                    Result(Status.UNKNOWN, f"timed out after {job.timeout:g}s"),
                    (now - job.since) * 1000, "timeout"), hung=True)

    def _hand(self, worker: _Worker, job: _Job) -> None:
        """Wake an idle worker with ``job`` (called with the lock held): the one that
        went idle last, so those idle longest retire."""
        worker.job = job
        self._taken += 1
        worker.wake.set()

    def _start_worker(self, job: _Job) -> None:
        """A new worker thread for ``job`` (called with the lock held)."""
        self._workers += 1
        self._alive += 1
        self._taken += 1
        threading.Thread(target=self._serve, args=(_Worker(job),), daemon=True,
                         name=f"check-worker-{self._workers}").start()

    def workers(self) -> int:
        """Worker threads alive now."""
        return self._alive

    def _serve(self, worker: _Worker) -> None:
        while True:
            job = worker.job
            assert job is not None  # handed over before the worker is woken
            self._execute(job)
            with self._lock:
                worker.job = self._pending.popleft() if self._pending else None
                if worker.job is not None:
                    self._taken += 1
                    continue
                worker.wake.clear()
                self._idle.append(worker)
            while not worker.wake.wait(RETIRE_AFTER):
                with self._lock:
                    # Not handed a job as the wait ran out, and another idle worker
                    # takes what comes next.
                    if worker.job is None and len(self._idle) > 1:
                        self._idle.remove(worker)
                        self._alive -= 1
                        return
