"""The check table: every configured check with what is known of it (its state machine,
last result, counters), how each run is carried out, observed and paced, and which
checks guard a service. The agent keeps the main loop; this is its process table."""

from __future__ import annotations

import collections
import functools
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import structlog

from vigil._api.check import Result, Status
from vigil._api.ladder import SLOTS, latency_slot
from vigil._config.plugins import Plugins
from vigil._config.sections import CheckSpec, Config
from vigil._engine import gate
from vigil._engine.events import EventHub
from vigil._engine.maintenance import MaintenanceBook
from vigil._engine.runner import Outcome, Runner
from vigil._engine.scheduler import Scheduler
from vigil._engine.statemachine import CheckState
from vigil._store.records import CheckEntry, LastResult, State
from vigil._store.store import Store

log = structlog.get_logger("vigil")
#: A run's count key on the latency ladder, by its slot: made once, not on every run.
DURATION_KEYS = {slot: f"duration.{slot}" for slot in SLOTS}
_stdlib_log = logging.getLogger("vigil")

#: A check whose runs keep overrunning its interval says so this often while it lasts.
SKIPS_REPORTED_EVERY = 300.0


@dataclass
class CheckRuntime:
    spec: CheckSpec
    machine: CheckState
    #: The last result as saved (restored from the state database until the check runs).
    last: LastResult | None = None
    counts: collections.Counter[str] = field(default_factory=collections.Counter)
    #: The latest run as it came: (result, duration_ms, time.time()). Made into the saved
    #: form only when saved, which for a healthy check is not every run.
    latest: tuple[Result, float, float] | None = None
    #: time.time() of the last entry handed to the store.
    saved: float = 0.0
    #: Runs that came due while the one before still ran: each waits for its end.
    deferred: int = 0
    #: A run was asked for now while this one ran: it follows at once.
    again: bool = False
    #: Deferred runs in the current streak of overrunning runs, and when it began or
    #: was last reported (time.time()): one check.skipped per streak.
    skip_streak: int = 0
    skip_since: float = 0.0
    #: Timed-out runs in a row: only the first is a warning.
    timeouts: int = 0
    #: time.monotonic() the last run began (None before any): a check with a floor
    #: (``CheckSpec.floor``) begins none sooner than that after it.
    began: float | None = None

    def status(self) -> str | None:
        """The latest result's status name; None before any result."""
        if self.latest is not None:
            return self.latest[0].status.name
        return self.last["status"] if self.last else None

    @property
    def failing_now(self) -> bool:
        # Not yet run counts as failing: a dependency is trusted only once it passed.
        status = self.status()
        return status is None or not Status[status].passing

    def last_result(self) -> LastResult | None:
        """The latest result in its saved form."""
        if self.latest is None:
            return self.last
        result, duration_ms, at = self.latest
        last: LastResult = {
            "status": result.status.name, "summary": result.summary,
            "metrics": dict(result.metrics), "details": dict(result.details),
            "healable": result.healable, "duration_ms": duration_ms,
            "at": datetime.fromtimestamp(at, UTC).isoformat()}
        if result.perfdata:
            last["perfdata"] = result.perfdata
        return last


class Healing(Protocol):
    """What the check table needs of healing (the layer above it): to hear every result
    of a check that guards a service, and whether a service is being healed now."""

    def observe(self, check: str, service: str, result: Result, state: State) -> None: ...

    def healing(self, service: str) -> bool: ...


class Watching(Protocol):
    """What the check table needs of the baselines: they see each run of a check with a
    ``baseline`` (held: under maintenance), and may turn its result into a WARN."""

    def observe(self, spec: CheckSpec, outcome: Outcome, now: float, held: bool
                ) -> Outcome: ...


class CheckTable:
    """Runs each check on its schedule (through the scheduler it owns), keeps its state,
    tells the observer hooks, the healer and the store, and re-paces it while a failure
    is being confirmed or its service heals."""

    def __init__(self, runner: Runner, healer: Healing, stopping: threading.Event,
                 store: Store) -> None:
        self.runner = runner
        self.healer = healer
        self.stopping = stopping
        self.store = store
        self.scheduler = Scheduler(self.run, self.missed)
        self.plugins: Plugins | None = None
        #: The baselines (``_baseline``), when the agent has them.
        self.baselines: Watching | None = None
        self.runtimes: dict[str, CheckRuntime] = {}
        #: How many enabled checks are in each state, kept as they change: the main loop
        #: reads it twice a second, whatever the number of checks.
        self.states: collections.Counter[str] = collections.Counter()
        #: Whether every result is logged at info, or only changes and failures.
        self.log_all = False
        #: The live stream of results and changes (GET /api/v1/events).
        self.events = EventHub()
        #: The maintenance windows in effect (the agent reads them from the store).
        self.maintenance = MaintenanceBook()
        #: Counts every result: what was built from the checks' state (a /health page)
        #: is still right while it has not moved.
        self.generation = 0
        self._lock = threading.Lock()

    def install(self, config: Config, saved: dict[str, CheckEntry]) -> None:
        """Swap in the checks of ``config``; a check that keeps its name and type keeps
        its state and last result, from the running daemon or from the state database."""
        runtimes = {}
        with self._lock:
            for name, spec in config.checks.items():
                machine = CheckState(spec.fall, spec.rise)
                old = self.runtimes.get(name)
                if old and old.spec.type == spec.type:
                    machine.restore(old.machine.to_dict())
                    runtimes[name] = CheckRuntime(spec, machine, old.last_result(), old.counts,
                                                  began=old.began)
                    continue
                entry = saved.get(name)
                if entry is None:
                    runtimes[name] = CheckRuntime(spec, machine)
                    continue
                if entry.get("type") == spec.type:
                    machine.restore(entry)
                # "ok" was once counted for every run that ended by itself: dropped.
                counts = {k: v for k, v in entry.get("counts", {}).items() if k != "ok"}
                runtimes[name] = CheckRuntime(spec, machine, entry.get("last"),
                                              collections.Counter(counts),
                                              began=_began(spec, entry.get("last")))
            for name, rt in self.runtimes.items():
                if runtimes.get(name, rt).spec.check is not rt.spec.check:
                    _close(rt)
            self.runtimes = runtimes
            self.states = collections.Counter(
                rt.machine.state.value for rt in runtimes.values() if rt.spec.enabled)
            self.plugins = config.plugins
            self.generation += 1
            self.log_all = config.daemon.log_results == "all"
            self.store.retain(set(runtimes), config.daemon.retention())
            for name, rt in runtimes.items():
                self.store.check(name, self._entry(rt))

    def view(self) -> dict[str, CheckEntry]:
        """Every check as saved and shown, at one moment."""
        with self._lock:
            return {name: self._entry(rt) for name, rt in self.runtimes.items()}

    def run_now(self, name: str) -> bool:
        """Run ``name`` at once, then on its rhythm again; False for no such check."""
        rt = self.runtimes.get(name)
        if rt is None or not rt.spec.enabled:
            return False
        self.scheduler.set_interval(name, self.scheduler.pace(name) or rt.spec.interval,
                                    now=True)
        return True

    def clock_stepped(self, step: float) -> None:
        """The wall clock stepped by ``step`` seconds: the times kept to measure spans
        (since when a state holds, the last save, a streak's start) move with it, so
        that no span goes negative or grows by the step."""
        with self._lock:
            for rt in self.runtimes.values():
                rt.machine.since += step
                rt.saved += step
                rt.skip_since += step

    def enabled(self) -> dict[str, CheckRuntime]:
        return {n: rt for n, rt in self.runtimes.items() if rt.spec.enabled}

    def intervals(self) -> dict[str, float]:
        return {n: rt.spec.interval for n, rt in self.enabled().items()}

    def close(self) -> None:
        """Close every check, and hand the store each one's latest entry."""
        with self._lock:
            for name, rt in self.runtimes.items():
                _close(rt)
                self.store.check(name, self._entry(rt))

    # -- one run ---------------------------------------------------------------------

    def run(self, name: str) -> None:
        """Start a run of ``name`` (the scheduler's job: it returns at once, the check
        runs on a worker thread and ``_finish`` takes its outcome there)."""
        rt = self.runtimes.get(name)
        if rt is None or self.stopping.is_set() or self._hold(rt) is not None:
            return
        if (wait := self._too_soon(rt)) > 0:
            # Whoever asked (its pace, SIGUSR1, `vigil wait`, the API), a check that
            # loads its service begins no sooner than its floor after the last run.
            self.scheduler.postpone(name, wait)
            return
        began = time.monotonic()
        finish = functools.partial(self._finish, rt)
        if self.runner.submit(rt.spec.check, rt.spec.timeout, finish):
            rt.began = began
            return
        lasted = self.runner.running_for(name)
        if lasted is None:  # it ended just now
            if self.runner.submit(rt.spec.check, rt.spec.timeout, finish):
                rt.began = began
            return
        with self._lock:
            if lasted < (self.scheduler.pace(name) or rt.spec.interval):
                # Asked for now (a heal's wake, `vigil wait`) while a quick run ends:
                # no overrun; it follows that run at once.
                rt.again = True
                return
            # The previous run outlasted the interval: this one follows a pace after it
            # ends, and the streak is logged once, with its count, instead of once per
            # tick.
            rt.counts["skipped"] += 1
            rt.deferred += 1

    def _too_soon(self, rt: CheckRuntime) -> float:
        """How long before ``rt`` may begin a run (its floor); 0 when it may now."""
        if rt.began is None or not rt.spec.floor:
            return 0.0
        return rt.began + rt.spec.floor - time.monotonic()

    def _hold(self, rt: CheckRuntime) -> str | None:
        """Why a check that loads its service (``min_interval``) does not run now: the
        service is being healed or is under maintenance; None when it runs."""
        service = rt.spec.service
        if not type(rt.spec.check).min_interval or service is None:
            return None
        if (window := self.maintenance.covering(rt.spec.name, service)) is not None:
            return gate.maintained(window)
        return gate.HEALING if self.healer.healing(service) else None

    def held(self, name: str) -> str | None:
        """Why ``name``, asked to run now, does not (`vigil wait` says it): its service
        is worked on, or its floor paces it; None when it runs."""
        rt = self.runtimes.get(name)
        if rt is None:
            return None
        if (why := self._hold(rt)) is not None:
            return why
        wait = self._too_soon(rt)
        return gate.paced(rt.spec.floor, time.time() + wait) if wait > 0 else None

    def _finish(self, rt: CheckRuntime, outcome: Outcome) -> None:
        """One run's outcome (on the worker's thread): counted, logged, saved, told to
        the stream, the hooks and the healer; then the check's next pace."""
        if self.stopping.is_set():
            return
        self._note_problem(rt, outcome)
        now = time.time()
        if self.baselines is not None and rt.spec.baseline:
            outcome = self.baselines.observe(rt.spec, outcome, now,
                                             self.shown_state(rt) is State.MAINTENANCE)
        result = outcome.result
        duration_ms = round(outcome.duration_ms, 2)
        transition, before, entry = self._count(rt, outcome, duration_ms, now)
        self._log_result(rt, result, before, duration_ms)
        self._tell(rt, result, duration_ms, now, transition, entry)
        if rt.spec.service:
            self.healer.observe(rt.spec.name, rt.spec.service, result, rt.machine.state)
        self._pace(rt, result, self._skips(rt, now))

    def _note_problem(self, rt: CheckRuntime, outcome: Outcome) -> None:
        """A run that timed out (only the first in a row is a warning) or raised."""
        if outcome.kind == "timeout":
            level = logging.WARNING if rt.timeouts == 0 else logging.DEBUG
            rt.timeouts += 1
            if _stdlib_log.isEnabledFor(level):
                log.log(level, "check.timeout", check=rt.spec.name, timeout_s=rt.spec.timeout,
                        summary=outcome.result.summary, in_a_row=rt.timeouts)
        else:
            rt.timeouts = 0
        if outcome.kind == "error":
            log.error("check.error", check=rt.spec.name, error=outcome.error)

    def _count(self, rt: CheckRuntime, outcome: Outcome, duration_ms: float, now: float
               ) -> tuple[tuple[State, State] | None, str | None, CheckEntry | None]:
        """Into the state machine and the counts: the transition it caused, the status
        before it, and the entry to save (None when the store need not hear of it)."""
        result = outcome.result
        status = result.status.name
        with self._lock:
            transition = rt.machine.observe(result.status, now)
            if transition and rt.spec.enabled:
                self.states[transition[0].value] -= 1
                self.states[transition[1].value] += 1
            rt.counts["runs"] += 1
            if outcome.kind != "ok":  # a problem (timeout, error); the statuses count runs
                rt.counts[outcome.kind] += 1
            rt.counts[f"status.{status}"] += 1
            # A passing run on the history's latency ladder: what a latency objective
            # counts good, and what /metrics exports for the fleet's Prometheus to count
            # the same (a refused connection is quick, and no good).
            if result.status.passing:
                rt.counts[DURATION_KEYS[latency_slot(duration_ms)]] += 1
            self.generation += 1
            before, rt.latest = rt.status(), (result, duration_ms, now)
            # A healthy check whose result changed nothing is saved at the store's
            # checkpoint, not on every run: `vigil status` reads its latest result
            # from the history.
            save = (not result.status.passing or rt.machine.state is not State.OK
                    or before != status or self.store.checkpoint_due(rt.saved, now))
            if save:
                rt.saved = now
            return transition, before, self._entry(rt) if save else None

    def _log_result(self, rt: CheckRuntime, result: Result, before: str | None,
                    duration_ms: float) -> None:
        """What an operator reads: failures (a warning when the status is new), and
        passes that differ from the one before. The rest is debug, and not even built
        when debug is off: it is most runs."""
        status = result.status.name
        if not result.status.passing:
            level = logging.WARNING if before != status else logging.INFO
        elif self.log_all or before != status:
            level = logging.INFO
        else:
            level = logging.DEBUG
        if _stdlib_log.isEnabledFor(level):
            log.log(level, "check.result", check=rt.spec.name, status=status,
                    summary=result.summary, duration_ms=duration_ms, metrics=result.metrics,
                    state=rt.machine.state.value)

    def _tell(self, rt: CheckRuntime, result: Result, duration_ms: float, now: float,
              transition: tuple[State, State] | None, entry: CheckEntry | None) -> None:
        """The store, the live stream and the plugins' hooks hear of the result, and of
        the state change it caused."""
        name, status, shown = rt.spec.name, result.status.name, self.shown_state(rt)
        if entry is not None:
            self.store.check(name, entry)
        self.store.result(name, now, result.status.value, duration_ms, result.metrics,
                          result.summary, shown is State.MAINTENANCE, result.counts)
        if self.events.listening:
            self.events.publish("check.result", check=name, status=status,
                                summary=result.summary, duration_ms=duration_ms,
                                metrics=result.metrics, state=shown.value, at=now)
        assert self.plugins is not None
        if transition:
            old, new = transition
            level = log.warning if new is State.FAILING else log.info
            level("check.state_changed", check=name, **{"from": old.value, "to": new.value},
                  status=status, summary=result.summary)
            self.store.transition(name, now, old.value, new.value, result.status.value,
                                  result.summary)
            self.events.publish("check.state_changed", check=name,
                                **{"from": old.value, "to": new.value}, status=status,
                                summary=result.summary, shown=shown.value, at=now)
            self.plugins.notify("vigil_state_changed", check=name, old=old.value,
                                new=new.value, result=result)
        self.plugins.notify("vigil_check_result", check=name, result=result,
                            state=rt.machine.state.value)

    def _skips(self, rt: CheckRuntime, now: float) -> bool:
        """Count this run's deferred successors into the streak; log the streak once it
        ends (or has lasted SKIPS_REPORTED_EVERY). Whether any run was deferred."""
        with self._lock:
            deferred, rt.deferred = rt.deferred, 0
            if deferred and not rt.skip_streak:
                rt.skip_since = now
            rt.skip_streak += deferred
            streak = rt.skip_streak
            report = streak and (not deferred or now - rt.skip_since >= SKIPS_REPORTED_EVERY)
            if report:
                rt.skip_streak, rt.skip_since = 0, now
        if report:
            log.warning("check.skipped", check=rt.spec.name, skipped=streak,
                        total=rt.counts["skipped"],
                        reason="runs lasted longer than the interval: each due run waited "
                               "for the one before to end")
        return bool(deferred)

    def missed(self, name: str, late_s: float) -> None:
        """A run that came too late (a frozen host): the next keeps the check's rhythm."""
        rt = self.runtimes.get(name)
        if rt is None:
            return
        with self._lock:  # the counts are read by other threads
            rt.counts["missed"] += 1
            self.store.check(name, self._entry(rt))
        log.warning("check.missed", check=name, reason="ran too late",
                    late_s=round(late_s, 1), missed=rt.counts["missed"])

    def _pace(self, rt: CheckRuntime, result: Result, deferred: bool) -> None:
        """Fast confirmation (HAProxy's fastinter): after a first failure, re-run at the
        fast interval until the check is confirmed FAILING or passes; likewise while a
        heal of its service waits for it to pass. A run that came due while this one
        ran follows a pace after its end."""
        spec = rt.spec
        healing = spec.service is not None and self.healer.healing(spec.service)
        fast = not result.status.passing and (rt.machine.state is not State.FAILING or healing)
        wanted = spec.fast_interval if fast else spec.interval
        with self._lock:
            again, rt.again = rt.again, False
        if again or deferred or self.scheduler.pace(spec.name) != wanted:
            self.scheduler.set_interval(spec.name, wanted, now=again)

    # -- services --------------------------------------------------------------------

    def _guards(self, service: str) -> list[CheckRuntime]:
        return [rt for rt in self.enabled().values() if rt.spec.service == service]

    def failing(self, service: str) -> frozenset[str]:
        """The checks guarding ``service`` whose latest result failed (or that never ran)."""
        return frozenset(rt.spec.name for rt in self._guards(service) if rt.failing_now)

    def wake(self, service: str) -> list[str]:
        """Right after a heal command: run the service's checks now, then fast; the checks
        it woke."""
        guards = self._guards(service)
        for rt in guards:
            self.scheduler.set_interval(rt.spec.name, rt.spec.fast_interval, now=True)
        return [rt.spec.name for rt in guards]

    def shown_state(self, rt: CheckRuntime) -> State:
        """The state a check is shown in: MAINTENANCE while a window covers it, else its
        state machine's."""
        if self.maintenance and self.maintenance.covering(rt.spec.name, rt.spec.service):
            return State.MAINTENANCE
        return rt.machine.state

    def _entry(self, rt: CheckRuntime) -> CheckEntry:
        """What is saved and shown of one check (called with the lock held)."""
        machine = rt.machine
        entry: CheckEntry = {
            "type": rt.spec.type, "enabled": rt.spec.enabled, "service": rt.spec.service,
            "interval_s": rt.spec.interval, "state": machine.state,
            "failures": machine.failures, "successes": machine.successes,
            "since": machine.since, "last": rt.last_result(), "counts": dict(rt.counts)}
        window = self.maintenance.covering(rt.spec.name, rt.spec.service) if (
            self.maintenance) else None
        if window is not None:
            entry["state"], entry["maintenance"] = State.MAINTENANCE, window.held()
        return entry


def _began(spec: CheckSpec, last: LastResult | None) -> float | None:
    """When (time.monotonic()) a check with a floor last began, by its saved result: a
    restarted daemon keeps the floor too."""
    if not spec.floor or not last:
        return None
    ago = time.time() - datetime.fromisoformat(last["at"]).timestamp()
    return time.monotonic() - max(0.0, ago)


def _close(rt: CheckRuntime) -> None:
    try:
        rt.spec.check.close()
    except Exception as exc:
        log.error("check.error", check=rt.spec.name, error=f"close() raised {exc}")
