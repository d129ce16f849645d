"""A service as the healer sees it: its runtime (budget, backoff, the live manager), the
states it can be in, and how a heal ended."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from vigil._api.manager import ServiceManager
from vigil._config.sections import ServiceSpec
from vigil._store.records import HealRecord, HealState, ServiceEntry, Verdict

#: Told of a heal's progress (`vigil heal` prints it): the event and its fields.
Progress = Callable[..., None]
#: Says one of a heal's events: to the log at ``level`` (none: not logged) and to an
#: interactive caller.
Emit = Callable[..., None]


@dataclass
class HealOutcome:
    verdict: Verdict
    #: What the heal event carried: command, exit code, output tail, recovery_s... and
    #: whatever a manager's ``start_failed()`` added (its own words, free-form).
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.verdict is Verdict.SUCCEEDED

    def record(self, at: float | None = None) -> HealRecord:
        """As saved in the state and sent to `vigil heal`: ``outcome`` is the event."""
        # The event's fields are the record's keys, a manager's own among them.
        record = cast(HealRecord, {"outcome": self.verdict.value, **self.fields})
        if at is not None:
            record["at"] = at
        return record


def describe(manager: ServiceManager) -> str:
    """What the manager manages, in a few words; a plugin's that raises is shown so,
    never a failed page or heal."""
    try:
        return manager.describe()
    except Exception as exc:
        return f"{type(manager).__name__} (describe() raised {type(exc).__name__}: {exc})"


@dataclass
class ServiceRuntime:
    spec: ServiceSpec
    #: The live manager: what it started (PID, port) is its ``state``.
    service_manager: ServiceManager
    #: Wall-clock times of the heals inside the budget window.
    history: list[float] = field(default_factory=list)
    given_up: bool = False
    #: Wall-clock time before which no new heal starts (the backoff).
    not_before: float = 0.0
    #: Heals in the current crash loop: the backoff doubles with each.
    streak: int = 0
    #: When the last heal succeeded, until the service fails again or the heal has
    #: held for ``backoff_reset``.
    held_since: float | None = None
    last: HealRecord | None = None
    healing: threading.Lock = field(default_factory=threading.Lock)
    #: Set when a heal's wait is over: every check in ``awaiting`` has passed since.
    passed: threading.Event = field(default_factory=threading.Event)
    #: The checks a heal waits for: those failing when it began (all of the service's
    #: when none was), each removed when it passes.
    awaiting: set[str] = field(default_factory=set)
    awaiting_lock: threading.Lock = field(default_factory=threading.Lock)
    #: Wakes a heal's wait: a check passed, or a watcher saw the service exit.
    stirred: threading.Event = field(default_factory=threading.Event)
    skip_reason: str | None = None
    #: Whether a watcher reports the death of what runs now (else only its checks tell).
    watching: bool = False
    #: Heals so far by outcome ("succeeded", "failed").
    heals: collections.Counter[str] = field(default_factory=collections.Counter)
    #: The wall clock the budget, the backoff and the heals' times are read from.
    clock: Callable[[], float] = time.time

    @property
    def manager(self) -> str:
        return self.spec.manager

    @property
    def state(self) -> HealState:
        self.settle()
        if self.healing.locked():
            return HealState.HEALING
        if self.given_up:
            return HealState.GAVE_UP
        return HealState.BACKING_OFF if self.clock() < self.not_before else HealState.READY

    def budget_spent(self) -> bool:
        """Whether ``restarts`` heals already fall inside the ``within`` window."""
        horizon = self.clock() - self.spec.within
        self.history = [t for t in self.history if t > horizon]
        return len(self.history) >= self.spec.restarts

    def backoff(self) -> float:
        """The wait before the next heal: 1x, 2x, 4x... the base for the 1st, 2nd, 3rd
        heal of a crash loop, at most ``within``."""
        return min(self.spec.backoff * 2.0 ** max(0, self.streak - 1), self.spec.within)

    def settle(self) -> None:
        """A heal that has held for ``backoff_reset`` ends the crash loop: no backoff."""
        if (self.held_since is not None
                and self.clock() - self.held_since >= self.spec.backoff_reset):
            self.streak, self.not_before, self.held_since = 0, 0.0, None

    def entry(self) -> ServiceEntry:
        return {"state": self.state, "history": self.history, "given_up": self.given_up,
                "not_before": self.not_before, "streak": self.streak,
                "held_since": self.held_since, "last": self.last,
                "healing": self.healing.locked(), "manager": self.spec.manager,
                "describe": describe(self.service_manager), "watching": self.watching,
                "heals": dict(self.heals), "restarts": self.spec.restarts,
                "within": self.spec.within,
                "manager_state": self.service_manager.state}


def emitter(progress: Progress | None) -> Emit:
    def emit(event: str, level: Callable[..., Any] | None, **fields: Any) -> None:
        if level is not None:
            level(event, **fields)
        if progress is not None:
            progress(event, **fields)

    return emit
