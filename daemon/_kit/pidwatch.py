"""Tell the moment a process exits: a pidfd per watched process (Linux 5.3+), all read
by one thread. Any process can be watched this way, not only a child, so a service
that vigil started before a restart of its own is watched as well."""

from __future__ import annotations

import contextlib
import os
import selectors
import threading
from collections.abc import Callable

import structlog

log = structlog.get_logger("vigil.watch")

Cancel = Callable[[], None]


class PidWatcher:
    """One thread, one selector: each watched process's pidfd, and a pipe that wakes
    the thread when the set changes."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._lock = threading.Lock()
        threading.Thread(target=self._loop, name="pidwatch", daemon=True).start()

    def add(self, pid: int, exited: Callable[[], None]) -> Cancel | None:
        """Call ``exited()`` once, on this thread, when ``pid`` exits; None when the
        process is already gone or this system has no pidfd."""
        try:
            fd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            return None
        with self._lock:
            self._selector.register(fd, selectors.EVENT_READ, exited)
        os.write(self._wake_w, b".")
        return lambda: self._forget(fd)

    def _forget(self, fd: int) -> None:
        with self._lock:
            try:
                self._selector.unregister(fd)
            except (KeyError, ValueError):
                return  # already reported, or already cancelled
        os.close(fd)
        os.write(self._wake_w, b".")

    def _loop(self) -> None:
        while True:
            for key, _ in self._selector.select():
                if key.fd == self._wake_r:
                    os.read(self._wake_r, 512)
                    continue
                with self._lock:
                    try:
                        self._selector.unregister(key.fd)
                    except (KeyError, ValueError):
                        continue  # cancelled meanwhile
                os.close(key.fd)
                try:
                    key.data()
                except Exception as exc:  # a watcher's callback must not end the thread
                    log.error("watch.error", error=f"{type(exc).__name__}: {exc}")


_watcher: PidWatcher | None = None
_start = threading.Lock()


def watch_pid(pid: int, exited: Callable[[], None]) -> Cancel | None:
    """Call ``exited()`` once, from a watcher thread, the moment process ``pid`` exits.
    Returns a function that stops watching, or None when it cannot be watched (the
    process is gone, or the system has no pidfd: macOS), and its checks must tell."""
    global _watcher
    with _start:
        if _watcher is None:
            if not hasattr(os, "pidfd_open"):
                return None
            _watcher = PidWatcher()
    with contextlib.suppress(OSError):
        return _watcher.add(pid, exited)
    return None
