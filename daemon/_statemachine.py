"""Per-check state with consecutive-result thresholds (HAProxy's rise/fall)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from vigil._check import Status


class State(enum.StrEnum):
    PENDING = "PENDING"
    OK = "OK"
    FAILING = "FAILING"


@dataclass
class CheckState:
    """``fall`` failing results in a row make a check FAILING, ``rise`` passing results
    in a row make a FAILING check OK again. A new check is PENDING until its first pass
    or its ``fall``-th failure. OK and WARN pass; CRIT and UNKNOWN fail."""

    fall: int
    rise: int
    state: State = State.PENDING
    failures: int = 0
    successes: int = 0

    def observe(self, status: Status) -> tuple[State, State] | None:
        """Count one result; the (old, new) transition it causes, if any."""
        old = self.state
        if status.passing:
            self.successes, self.failures = self.successes + 1, 0
            if old is State.PENDING or (old is State.FAILING and self.successes >= self.rise):
                self.state = State.OK
        else:
            self.failures, self.successes = self.failures + 1, 0
            if old is not State.FAILING and self.failures >= self.fall:
                self.state = State.FAILING
        return (old, self.state) if self.state is not old else None

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state.value, "failures": self.failures, "successes": self.successes}

    def restore(self, data: dict[str, Any]) -> None:
        self.state = State(data.get("state", "PENDING"))
        self.failures = int(data.get("failures", 0))
        self.successes = int(data.get("successes", 0))
