"""The deploy gate's judgement: a set of checks is healthy once every one of them has
passed, without a failure since, for ``stable`` seconds. `vigil wait` and `vigil deploy`
feed it results, from the daemon's stream or from runs of their own, and say why a check
they asked to run does not (it is held: under maintenance, or paced by its floor)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from vigil._kit.durations import format_duration
from vigil._store.maintenance import Window
from vigil._store.records import LastResult

#: Why a check that loads its service does not run while the service is healed.
HEALING = "its service is being healed (a check that loads it waits for the heal)"


def _at(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def maintained(window: Window) -> str:
    """Why a check that loads its service does not run under ``window``."""
    until = "it is ended" if window.until is None else _at(window.until)
    why = f": {window.reason}" if window.reason else ""
    return f"under maintenance until {until} (by {window.by}{why})"


def paced(floor: float, next_at: float) -> str:
    """Why a check does not run again yet: its floor (``CheckSpec.floor``); ``next_at``
    is the wall-clock time it may, which stays the same however often it is asked."""
    return (f"runs at most every {format_duration(floor)} (it loads its service): next "
            f"run at {_at(next_at)}")


@dataclass
class Standing:
    #: When its current run of passes began (time.time()); None while it fails or has
    #: not passed yet.
    passing_since: float | None = None
    status: str = "not run yet"
    summary: str = ""
    #: Why the run asked for does not come now; "" while it does.
    held: str = ""


@dataclass
class Gate:
    checks: list[str]
    stable: float
    standing: dict[str, Standing] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.standing = {name: Standing() for name in self.checks}

    def saw(self, check: str, status: str, summary: str, at: float) -> None:
        """One result of ``check`` (``status``: OK, WARN, CRIT or UNKNOWN)."""
        standing = self.standing.get(check)
        if standing is None:
            return
        passing = status in ("OK", "WARN")
        if not passing:
            standing.passing_since = None
        elif standing.passing_since is None:
            standing.passing_since = at
        standing.status, standing.summary, standing.held = status, summary, ""

    def seed(self, check: str, last: LastResult | None) -> None:
        """A check that loads its service runs at most every so often: its last result
        counts until it runs again (a load test that passed a minute ago does not hold a
        deploy up for minutes; one that failed does, until it passes)."""
        if last:
            self.saw(check, last["status"], last["summary"],
                     datetime.fromisoformat(last["at"]).timestamp())

    def hold(self, check: str, why: str | None) -> bool:
        """Why the run of ``check`` asked for does not come now (None: it does); whether
        that is news to say."""
        standing = self.standing[check]
        news = bool(why) and why != standing.held
        standing.held = why or ""
        return news

    def stable_for(self, check: str, now: float) -> float:
        since = self.standing[check].passing_since
        return 0.0 if since is None else now - since

    def healthy(self, now: float) -> bool:
        return all(self.stable_for(name, now) >= self.stable for name in self.checks)

    def answer(self, now: float) -> dict[str, Any]:
        """The gate's verdict, as `vigil wait --json` prints it."""
        return {"ok": self.healthy(now), "checks": {
            name: {"status": s.status, "summary": s.summary,
                   "stable_s": round(self.stable_for(name, now), 1), "held": s.held}
            for name, s in self.standing.items()}}
