"""Run one check under the core's timeout, whatever the check itself does."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from vigil._check import Check, Result, Status

#: How often a waiting run looks at the stop flag.
_POLL = 0.25


@dataclass
class Outcome:
    result: Result
    duration_ms: float
    #: "ok", "timeout" (overran, or its last run still hangs) or "error" (raised).
    kind: str = "ok"
    error: str | None = None


class Runner:
    """Runs each check in a thread of its own, so that a check that hangs costs one
    abandoned thread, and never the scheduler's worker or another check's schedule.
    While a check's abandoned run still hangs, its next runs report at once instead of
    piling up more threads."""

    def __init__(self, stopping: threading.Event | None = None) -> None:
        self._stopping = stopping or threading.Event()
        self._hung: dict[str, tuple[threading.Thread, float]] = {}
        #: Runs being waited for right now.
        self._active: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def hung(self) -> list[str]:
        """The checks whose run has not ended: running now, or abandoned and still hanging."""
        with self._lock:
            threads = {**{name: thread for name, (thread, _) in self._hung.items()},
                       **self._active}
        return sorted(name for name, thread in threads.items() if thread.is_alive())

    def run(self, check: Check, timeout: float) -> Outcome:
        with self._lock:
            thread, since = self._hung.get(check.name, (None, 0.0))
            if thread is not None and thread.is_alive():
                stuck = time.monotonic() - since
                return Outcome(
                    Result(Status.UNKNOWN, f"previous run still hangs after {stuck:.1f}s"),
                    0.0, "timeout",
                )
            self._hung.pop(check.name, None)

        box: dict[str, object] = {}
        done = threading.Event()

        def target() -> None:
            try:
                box["result"] = check.run()
            except BaseException as exc:
                box["error"] = exc
            finally:
                done.set()

        worker = threading.Thread(target=target, name=f"check:{check.name}", daemon=True)
        start = time.monotonic()
        with self._lock:
            self._active[check.name] = worker
        worker.start()
        deadline = start + timeout
        while not done.wait(min(_POLL, max(0.0, deadline - time.monotonic()))):
            if time.monotonic() >= deadline or self._stopping.is_set():
                break
        with self._lock:
            self._active.pop(check.name, None)
        elapsed_ms = (time.monotonic() - start) * 1000
        if not done.is_set():
            with self._lock:
                self._hung[check.name] = (worker, start)
            return Outcome(
                Result(Status.UNKNOWN, f"timed out after {timeout:g}s"), elapsed_ms, "timeout"
            )
        if "error" in box:
            exc = box["error"]
            message = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
            return Outcome(Result(Status.UNKNOWN, f"check raised {message}"), elapsed_ms,
                           "error", message)
        result = box.get("result")
        if not isinstance(result, Result):
            message = f"run() returned {type(result).__name__}, not a Result"
            return Outcome(Result(Status.UNKNOWN, message), elapsed_ms, "error", message)
        return Outcome(result, elapsed_ms)
