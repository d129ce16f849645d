"""The check model: what a plugin returns and what it subclasses."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, ClassVar


class Status(enum.IntEnum):
    """A check's verdict, numbered as Nagios plugins number their exit codes."""

    OK = 0
    WARN = 1
    CRIT = 2
    UNKNOWN = 3

    @classmethod
    def from_code(cls, code: int) -> Status:
        """Map a plugin exit code to a status; anything outside 0-3 is UNKNOWN."""
        return cls(code) if 0 <= code <= 3 else cls.UNKNOWN

    @property
    def passing(self) -> bool:
        """WARN still passes: degraded is reported, but is no reason to restart anything."""
        return self in (Status.OK, Status.WARN)


@dataclass
class Result:
    """One run of one check."""

    status: Status
    summary: str = ""
    #: Numbers, with the unit in the name: ``latency_ms``, ``hit_rate_pct``.
    metrics: dict[str, float] = field(default_factory=dict)
    #: Anything else worth showing; must be JSON-serialisable.
    details: dict[str, Any] = field(default_factory=dict)
    #: False when restarting the service would not help (bad password, missing
    #: extension, bad request): the failure is reported, never healed.
    healable: bool = True
    #: The value at which a metric turns the check WARN (CRIT when it has no WARN):
    #: what a forecast (``forecast`` on a check) watches the metric's trend toward.
    thresholds: dict[str, float] = field(default_factory=dict)
    #: Events this run saw for the first time, by kind (``{"total": 12, "good": 11}``):
    #: summed exactly in the history, they are what an ``events`` objective counts.
    counts: dict[str, int] = field(default_factory=dict)
    #: Nagios perfdata exactly as a plugin wrote it (labels, thresholds, min, max):
    #: ``vigil check`` prints it instead of perfdata made from ``metrics``.
    perfdata: str = ""


class Check:
    """Base class of every check type.

    Subclasses implement :meth:`run`. Options from the check's config section reach
    the instance as ``self.options``: a plain dict, or, when the class sets
    ``Options`` to a dataclass, an instance of it, validated key by key.
    """

    #: A dataclass describing the check type's options, or None for a plain dict.
    Options: ClassVar[type | None] = None
    #: Whether a FAILING check of this type fails ``/readyz`` unless its section says
    #: otherwise (``readiness``): false for what says nothing of serving (a backlog).
    readiness: ClassVar[bool] = True
    #: A check that loads its service (a load test): its ``interval`` and
    #: ``fast_interval`` may not be shorter than this, nor may a run begin sooner than
    #: this after the last whoever asks, unless its options say ``allow_frequent =
    #: true``; and it does not run while its service is being healed or is under
    #: maintenance.
    min_interval: ClassVar[float] = 0.0
    #: The metrics its results carry, as names or globs (``"query_*_ms"``) for those named
    #: at run time: a ``baseline`` naming another is a config error. None: only a run
    #: can tell (an exec check's perfdata); a series missing from a passing run is then
    #: logged (``baseline.skipped``).
    metrics: ClassVar[tuple[str, ...] | None] = None

    def __init__(self, name: str, options: Any, timeout: float = 10.0) -> None:
        self.name = name
        self.options = options
        #: Seconds the core allows one run; use it for your own socket timeouts.
        self.timeout = timeout

    def run(self) -> Result:
        """Check once, and say how it went. Called on a worker thread, never two at
        once for one check; the core times it out at ``self.timeout`` (a run that
        overruns is reported UNKNOWN and abandoned), and an exception it raises becomes
        an UNKNOWN result naming it."""
        raise NotImplementedError(f"{type(self).__name__} must implement run()")

    def close(self) -> None:
        """Release connections; called when the check is removed or the daemon stops."""
