"""Multi-window, multi-burn-rate alerting, as the SRE workbook gives it for 30 days and
Sloth scales it to any window: an alert fires while the burn rate is over its factor
over both a long window (it is real) and a short one (it is still going on), once both
hold enough data to mean it (two failed runs of a new daemon are no burn)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

#: The burn-rate windows, by the names the CLI, the API and the metrics give them.
WINDOWS: Final = {"5m": 300, "30m": 1800, "1h": 3600, "2h": 7200, "6h": 21600,
                  "1d": 86400, "3d": 259200}


@dataclass(frozen=True)
class Condition:
    severity: str
    long: str
    short: str
    #: The share of the whole window's budget that, spent within ``long``, fires it.
    budget_share: float

    def factor(self, window: float) -> float:
        """The burn rate over which it fires for an objective over ``window`` seconds:
        14.4 for a page over 1 h of a 30-day window."""
        return self.budget_share * window / WINDOWS[self.long]

    def burns(self, burn: dict[str, float], window: float) -> bool:
        """Whether both its windows burn over its factor."""
        factor = self.factor(window)
        return burn[self.long] > factor and burn[self.short] > factor

    def __str__(self) -> str:
        return f"{self.severity} {self.long}/{self.short}"


#: The workbook's table: 2% of the budget in an hour or 5% in six pages; 10% in a day
#: or in three days opens a ticket.
CONDITIONS: Final = (
    Condition("page", "1h", "5m", 0.02),
    Condition("page", "6h", "30m", 0.05),
    Condition("ticket", "1d", "2h", 0.10),
    Condition("ticket", "3d", "6h", 0.10),
)
#: Status from the mildest; what ``vigil slo`` exits with.
STATUSES: Final = ("ok", "ticket", "page")


def burn_rate(good: int, total: int, budget: float) -> float:
    """How fast the budget burns: the error rate over the budget (1.0 spends exactly
    the budget over the window); 0 without a run."""
    return (total - good) / total / budget if total else 0.0


def status(burn: dict[str, float], window: float, lacking: frozenset[str] = frozenset()
           ) -> tuple[str, list[Condition], list[Condition]]:
    """``page``, ``ticket`` or ``ok``; the conditions that fire; and those that burn but
    are held back, a window of theirs ``lacking`` data."""
    burning = [c for c in CONDITIONS if c.burns(burn, window)]
    firing = [c for c in burning if not {c.long, c.short} & lacking]
    worst = max((STATUSES.index(c.severity) for c in firing), default=0)
    return STATUSES[worst], firing, [c for c in burning if c not in firing]
