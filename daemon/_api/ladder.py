"""The latency ladder: the slots the history counts durations into, so that a latency
objective (a run, or an event, at most so many milliseconds) counts exactly from it."""

from __future__ import annotations

from bisect import bisect_left
from typing import Final

#: The ladder's boundaries (ms); a latency objective's threshold is one of them.
LATENCY_LADDER_MS: Final = (
    1, 2, 5, 10, 20, 25, 50, 75, 100, 150, 200, 250, 300, 400, 500, 750, 1000, 1500, 2000,
    2500, 3000, 4000, 5000, 7500, 10000, 15000, 20000, 30000, 60000)


#: Each slot's key, and ``d+`` past the last: made once, looked up on every run.
SLOTS: Final = (*(f"d{bound}" for bound in LATENCY_LADDER_MS), "d+")


def latency_slot(duration_ms: float) -> str:
    """The ladder's key for a duration: the smallest boundary at or above it (``d100``
    holds what took over 75 and at most 100 ms), ``d+`` past the last."""
    return SLOTS[bisect_left(LATENCY_LADDER_MS, duration_ms)]
