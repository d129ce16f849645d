"""Per-check state with consecutive-result thresholds (HAProxy's rise/fall)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from vigil._api.check import Status
from vigil._store.records import MachineState, State


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
    #: When the check entered its state (time.time()): what an alert's start, a heal's
    #: relevance and a long failure are measured from. Saved with the state, so a
    #: restart does not start a failure over (one restored from a vigil that did not
    #: save it counts from the restore).
    since: float = field(default_factory=time.time)

    def observe(self, status: Status, at: float | None = None) -> tuple[State, State] | None:
        """Count one result (of time ``at``, default now); the (old, new) transition it
        causes, if any."""
        old = self.state
        if status.passing:
            self.successes, self.failures = self.successes + 1, 0
            if old is State.PENDING or (old is State.FAILING and self.successes >= self.rise):
                self.state = State.OK
        else:
            self.failures, self.successes = self.failures + 1, 0
            if old is not State.FAILING and self.failures >= self.fall:
                self.state = State.FAILING
        if self.state is old:
            return None
        self.since = time.time() if at is None else at
        return old, self.state

    def to_dict(self) -> MachineState:
        return {"state": self.state, "failures": self.failures, "successes": self.successes,
                "since": self.since}

    def restore(self, data: MachineState) -> None:
        # .get: a row saved by an older vigil may lack any of them.
        self.state = State(data.get("state", "PENDING"))
        self.failures = int(data.get("failures", 0))
        self.successes = int(data.get("successes", 0))
        self.since = float(data.get("since") or time.time())
