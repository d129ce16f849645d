"""Run one check under the core's timeout, whatever the check itself does."""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field

from vigil._check import Check, Result, Status

#: How often a waiting run looks at the stop flag.
_POLL = 0.25
#: Idle workers kept for reuse; more than this many at once (a burst) exit when done.
MAX_IDLE = 64


@dataclass
class Outcome:
    result: Result
    duration_ms: float
    #: "ok", "timeout" (overran, or its last run still hangs) or "error" (raised).
    kind: str = "ok"
    error: str | None = None


@dataclass
class _Job:
    check: Check
    since: float = field(default_factory=time.monotonic)
    done: threading.Event = field(default_factory=threading.Event)
    result: object = None
    error: BaseException | None = None

    def execute(self) -> None:
        try:
            self.result = self.check.run()
        except BaseException as exc:
            self.error = exc
        finally:
            self.done.set()


class Runner:
    """Runs each check in a worker thread of its own, taken from a pool of reusable
    workers: a check that hangs costs one abandoned worker, and never the scheduler's
    thread or another check's schedule. A worker whose hung run ends at last goes back
    to the pool. While a check's abandoned run still hangs, its next runs report at once
    instead of tying up more workers."""

    def __init__(self, stopping: threading.Event | None = None) -> None:
        self._stopping = stopping or threading.Event()
        self._idle: list[queue.SimpleQueue[_Job]] = []
        self._started = 0
        #: Runs abandoned at their timeout, by check.
        self._hung: dict[str, _Job] = {}
        #: Runs being waited for right now.
        self._active: dict[str, _Job] = {}
        self._lock = threading.Lock()

    def hung(self) -> list[str]:
        """The checks whose run has not ended: running now, or abandoned and still hanging."""
        with self._lock:
            jobs = {**self._hung, **self._active}
        return sorted(name for name, job in jobs.items() if not job.done.is_set())

    def run(self, check: Check, timeout: float) -> Outcome:
        job = _Job(check)
        with self._lock:
            stuck = self._hung.pop(check.name, None)
            if stuck is not None and not stuck.done.is_set():
                self._hung[check.name] = stuck
                return Outcome(
                    Result(Status.UNKNOWN,
                           f"previous run still hangs after {job.since - stuck.since:.1f}s"),
                    0.0, "timeout",
                )
            self._active[check.name] = job
            inbox = self._idle.pop() if self._idle else self._start_worker()
        inbox.put(job)
        deadline = job.since + timeout
        while not job.done.wait(min(_POLL, max(0.0, deadline - time.monotonic()))):
            if time.monotonic() >= deadline or self._stopping.is_set():
                break
        with self._lock:
            self._active.pop(check.name, None)
            if not job.done.is_set():
                self._hung[check.name] = job
        elapsed_ms = (time.monotonic() - job.since) * 1000
        if not job.done.is_set():
            return Outcome(
                Result(Status.UNKNOWN, f"timed out after {timeout:g}s"), elapsed_ms, "timeout"
            )
        if job.error is not None:
            exc = job.error
            message = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
            return Outcome(Result(Status.UNKNOWN, f"check raised {message}"), elapsed_ms,
                           "error", message)
        if not isinstance(job.result, Result):
            message = f"run() returned {type(job.result).__name__}, not a Result"
            return Outcome(Result(Status.UNKNOWN, message), elapsed_ms, "error", message)
        return Outcome(job.result, elapsed_ms)

    def _start_worker(self) -> queue.SimpleQueue[_Job]:
        """A new worker thread (called with the lock held); its inbox."""
        inbox: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._started += 1
        threading.Thread(target=self._serve, args=(inbox,), daemon=True,
                         name=f"check-worker-{self._started}").start()
        return inbox

    def _serve(self, inbox: queue.SimpleQueue[_Job]) -> None:
        while True:
            inbox.get().execute()
            with self._lock:
                if len(self._idle) >= MAX_IDLE:
                    return
                self._idle.append(inbox)
