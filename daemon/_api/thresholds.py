"""Threshold helpers for check types: public as ``vigil.above``, ``vigil.worst`` and
``vigil.StartGrace``."""

from __future__ import annotations

import time

from vigil._api.check import Status


def above(value: float, warn: float | None, crit: float | None) -> Status:
    """CRIT at or above ``crit``, WARN at or above ``warn``, else OK; None disables a level."""
    if crit is not None and value >= crit:
        return Status.CRIT
    if warn is not None and value >= warn:
        return Status.WARN
    return Status.OK


def worst(statuses: list[Status]) -> Status:
    """The most serious status; UNKNOWN ranks below CRIT, as Nagios ranks them."""
    order = [Status.OK, Status.UNKNOWN, Status.WARN, Status.CRIT]
    return max(statuses, key=order.index, default=Status.OK)


class StartGrace:
    """A server that says it is starting (PostgreSQL rejecting connections, Redis
    loading its data) is WARN for its ``start_timeout``, counted from the first run
    that saw it starting, and CRIT after: starting is normal for a while, then an outage."""

    def __init__(self) -> None:
        self._since: float | None = None

    def judge(self, start_timeout: float) -> tuple[Status, float]:
        """The status, and the seconds it has been starting."""
        now = time.monotonic()
        self._since = self._since or now
        waited = now - self._since
        return (Status.WARN if waited < start_timeout else Status.CRIT), waited

    def reset(self) -> None:
        """It answered normally: the next start counts from zero."""
        self._since = None
