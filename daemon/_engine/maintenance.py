"""The maintenance windows in effect, as the daemon last read them from the state
database and the config's schedules: which checks and services they cover, and which
began or ended since. And what the daemon, `vigil maintenance` and the API say of the
scheduled ones (``[maintenance.NAME]``): which is in force, until and since when, when
the next opens, and ending the one in force before its time."""

from __future__ import annotations

import fnmatch
import math
import sqlite3
import threading
from collections.abc import Callable, Iterable
from typing import TypedDict

from vigil._config.sections import ScheduleSpec
from vigil._store import maintenance
from vigil._store.maintenance import Window


class Scheduled(TypedDict):
    """A ``[maintenance.NAME]`` window as `vigil maintenance list` and the API show it."""

    name: str
    schedule: str
    timezone: str
    services: list[str]
    checks: list[str]
    reason: str
    #: When the occurrence in force opened and ends; None while none is.
    since: float | None
    until: float | None
    #: When the next one opens (None: never again).
    next_start: float | None


def opened(spec: ScheduleSpec, ends: dict[str, float], now: float) -> float | None:
    """When the occurrence of ``spec`` in force at ``now`` opened; None when none is, or
    the one that is was ended early (``ends``: ``maintenance.schedule_ends``)."""
    began = spec.opened(now)
    return None if began is None or ends.get(spec.name) == began else began


def windows(specs: Iterable[ScheduleSpec], ends: dict[str, float], now: float
            ) -> list[Window]:
    """The windows the schedules hold open at ``now``: one per service and check glob."""
    return [Window(target, began + spec.duration, spec.reason, began, f"schedule {spec.name}")
            for spec in specs if (began := opened(spec, ends, now)) is not None
            for target in [*spec.services, *spec.checks]]


def listing(specs: Iterable[ScheduleSpec], ends: dict[str, float], now: float
            ) -> list[Scheduled]:
    """Every scheduled window, in force or not, by name."""
    found: list[Scheduled] = []
    for spec in sorted(specs, key=lambda s: s.name):
        began = opened(spec, ends, now)
        found.append({"name": spec.name, "schedule": spec.schedule, "timezone": spec.timezone,
                      "services": spec.services, "checks": spec.checks, "reason": spec.reason,
                      "since": began, "until": None if began is None else began + spec.duration,
                      "next_start": spec.next_start(now)})
    return found


def names(scheduled: Scheduled, target: str) -> bool:
    """Whether ``target`` (a name or a glob, as `vigil maintenance list` takes it) names
    this scheduled window, one of its services, or one of its check globs."""
    return any(fnmatch.fnmatchcase(one, target) or fnmatch.fnmatchcase(target, one)
               for one in [scheduled["name"], *scheduled["services"], *scheduled["checks"]])


def end(conn: sqlite3.Connection, name: str, specs: dict[str, ScheduleSpec], now: float
        ) -> bool:
    """End what ``name`` names: the window on that target, and the occurrence in force
    of the scheduled window of that name; whether either was in force."""
    ended = maintenance.end(conn, name)
    spec = specs.get(name)
    began = None if spec is None else opened(spec, maintenance.schedule_ends(conn), now)
    if began is not None:
        maintenance.end_schedule(conn, name, began)
    return ended or began is not None


class MaintenanceBook:
    def __init__(self) -> None:
        #: Keyed by target and who opened it: a schedule and an operator may each hold
        #: the same service, and one ending leaves the other in force.
        self._windows: dict[tuple[str, str], Window] = {}
        self._lock = threading.Lock()
        #: The config's scheduled windows, for the API to list and end.
        self.schedules: dict[str, ScheduleSpec] = {}

    def update(self, found: list[Window], now: float
               ) -> tuple[list[Window], list[tuple[Window, str]]]:
        """Adopt the windows of ``found`` open at ``now``: (those that began, those that
        ended with why: "expired" or "ended")."""
        current = {(w.target, w.by): w for w in found if w.open(now)}
        with self._lock:
            before, self._windows = self._windows, current
        began = [w for key, w in current.items() if before.get(key) != w]
        ended = [(w, "expired" if not w.open(now) else "ended")
                 for key, w in before.items() if key not in current]
        return began, ended

    def add(self, window: Window) -> None:
        """A window opened in this process (a deliberate stop): in effect at once."""
        with self._lock:
            self._windows = {**self._windows, (window.target, window.by): window}

    def remove(self, window: Window) -> None:
        with self._lock:
            self._windows = {key: w for key, w in self._windows.items()
                             if key != (window.target, window.by)}

    def covering(self, check: str, service: str | None) -> Window | None:
        """The window that covers ``check`` (guarding ``service``), if any: the one that
        lasts longest, when several do."""
        return self._longest(lambda w: w.covers(check, service))

    def of_service(self, service: str) -> Window | None:
        """The window on ``service``, if any: the one that lasts longest."""
        return self._longest(lambda w: w.target == service)

    def _longest(self, chosen: Callable[[Window], bool]) -> Window | None:
        with self._lock:
            windows = [w for w in self._windows.values() if chosen(w)]
        return max(windows, key=lambda w: math.inf if w.until is None else w.until,
                   default=None)

    def __bool__(self) -> bool:
        return bool(self._windows)
