"""Run checks under the core's timeout, whatever a check itself does: on reused worker
threads, each outcome handed to a callback exactly once."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from vigil._check import Check, Result, Status

#: How often the reaper looks for runs past their timeout: a timeout is noticed up to
#: this much late.
REAP_EVERY = 0.05
#: Idle workers kept for reuse; more than this many at once (a burst) exit when done.
MAX_IDLE = 64


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
    ended: threading.Event = field(default_factory=threading.Event)
    #: An outcome known without running the check (its last run still hangs).
    known: Outcome | None = None
    reported: bool = False

    @property
    def deadline(self) -> float:
        return self.since + self.timeout


class Runner:
    """Runs each check on a worker thread from a pool of reusable ones, and hands its
    outcome to ``done`` on that thread. A run that overruns its timeout is reported as
    timed out by the reaper thread and abandoned: it costs one worker, which returns to
    the pool if the run ever ends. While a check's abandoned run still hangs, its next
    runs report that at once instead of tying up more workers."""

    def __init__(self, stopping: threading.Event | None = None) -> None:
        self._stopping = stopping or threading.Event()
        self._idle: list[queue.SimpleQueue[_Job]] = []
        self._started = 0
        #: Runs in flight within their timeout, by check.
        self._active: dict[str, _Job] = {}
        #: Runs abandoned at their timeout, by check.
        self._hung: dict[str, _Job] = {}
        self._lock = threading.Lock()
        self._reaper: threading.Thread | None = None

    def hung(self) -> list[str]:
        """The checks whose run has not ended: running now, or abandoned and still hanging."""
        with self._lock:
            jobs = [*self._hung.values(), *self._active.values()]
        return sorted({job.check.name for job in jobs if not job.ended.is_set()})

    def submit(self, check: Check, timeout: float, done: Done) -> bool:
        """Start a run of ``check``; its outcome goes to ``done``. False (and nothing
        runs) while the check's previous run is still within its timeout."""
        job = _Job(check, timeout, done)
        name = check.name
        with self._lock:
            if name in self._active:
                return False
            stuck = self._hung.get(name)
            if stuck is not None and not stuck.ended.is_set():
                stuck_s = job.since - stuck.since
                job.known = Outcome(Result(
                    Status.UNKNOWN, f"previous run still hangs after {stuck_s:.1f}s"),
                    0.0, "timeout")
            else:
                self._hung.pop(name, None)
                self._active[name] = job
            inbox = self._idle.pop() if self._idle else self._start_worker()
            if self._reaper is None:
                self._reaper = threading.Thread(target=self._reap, name="check-reaper",
                                                daemon=True)
                self._reaper.start()
        inbox.put(job)
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
        if job.known is not None:
            job.ended.set()
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
        job.ended.set()
        outcome.duration_ms = (time.monotonic() - job.since) * 1000
        self._report(job, outcome)

    def _reap(self) -> None:
        while True:
            time.sleep(REAP_EVERY)
            now = time.monotonic()
            with self._lock:
                late = [job for job in self._active.values()
                        if now >= job.deadline or self._stopping.is_set()]
            for job in late:
                self._report(job, Outcome(
                    Result(Status.UNKNOWN, f"timed out after {job.timeout:g}s"),
                    (now - job.since) * 1000, "timeout"), hung=True)

    def _start_worker(self) -> queue.SimpleQueue[_Job]:
        """A new worker thread (called with the lock held); its inbox."""
        inbox: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._started += 1
        threading.Thread(target=self._serve, args=(inbox,), daemon=True,
                         name=f"check-worker-{self._started}").start()
        return inbox

    def _serve(self, inbox: queue.SimpleQueue[_Job]) -> None:
        while True:
            self._execute(inbox.get())
            with self._lock:
                if len(self._idle) >= MAX_IDLE:
                    return
                self._idle.append(inbox)
