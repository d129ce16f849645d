"""Each objective's report: its SLI over the window, the budget left, the burn rates and
its status, counted from the history (``_store.tally``) for the checks it covers."""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass, field
from typing import Any

from vigil._config.sections import SloSpec
from vigil._slo.burn import WINDOWS, Condition, burn_rate, status
from vigil._store.history import Retention, check_id
from vigil._store.tally import Sli, Tally


@dataclass
class Report:
    """One objective, as ``vigil slo --json``, the API and the metrics show it."""

    name: str
    objective: float
    #: The share of good over the window; None before any run.
    sli: float | None
    good: int
    total: int
    #: The share of the error budget left: 1.0 untouched, negative when overspent.
    budget_remaining: float
    burn_rate: dict[str, float]
    status: str
    window: float
    checks: list[str]
    firing: list[Condition] = field(default_factory=list)
    #: What counts as good: the objective's ``sli``, and its ``threshold`` (ms).
    kind: str = "availability"
    threshold_ms: int | None = None
    #: The same, as the history counts it (for the burn-down chart).
    rule: Sli = field(default_factory=lambda: Sli("availability"))

    @property
    def seconds_left(self) -> float | None:
        """How long the budget left lasts at the last hour's burn; None when it is not
        burning (or is spent)."""
        burn = self.burn_rate["1h"]
        if burn <= 0 or self.budget_remaining <= 0:
            return None
        return self.budget_remaining * self.window / burn

    def as_json(self) -> dict[str, Any]:
        found = asdict(self)
        del found["rule"]
        found["firing"] = [f"{c.severity} {c.long}/{c.short}" for c in self.firing]
        found["seconds_left"] = self.seconds_left
        return found


def sli_of(spec: SloSpec) -> Sli:
    return Sli(spec.sli, spec.budgeting == "timeslices", spec.threshold_ms, spec.group)


def burndown(conn: sqlite3.Connection, report: Report, now: float
             ) -> list[tuple[float, float]]:
    """The error budget left over the window, point by point: at each rolled-up
    bucket, what the bad runs up to it left of the whole window's budget (1.0 at the
    window's start, ``budget_remaining`` now, below 0 when overspent)."""
    ids = tuple(i for name in report.checks if (i := check_id(conn, name)) is not None)
    allowed = (1.0 - report.objective) * report.total
    if not ids or allowed <= 0:
        return []
    bad, points = 0, [(now - report.window, 1.0)]
    for start, good, total in Tally(conn).buckets(ids, report.rule, now - report.window):
        bad += total - good
        points.append((float(start), 1.0 - bad / allowed))
    # What is not rolled up yet, the last few minutes, is in the report's own count.
    return [*points, (now, report.budget_remaining)]


class Objectives:
    """Reports for the configured objectives, from one read connection to the history."""

    def __init__(self, slos: dict[str, SloSpec], keep: Retention) -> None:
        self.slos = slos
        self.keep = keep
        self._tally: Tally | None = None

    def evaluate(self, conn: sqlite3.Connection, now: float) -> list[Report]:
        if self._tally is None or self._tally.conn is not conn:
            self._tally = Tally(conn)
        tally = self._tally
        marks = tally.marks()
        reports = []
        for spec in self.slos.values():
            ids = tuple(i for name in spec.covers if (i := check_id(conn, name)) is not None)
            sli = sli_of(spec)

            def count(seconds: float, ids: tuple[int, ...] = ids, sli: Sli = sli
                      ) -> tuple[int, int]:
                return tally.count(ids, sli, now - seconds, now, self.keep, marks)

            good, total = count(spec.window)
            burn = {name: burn_rate(*count(seconds), spec.budget)
                    for name, seconds in WINDOWS.items()}
            verdict, firing = status(burn, spec.window)
            reports.append(Report(
                spec.name, spec.target, good / total if total else None, good, total,
                1.0 - burn_rate(good, total, spec.budget), burn, verdict, spec.window,
                list(spec.covers), firing, spec.sli, spec.threshold_ms, sli))
        tally.forget_unused()
        return reports
