"""The deploy gate's judgement: a set of checks is healthy once every one of them has
passed, without a failure since, for ``stable`` seconds. `vigil wait` and `vigil deploy`
feed it results, from the daemon's stream or from runs of their own."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Standing:
    #: When its current run of passes began (time.time()); None while it fails or has
    #: not passed yet.
    passing_since: float | None = None
    status: str = "not run yet"
    summary: str = ""


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
        standing.status, standing.summary = status, summary

    def stable_for(self, check: str, now: float) -> float:
        since = self.standing[check].passing_since
        return 0.0 if since is None else now - since

    def healthy(self, now: float) -> bool:
        return all(self.stable_for(name, now) >= self.stable for name in self.checks)

    def waiting(self, now: float) -> dict[str, Standing]:
        """The checks not yet stable, with their last result."""
        return {name: s for name, s in self.standing.items()
                if self.stable_for(name, now) < self.stable}
