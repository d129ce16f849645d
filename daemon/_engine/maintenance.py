"""The maintenance windows in effect, as the daemon last read them from the state
database: which checks and services they cover, and which began or ended since."""

from __future__ import annotations

import threading

from vigil._store.maintenance import Window


class MaintenanceBook:
    def __init__(self) -> None:
        self._windows: dict[str, Window] = {}
        self._lock = threading.Lock()

    def update(self, found: list[Window], now: float
               ) -> tuple[list[Window], list[tuple[Window, str]]]:
        """Adopt the windows of ``found`` open at ``now``: (those that began, those that
        ended with why: "expired" or "ended")."""
        current = {w.target: w for w in found if w.open(now)}
        with self._lock:
            before, self._windows = self._windows, current
        began = [w for t, w in current.items() if before.get(t) != w]
        ended = [(w, "expired" if not w.open(now) else "ended")
                 for t, w in before.items() if t not in current]
        return began, ended

    def add(self, window: Window) -> None:
        """A window opened in this process (a deliberate stop): in effect at once."""
        with self._lock:
            self._windows = {**self._windows, window.target: window}

    def remove(self, target: str) -> None:
        with self._lock:
            self._windows = {t: w for t, w in self._windows.items() if t != target}

    def covering(self, check: str, service: str | None) -> Window | None:
        """The window that covers ``check`` (guarding ``service``), if any."""
        with self._lock:
            windows = list(self._windows.values())
        return next((w for w in windows if w.covers(check, service)), None)

    def of_service(self, service: str) -> Window | None:
        with self._lock:
            return self._windows.get(service)

    def __bool__(self) -> bool:
        return bool(self._windows)
