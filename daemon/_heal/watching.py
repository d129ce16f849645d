"""Hearing of a service's death the moment it happens: a manager's ``watch()`` watches
the service as it runs now, so vigil asks for it again after every start and restart.
A death it reports ends it (a PID watch ends with its process): ``watching`` is true
only from a start until the death of what it started."""

from __future__ import annotations

import functools
from collections.abc import Callable

import structlog

from vigil._api.manager import Seen, ServiceManager
from vigil._heal.healstate import ServiceRuntime

log = structlog.get_logger("vigil.heal")

Exited = Callable[[str, ServiceManager, Seen], None]


class Watching:
    def __init__(self, enabled: bool, exited: Exited) -> None:
        #: Whether services are watched at all (the daemon; not a one-shot `vigil heal`).
        self.enabled = enabled
        self._exited = exited

    def arm(self, rt: ServiceRuntime) -> None:
        """Watch the service as it runs now, in place of any earlier watch; a manager
        whose watch raises is said (``watch.error``), and its checks find a death on
        their interval instead."""
        manager = rt.service_manager
        stop([manager])
        rt.watching = False
        if not (self.enabled and rt.spec.watch):
            return
        try:
            rt.watching = bool(manager.watch(functools.partial(self._exited, rt.spec.name,
                                                               manager)))
        except Exception as exc:
            log.error("watch.error", service=rt.spec.name, manager=rt.manager,
                      error=f"watch() raised {type(exc).__name__}: {exc}",
                      hint="its checks find a death on their interval instead")


def stop(managers: list[ServiceManager]) -> None:
    """Stop the managers' watches (a new config replaces them, the daemon stops)."""
    for manager in managers:
        try:
            manager.unwatch()
        except Exception as exc:  # a plugin's: said, and the others still stop
            log.error("watch.error", manager=type(manager).__name__,
                      error=f"unwatch() raised {type(exc).__name__}: {exc}")
