"""What a plugin's own tests need, and nothing of vigil's internals: build a check, a
service manager or an alert sink from options exactly as the config loader does (its
``ConfigError`` and all), run a check as the daemon runs it, hear a manager's watch,
deliver an alert, and hold the wall clock still. See "Testing your plugin" in
plugins/README.md."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import tomli_w

from vigil._api.alert import Alert, AlertSink
from vigil._api.check import Check, Result
from vigil._api.manager import Seen, ServiceManager
from vigil._config.loader import parse
from vigil._engine.runner import Runner

__all__ = ["Clock", "Deaths", "deliver", "fixed_time", "make_alert", "make_check",
           "make_manager", "make_sink", "run_check", "watch_deaths"]

#: The file name errors are said against: ``<vigil.testing>:5: checks.test.port: ...``.
SOURCE = "<vigil.testing>"


def _section(table: str, key: str, kind: str, options: Mapping[str, Any] | None,
             plugins: Sequence[str], name: str, core: Mapping[str, Any]) -> Any:
    body = {key: kind, **core, **(options or {})}
    text = tomli_w.dumps({"daemon": {"plugins": list(plugins)}, table: {name: body}})
    config = parse(SOURCE, text)
    return getattr(config, table)[name]


def make_check(type: str, options: Mapping[str, Any] | None = None, *,
               plugins: Sequence[str] = (), name: str = "test",
               timeout: float | None = None) -> Check:
    """The check a ``[checks.NAME]`` section of ``type`` with ``options`` configures;
    raises ``ConfigError`` (``.issues``: each with its ``key``, ``checks.test.port``)
    for what the loader would reject. ``plugins`` names modules to load as
    ``[daemon] plugins`` does; installed plugins load by their entry point."""
    core = {} if timeout is None else {"timeout": timeout}
    spec = _section("checks", "type", type, options, plugins, name, core)
    check: Check = spec.check
    return check


def make_manager(manager: str, options: Mapping[str, Any] | None = None, *,
                 plugins: Sequence[str] = (), name: str = "test",
                 start_timeout: float | None = None) -> ServiceManager:
    """The service manager a ``[services.NAME]`` section with ``manager`` configures,
    as ``make_check`` builds a check."""
    core = {} if start_timeout is None else {"start_timeout": start_timeout}
    spec = _section("services", "manager", manager, options, plugins, name, core)
    built: ServiceManager = spec.make_manager()
    return built


def make_sink(type: str, options: Mapping[str, Any] | None = None, *,
              plugins: Sequence[str] = (), name: str = "test") -> AlertSink:
    """The alert sink an ``[alerts.NAME]`` section of ``type`` configures, as
    ``make_check`` builds a check."""
    spec = _section("alerts", "type", type, options, plugins, name, {})
    sink: AlertSink = spec.sink
    return sink


def run_check(check: Check, timeout: float | None = None) -> Result:
    """One run as the daemon runs it: on a worker thread, timed out at ``timeout``
    (default the check's own) as UNKNOWN, an exception it raises an UNKNOWN result."""
    return Runner().run(check, check.timeout if timeout is None else timeout).result


def make_alert(check: str = "test", status: str = "firing", *, reason: str = "failing",
               severity: str = "critical", summary: str = "", host: str = "testhost",
               starts_at: float | None = None, **fields: Any) -> Alert:
    """An alert as the core hands sinks one (a resolved one ends now); ``fields`` set
    any other of its fields (``service``, ``healing``, ``attempts``...)."""
    now = time.time()
    fields.setdefault("ends_at", now if status == "resolved" else None)
    return Alert(check=check, status=status, reason=reason, severity=severity,
                 summary=summary or f"{check} is down", host=host,
                 starts_at=now if starts_at is None else starts_at, **fields)


def deliver(sink: AlertSink, alert: Alert) -> None:
    """Hand ``alert`` to ``sink`` as a delivery does: ``SinkError`` when it was not
    taken (the core would retry), any other exception a bug in the sink."""
    sink.send(alert)


@dataclass
class Deaths:
    """What a manager's watch reported: each ``seen`` dict it passed to ``exited``."""

    seen: list[Seen] = field(default_factory=list)
    watching: bool = False
    _told: threading.Condition = field(default_factory=threading.Condition)

    def _exited(self, seen: Seen) -> None:
        with self._told:
            self.seen.append(dict(seen))
            self._told.notify_all()

    def wait(self, count: int = 1, timeout: float = 5.0) -> list[Seen]:
        """The reports once there are ``count``; AssertionError after ``timeout``."""
        with self._told:
            if not self._told.wait_for(lambda: len(self.seen) >= count, timeout):
                raise AssertionError(f"{count} death(s) not reported in {timeout}s; "
                                     f"reported: {self.seen}")
            return list(self.seen)


@contextlib.contextmanager
def watch_deaths(manager: ServiceManager) -> Iterator[Deaths]:
    """Watch ``manager``'s service as vigil does after a start (``watch()``, then
    ``unwatch()`` on leaving): ``deaths.watching`` is what ``watch()`` answered."""
    deaths = Deaths()
    deaths.watching = bool(manager.watch(deaths._exited))
    try:
        yield deaths
    finally:
        manager.unwatch()


@dataclass
class Clock:
    """The wall clock, held still: ``time.time()`` says ``now`` until ``advance``."""

    now: float

    def advance(self, seconds: float) -> None:
        """Move the clock on by ``seconds``."""
        self.now += seconds


@contextlib.contextmanager
def fixed_time(at: float | None = None) -> Iterator[Clock]:
    """Hold ``time.time()`` at ``at`` (default: now) for code that calls it as
    ``time.time()``; move it with ``clock.advance(seconds)``."""
    clock = Clock(time.time() if at is None else at)
    with mock.patch("time.time", lambda: clock.now):
        yield clock
