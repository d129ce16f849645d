"""What the store queues between two commits, and how a batch that failed to commit is
put back: shared by the store (which fills it) and the writer (which commits it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from vigil._store.history import Retention
from vigil._store.records import CheckEntry, DaemonInfo, HealRecord, ServiceEntry

#: Results kept in memory while writes fail; the oldest go first beyond this.
MAX_PENDING = 100_000


class PendingResult(NamedTuple):
    name: str
    at: float
    status: int
    duration_ms: float
    metrics: dict[str, float]
    summary: str
    #: It came under a maintenance window: kept, but out of the uptime and objectives.
    maint: bool
    #: Events the run counted (``Result.counts``), summed exactly in the rollups.
    counts: dict[str, int]


@dataclass
class Batch:
    """What is queued between two commits: state by name (the latest wins), history in
    order."""

    checks: dict[str, CheckEntry] = field(default_factory=dict)
    services: dict[str, ServiceEntry] | None = None
    daemon: DaemonInfo | None = None
    #: The windows each watched series' baseline has learnt, by check.
    baselines: dict[str, dict[str, int]] | None = None
    #: Names of the configured checks: rows of any other check are dropped.
    retain: set[str] | None = None
    retention: Retention | None = None
    results: list[PendingResult] = field(default_factory=list)
    transitions: list[tuple[str, float, str, str, int, str]] = field(default_factory=list)
    heals: list[tuple[str, float, HealRecord]] = field(default_factory=list)
    #: (check, series, start, end or None, score, value, usual): the latest word wins.
    anomalies: list[tuple[str, str, float, float | None, float, float, float]] = field(
        default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.checks or self.services is not None or self.daemon is not None
                    or self.baselines is not None or self.retain is not None or self.results
                    or self.transitions or self.heals or self.anomalies)

    def merge_older(self, older: Batch) -> int:
        """Put back a batch that failed to commit, under what was queued since; how many
        results were dropped to keep memory bounded."""
        self.checks = {**older.checks, **self.checks}
        for name in ("services", "daemon", "baselines", "retain", "retention"):
            if getattr(self, name) is None:
                setattr(self, name, getattr(older, name))
        self.results = older.results + self.results
        self.transitions = older.transitions + self.transitions
        self.heals = older.heals + self.heals
        self.anomalies = older.anomalies + self.anomalies
        dropped = max(0, len(self.results) - MAX_PENDING)
        del self.results[:dropped]
        return dropped
