"""Threshold helpers shared by the built-in plugins (and free for yours to import)."""

from __future__ import annotations

from daemon import Status


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
