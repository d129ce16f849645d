"""Each objective's report: its SLI over the window, the budget left, the burn rates and
its status, counted from the history (``_store.tally``) for the checks it covers, and
how much data each window holds: a window its checks ran less than half of (a new
daemon, a stop, maintenance) neither pages nor spends the whole window's budget."""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass, field
from typing import Any

from vigil._config.sections import SloSpec
from vigil._kit.durations import format_duration
from vigil._slo.burn import CONDITIONS, WINDOWS, Condition, burn_rate, status
from vigil._store.history import Retention, check_id
from vigil._store.tally import Sli, Tally

#: A window holds enough data to mean something once its checks made at least this
#: share of the runs their intervals promise over it (outside maintenance).
ENOUGH = 0.5


@dataclass(frozen=True)
class Coverage:
    """The runs a window holds, against those its checks' intervals promise."""

    runs: int
    #: 0: not known (every window then holds enough).
    expected: float

    @property
    def enough(self) -> bool:
        return self.runs >= ENOUGH * self.expected

    @property
    def share(self) -> float:
        """How much of the window the runs cover, at most all of it."""
        return min(1.0, self.runs / self.expected) if self.expected else 1.0


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
    #: Spent as the runs so far spent it of the whole window's budget: a window the
    #: history covers a tenth of spends a tenth of its budget at a burn rate of 1.
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
    #: What each window holds: the burn rates' and the objective's own (by its name,
    #: ``30d``).
    coverage: dict[str, Coverage] = field(default_factory=dict)
    #: The conditions that burn over their factor but are held back: a window of theirs
    #: holds too little data to mean it.
    held: list[Condition] = field(default_factory=list)

    @property
    def allowed(self) -> float:
        """The bad runs (or events) the whole window allows: its budget's share of what
        the window holds, scaled up to the whole window where the history holds less."""
        whole = self.coverage.get(format_duration(self.window), Coverage(0, 0.0))
        return (1.0 - self.objective) * self.total / whole.share if whole.share else 0.0

    @property
    def seconds_left(self) -> float | None:
        """How long the budget left lasts at the last hour's burn; None when it is not
        burning (or is spent)."""
        burn = self.burn_rate["1h"]
        if burn <= 0 or self.budget_remaining <= 0:
            return None
        return self.budget_remaining * self.window / burn

    @property
    def too_little_data(self) -> str | None:
        """What keeps a condition from firing for want of data, in the order they are
        judged (``2 of the 1h window's ~120 runs``); None once every window holds
        enough."""
        for name in dict.fromkeys(w for c in CONDITIONS for w in (c.long, c.short)):
            found = self.coverage.get(name)
            if found is not None and not found.enough:
                return f"{found.runs:,} of the {name} window's ~{found.expected:,.0f} runs"
        return None

    def budget_left(self) -> str:
        """The budget left, readable however much is spent: ``30.5% left``, or ``spent
        250x over`` (not -24900%)."""
        if self.budget_remaining >= 0:
            return f"{self.budget_remaining * 100:.1f}% left"
        spent = 1.0 - self.budget_remaining
        return f"spent {spent:.1f}x over" if spent < 10 else f"spent {spent:,.0f}x over"

    def as_json(self) -> dict[str, Any]:
        found = asdict(self)
        for key in ("rule", "coverage"):
            del found[key]
        found["firing"] = [str(c) for c in self.firing]
        found["held"] = [str(c) for c in self.held]
        found["seconds_left"] = self.seconds_left
        found["runs"] = {name: c.runs for name, c in self.coverage.items()}
        found["expected_runs"] = {name: round(c.expected, 1)
                                  for name, c in self.coverage.items()}
        found["too_little_data"] = self.too_little_data
        return found


def sli_of(spec: SloSpec) -> Sli:
    return Sli(spec.sli, spec.budgeting == "timeslices", spec.threshold_ms, spec.group)


def burndown(conn: sqlite3.Connection, report: Report, now: float
             ) -> list[tuple[float, float]]:
    """The error budget left over the window, point by point: at each rolled-up
    bucket, what the bad runs up to it left of the whole window's budget (1.0 at the
    window's start, ``budget_remaining`` now, below 0 when overspent)."""
    ids = tuple(i for name in report.checks if (i := check_id(conn, name)) is not None)
    allowed = report.allowed
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

            def count(seconds: float, ids: tuple[int, ...] = ids, sli: Sli = sli,
                      rate: float = spec.runs_per_s) -> tuple[int, int, Coverage]:
                good, total, runs = tally.count(ids, sli, now - seconds, now, self.keep,
                                                marks)
                return good, total, Coverage(runs, rate * seconds)

            burn, coverage = {}, {}
            for name, seconds in WINDOWS.items():
                in_good, in_total, coverage[name] = count(seconds)
                burn[name] = burn_rate(in_good, in_total, spec.budget)
            good, total, coverage[format_duration(spec.window)] = count(spec.window)
            lacking = frozenset(name for name, c in coverage.items() if not c.enough)
            verdict, firing, held = status(burn, spec.window, lacking)
            report = Report(
                spec.name, spec.target, good / total if total else None, good, total,
                1.0, burn, verdict, spec.window, list(spec.covers), firing, spec.sli,
                spec.threshold_ms, sli, coverage, held)
            if report.allowed:
                report.budget_remaining = 1.0 - (total - good) / report.allowed
            reports.append(report)
        tally.forget_unused()
        return reports
