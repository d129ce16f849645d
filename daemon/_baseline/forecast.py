"""Where a series is going: a least-squares line through its recent windows, each less
the level usual for its hour (so a daily cycle is no trend), carried forward with the
usual level of each hour to come, until it passes a threshold."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

#: Windows a line needs before it says anything.
MIN_POINTS = 12


class Trend:
    def __init__(self, keep: int) -> None:
        #: (time, log value less its hour's usual level) of the recent windows.
        self.points: deque[tuple[float, float]] = deque(maxlen=max(keep, MIN_POINTS))

    def add(self, at: float, deviation: float) -> None:
        self.points.append((at, deviation))

    def crossing(self, now: float, threshold: float, horizon: float, step: float,
                 usual: Callable[[float], float | None]) -> float | None:
        """Seconds from ``now`` until the series passes ``threshold`` (in its own units),
        looking ``horizon`` ahead a ``step`` at a time; None when it does not."""
        if len(self.points) < MIN_POINTS or threshold <= 0:
            return None
        times = [t - now for t, _ in self.points]
        values = [d for _, d in self.points]
        mean_t, mean_d = sum(times) / len(times), sum(values) / len(values)
        spread = sum((t - mean_t) ** 2 for t in times)
        slope = sum((t - mean_t) * (d - mean_d) for t, d in zip(times, values, strict=True)) \
            / spread if spread else 0.0
        limit = math.log(threshold)
        ahead = step
        while ahead <= horizon:
            level = usual(now + ahead)
            if level is not None and level + mean_d + slope * (ahead - mean_t) >= limit:
                return ahead
            ahead += step
        return None
