"""A streaming anomaly detector for one series of window values (a 5-minute window's
mean response time, say): each value is scored against what came before it alone, then
learnt.

In log space, so that "five times slower" is the same distance at 2 ms as at 2 s, the
series is a seasonal level, plus an offset that follows lasting changes within about
half a day, plus noise. The seasonal level is learnt per hour of the week and used with
the seasonality the data has: per hour of the week once it spans two weeks, per hour of
the day (the week's seven days pooled) once it spans two days, else overall. The noise's
scale is one robust figure for the series (the mean absolute residual of the values that
were not anomalous). A value's score is the larger of its own distance from the level
and that of the recent residuals' moving average (a shift or a drift too small for one
window but kept up), each in units of the noise they should show. What is learnt is
winsorised, so an anomaly moves the baseline only slowly.

The state is small and fixed: a level and a count per hour of the week (two bytes and
one), the offset, the scale and the moving averages: about a kilobyte a series."""

from __future__ import annotations

import math
import sys
from array import array
from dataclasses import dataclass, field

HOUR, DAY, WEEK = 3600, 86400, 7 * 86400
#: A score at or above this is an anomaly.
THRESHOLD = 5.5
#: A slot of the week is used once it was seen this often (an hour of 5-minute windows)
#: in a week before: from the second week on, so that two weeks count.
WEEK_SLOT_SEEN = 12
#: Values needed before any is scored.
WARMUP = 24
#: How much a slot's level, the offset and the scale follow each new value, at least.
SLOT_RATE, OFFSET_RATE, SCALE_RATE = 0.05, 1 / 144, 0.01
#: The moving averages of the residuals: about the last 10 windows (a shift), and the
#: last 40 (a drift).
RECENT_RATES = (0.2, 0.05)
#: The noise is taken to be at least this (log units: 2%): a flat series does not make
#: every wobble an anomaly.
MIN_SCALE = 0.02
MILLI = 1000
#: Gaussian noise's standard deviation from its mean absolute deviation.
MAD_TO_SD = math.sqrt(math.pi / 2)


@dataclass(frozen=True)
class Score:
    """One window's verdict: its score, the level usual for its hour and the band of
    usual values (both in the series' own units), and whether it is an anomaly."""

    score: float
    usual: float
    low: float
    high: float
    anomalous: bool
    #: "week", "day" or "overall": the seasonality the baseline used.
    season: str


def _floor_log(value: float) -> float:
    return math.log(max(value, 1e-9))


@dataclass(slots=True)
class Detector:
    threshold: float = THRESHOLD
    #: Log levels in thousandths (int16: log 1e-9 to 1e9 fits, to 0.1%).
    levels: array[int] = field(default_factory=lambda: array("h", [0] * 168))
    counts: bytearray = field(default_factory=lambda: bytearray(168))
    first: float | None = None
    seen: int = 0
    #: The lasting change, the mean absolute residual (log units), and the residuals'
    #: moving average.
    offset: float = 0.0
    scale: float = 0.0
    recent: list[float] = field(default_factory=lambda: [0.0, 0.0])

    def feed(self, at: float, value: float) -> Score | None:
        """Score ``value`` (the window ending at ``at``, time.time()) against what came
        before, then learn it; None while warming up."""
        if self.first is None:
            self.first = at
        slot = int(at // HOUR) % 168
        y = _floor_log(value)
        season, seasonal = self._level(at, slot)
        level = (seasonal if seasonal is not None else y) + self.offset
        sd = max(self.scale * MAD_TO_SD, MIN_SCALE)
        residual = y - level
        # Winsorised too: one spike is one anomaly, not the start of a run of them.
        kept = max(-3 * sd, min(3 * sd, residual)) if self.seen > WARMUP else residual
        self.recent = [(1 - rate) * mean + rate * kept
                       for rate, mean in zip(RECENT_RATES, self.recent, strict=True)]
        verdict = None
        if seasonal is not None and self.seen >= WARMUP:
            # The moving average of independent residuals varies less than one of them.
            score = max([abs(residual) / sd] + [
                abs(mean) / (sd * math.sqrt(rate / (2 - rate)))
                for rate, mean in zip(RECENT_RATES, self.recent, strict=True)])
            band = self.threshold * sd
            verdict = Score(round(score, 2), _exp(level), _exp(level - band),
                            _exp(level + band), score >= self.threshold, season)
        self._learn(slot, y, residual, sd, verdict)
        return verdict

    def usual_log(self, at: float) -> float | None:
        """The log level usual at ``at`` (its hour's, as scored now), without the
        offset; None before anything was learnt."""
        return self._level(at, int(at // HOUR) % 168)[1]

    def _level(self, at: float, slot: int) -> tuple[str, float | None]:
        span = at - (self.first or at)
        if span >= WEEK and self.counts[slot] >= WEEK_SLOT_SEEN:
            return "week", self.levels[slot] / MILLI
        if span >= 2 * DAY:
            pooled = self._pooled(range(slot % 24, 168, 24))
            if pooled is not None:
                return "day", pooled
        return "overall", self._pooled(range(168))

    def _pooled(self, slots: range) -> float | None:
        weight = sum(self.counts[s] for s in slots)
        if not weight:
            return None
        return sum(self.levels[s] * self.counts[s] for s in slots) / weight / MILLI

    def _learn(self, slot: int, y: float, residual: float, sd: float,
               verdict: Score | None) -> None:
        self.seen += 1
        warm = self.seen > WARMUP
        # Winsorised: an anomaly is learnt as a value at the edge of the usual.
        clipped = max(-3 * sd, min(3 * sd, residual)) if warm else residual
        self.offset += OFFSET_RATE * clipped if warm else 0.0
        # Until a daily cycle can be told apart (two days), it is part of the noise.
        if verdict is None or not verdict.anomalous or verdict.season == "overall":
            self.scale += max(1 / self.seen, SCALE_RATE) * (abs(clipped) - self.scale)
        count = self.counts[slot]
        own = self.levels[slot] / MILLI if count else y - self.offset
        target = y - self.offset
        if warm:
            target = own + max(-3 * sd, min(3 * sd, target - own))
        level = own + max(1 / (count + 1), SLOT_RATE) * (target - own)
        self.levels[slot] = max(-32767, min(32767, round(level * MILLI)))
        self.counts[slot] = min(255, count + 1)


#: The largest logarithm whose exponential a float holds.
_LARGEST_LOG = math.log(sys.float_info.max)


def _exp(log: float) -> float:
    """A level back from log space; a series near the largest floats (1e300) reads as
    the largest float, never an OverflowError."""
    return math.exp(min(log, _LARGEST_LOG))
