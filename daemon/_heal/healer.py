"""The healing policy: when a guarding check is FAILING, bring its service back,
within a restart budget, dependencies first, never twice at once. The backoff grows
only while heals do not hold (a crash loop): a heal after which the service stayed
healthy for ``backoff_reset`` ends the loop, and the next incident is healed at once."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import structlog

from vigil._api.check import Result
from vigil._api.manager import BRIEF_TAIL, Action, Seen, ServiceManager
from vigil._config.sections import ServiceSpec
from vigil._engine.events import EventHub
from vigil._engine.maintenance import MaintenanceBook
from vigil._heal.healstate import Emit, HealOutcome, Progress, ServiceRuntime, describe, emitter
from vigil._heal.watching import Watching
from vigil._heal.watching import stop as stop_watching
from vigil._kit.ports import describe_ports, first_free, port_holders
from vigil._store.maintenance import Window
from vigil._store.records import HealRecord, HealState, ServiceEntry, State, Verdict

log = structlog.get_logger("vigil.heal")

#: How often a heal that waits for its check logs its progress.
PROGRESS_EVERY = 5.0
#: How often that wait asks the manager whether the start has already failed (sooner
#: when a watcher reports the service's exit).
START_POLL = 0.25

#: Who opened the window of a service stopped on purpose.
STOPPED_BY = "a deliberate stop"


class Healer:
    """Decides when to heal and runs heals, one thread per heal.

    ``failing(service)`` names the checks guarding a service whose latest result failed
    (or that never ran): the service is unhealthy while it names any.
    ``wake(service)`` asks the scheduler to re-run the service's checks now and at
    their fast interval until they pass, and returns the checks it woke: a service that
    no check guards is healed once its manager's command succeeds.
    """

    def __init__(self, failing: Callable[[str], Collection[str]],
                 wake: Callable[[str], Collection[str]],
                 record: Callable[[str, float, HealRecord], None] | None = None,
                 watch: bool = False, clock: Callable[[], float] = time.time) -> None:
        self._failing = failing
        #: The wall clock (a test's own): when heals began, the budget, the backoff.
        self.clock = clock
        self._wake = wake
        #: Told of every heal's outcome (service, start time, outcome), for the history.
        self._record = record
        #: Services' watches (the daemon's; a one-shot `vigil heal` watches none).
        self._watching = Watching(watch, self.exited)
        #: The live event stream, told of every heal's outcome.
        self.events: EventHub | None = None
        #: Saves the services' state now (the daemon's store), before a heal's outcome
        #: is logged.
        self.persist: Callable[[], None] | None = None
        self.services: dict[str, ServiceRuntime] = {}
        #: The maintenance windows in effect (the check table's): nothing they cover is
        #: healed.
        self.maintenance: MaintenanceBook | None = None
        #: Open and end a maintenance window (the daemon's: saved, and in effect at once).
        self.hold: Callable[[Window], None] | None = None
        self.release: Callable[[str, str], None] | None = None

    def install(self, services: dict[str, ServiceSpec], saved: dict[str, ServiceEntry],
                state_dir: Path) -> None:
        """Adopt a config's services, keeping what the running daemon or the state database
        knows about each (its budget, its given-up mark, its manager's PID)."""
        replaced = [rt.service_manager for rt in self.services.values()]
        runtimes = {}
        for name, spec in services.items():
            manager = spec.make_manager()
            rt = self.services.get(name)  # the same object: a heal in flight writes to it
            if rt is not None:
                if rt.spec.manager == spec.manager:
                    manager.state = rt.service_manager.state
                rt.spec, rt.service_manager = spec, manager
                runtimes[name] = rt
                manager.state_dir = state_dir
                self._watching.arm(rt)
                continue
            rt = ServiceRuntime(spec, manager, clock=self.clock)
            if name in saved:
                entry = saved[name]
                rt.history = [float(t) for t in entry.get("history", [])]
                rt.given_up = bool(entry.get("given_up", False))
                rt.not_before = float(entry.get("not_before", 0.0))
                rt.streak = int(entry.get("streak", 0))
                rt.heals = collections.Counter(entry.get("heals", {}))
                held = entry.get("held_since")
                rt.held_since = None if held is None else float(held)
                rt.last = entry.get("last")
                if entry.get("manager") == spec.manager:
                    rt.service_manager.state = dict(entry.get("manager_state", {}))
            manager.state_dir = state_dir
            self._watching.arm(rt)
            runtimes[name] = rt
        stop_watching(replaced)
        self.services = runtimes

    def close(self) -> None:
        """Stop watching the services (the daemon stops, or a new config replaces them)."""
        stop_watching([rt.service_manager for rt in self.services.values()])

    def exited(self, service: str, manager: ServiceManager, seen: Seen) -> None:
        """A watcher saw ``service`` die: its checks run now and at their fast interval
        (they, not the watcher, decide its state). During a heal (vigil's own restart,
        or a start that dies) the heal's wait looks at once instead."""
        rt = self.services.get(service)
        if rt is None or rt.service_manager is not manager:
            return  # the manager of a config since replaced
        # What was watched is gone: the next start is watched anew.
        rt.watching = False
        if rt.healing.locked():
            rt.stirred.set()
            return
        log.warning("service.exited", service=service, manager=rt.manager, **seen)
        if seen.get("deliberate") and rt.spec.respect_stops and self.hold is not None:
            # Someone stopped it: left stopped, until it runs again.
            self.hold(Window(service, None, "stopped on purpose", self.clock(),
                             STOPPED_BY))
            return
        self._wake(service)

    def clock_stepped(self, step: float) -> None:
        """The wall clock stepped by ``step`` seconds: the heals' times (the budget's
        window, the backoff, how long a heal has held) move with it, so that a step back
        does not hold healing off for its length nor a step forward spend the budget."""
        for rt in self.services.values():
            rt.history = [t + step for t in rt.history]
            if rt.not_before:
                rt.not_before += step
            if rt.held_since is not None:
                rt.held_since += step

    def snapshot(self) -> dict[str, ServiceEntry]:
        entries = {name: rt.entry() for name, rt in self.services.items()}
        for name, entry in entries.items():
            if self.maintenance and (window := self.maintenance.of_service(name)):
                entry["maintenance"] = window.held()
        return entries

    def healing(self, service: str) -> bool:
        rt = self.services.get(service)
        return rt is not None and rt.healing.locked()

    # -- what the agent tells us -----------------------------------------------------

    def observe(self, check: str, service: str, result: Result, state: State) -> None:
        """Every result of a check that guards ``service``."""
        rt = self.services.get(service)
        if rt is None:
            return
        if result.status.passing:
            if rt.healing.locked():
                self._passed(rt, check)
            held = self.maintenance.of_service(service) if self.maintenance else None
            if held is not None and held.by == STOPPED_BY and self.release is not None:
                self.release(service, "it runs again")
                self._watching.arm(rt)  # what someone started is watched from now
            # Said once per failure of the service: another check that passes while this
            # one still fails must not make it be said again. (Asked only when there is
            # something to forget: this runs for every passing result.)
            if rt.skip_reason is not None and not self._failing(service):
                rt.skip_reason = None
            if state is State.OK and rt.given_up and not self._failing(service):
                # Healthy again, every guard of it: a fresh budget, as if an operator had
                # asked. One passing guard of a crash-looping service is no recovery.
                self.reset(service)
                log.info("heal.resumed", service=service, manager=rt.manager,
                         reason=f"check {check} passes again, and every check of "
                                f"{service} with it")
            return
        rt.settle()
        rt.held_since = None  # the heal did not hold this long: the loop goes on
        if state is State.FAILING:
            self._consider(rt, check, result)

    def _passed(self, rt: ServiceRuntime, check: str) -> None:
        """A guard passed during a heal: the heal holds once every check that was failing
        when it began has passed since, and no guard fails now."""
        with rt.awaiting_lock:
            rt.awaiting.discard(check)
            if not rt.awaiting and not self._failing(rt.spec.name):
                rt.passed.set()
        rt.stirred.set()

    def _consider(self, rt: ServiceRuntime, check: str, result: Result) -> None:
        window = self.maintenance.covering(check, rt.spec.name) if self.maintenance else None
        if window is not None:
            return self._skip(rt, check, "maintenance", window=window.target, by=window.by)
        if not rt.spec.heal:
            return self._skip(rt, check, "report-only service (heal = false)")
        if not result.healable:
            return self._skip(rt, check, f"a restart would not help: {result.summary}",
                              once_as="not healable")
        dependency = self.failing_dependency(rt.spec.name)
        if dependency:
            return self._skip(rt, check, f"dependency {dependency} is failing",
                              dependency=dependency)
        if rt.state is not HealState.READY:
            return None
        if rt.budget_spent():
            rt.given_up = True
            log.error("heal.gave_up", service=rt.spec.name, manager=rt.manager, check=check,
                      restarts=len(rt.history), within_s=rt.spec.within,
                      hint=f"run `vigil heal {rt.spec.name}` to try again")
            if self.events is not None:
                self.events.publish("heal.gave_up", service=rt.spec.name, check=check,
                                    restarts=len(rt.history), at=self.clock())
            return None
        threading.Thread(target=self.heal, args=(rt.spec.name, f"check {check} is FAILING"),
                         name=f"heal:{rt.spec.name}", daemon=True).start()
        return None

    def _skip(self, rt: ServiceRuntime, check: str, reason: str, once_as: str = "",
              **fields: Any) -> None:
        # Once per reason, not once per result: ``once_as`` names the reason where the
        # wording changes from run to run (a summary with a latency in it).
        if rt.skip_reason != (once_as or reason):
            rt.skip_reason = once_as or reason
            log.warning("heal.skipped", service=rt.spec.name, manager=rt.manager, check=check,
                        reason=reason, **fields)

    def failing_dependency(self, service: str, seen: frozenset[str] = frozenset()) -> str | None:
        for dep in self.services[service].spec.depends_on:
            if dep in seen or dep not in self.services:
                continue
            if self.healing(dep) or self._failing(dep):
                return dep
            deeper = self.failing_dependency(dep, seen | {service})
            if deeper:
                return deeper
        return None

    # -- a heal ----------------------------------------------------------------------

    def reset(self, service: str) -> None:
        """An operator's word: forget the budget, the backoff and the given-up mark."""
        rt = self.services[service]
        rt.history.clear()
        rt.given_up = False
        rt.not_before = 0.0
        rt.streak, rt.held_since = 0, None
        rt.skip_reason = None

    def requested(self, service: str, by: str, progress: Progress | None = None) -> HealOutcome:
        """An operator's heal (`vigil heal`, the API): a fresh budget, then a heal now."""
        log.info("heal.requested", service=service, by=by)
        self.reset(service)
        return self.heal(service, f"operator asked ({by})", progress)

    def heal(self, service: str, reason: str, progress: Progress | None = None) -> HealOutcome:
        """Start or restart ``service`` and wait for the checks that were failing to pass;
        returns the outcome. Never runs twice at once for one service."""
        rt = self.services[service]
        service_manager = rt.service_manager
        fields = _subject(rt)
        if not rt.healing.acquire(blocking=False):
            return HealOutcome(Verdict.BUSY,
                               {"reason": "a heal of this service is already running"})
        try:
            # When, for people; the wait is timed on the monotonic clock.
            began, clock = self.clock(), time.monotonic()
            rt.history.append(began)
            rt.streak += 1
            rt.passed.clear()
            with rt.awaiting_lock:
                rt.awaiting = set(self._failing(service))
            emit = emitter(progress)
            try:
                outcome = self._attempt(rt, service_manager, reason, (began, clock), emit)
            except Exception as exc:
                # A manager (a plugin's) that raises: a failed heal like any other, with
                # the budget and backoff it spent; nothing escapes to the caller.
                outcome = HealOutcome(Verdict.FAILED, dict(
                    **fields,
                    reason=f"the {rt.manager} manager raised {type(exc).__name__}: {exc}"))
            rt.not_before = self.clock() + rt.backoff()
            rt.held_since = self.clock() if outcome.ok else None
            rt.heals["succeeded" if outcome.ok else "failed"] += 1
            rt.last = outcome.record(began)
            if self._record is not None:
                self._record(service, began, outcome.record())
        finally:
            rt.healing.release()
        # Saved before it is said: whoever reads the log line, then `vigil status`, finds
        # what the heal did (the new PID, the backoff).
        if self.persist is not None:
            self.persist()
        emit(outcome.verdict.value, log.info if outcome.ok else log.error, **outcome.fields)
        if self.events is not None:
            self.events.publish(outcome.verdict.value, at=began, **outcome.fields)
        return outcome

    def _attempt(self, rt: ServiceRuntime, service_manager: ServiceManager, reason: str,
                 began: tuple[float, float], emit: Emit) -> HealOutcome:
        """Start or restart, then wait for a check to pass; ``began`` is when the heal
        began by the wall clock and by the monotonic one."""
        fields = _subject(rt)
        try:
            running = service_manager.is_running()
        except Exception as exc:  # not known, then: restart, which starts it if down
            log.warning("heal.error", **fields, error=f"is_running() raised "
                                                      f"{type(exc).__name__}: {exc}")
            running = None
        verb = "start" if running is False else "restart"
        emit("heal.started", log.warning, **fields, action=verb, reason=reason,
             attempt=len(rt.history), budget=rt.spec.restarts, target=describe(service_manager))
        if self.events is not None:
            self.events.publish("heal.started", service=rt.spec.name, action=verb, at=began[0])
        if rt.spec.ports:
            action = self._start_on_free_port(rt, service_manager, running, emit)
            verb = "start"
        else:
            action = service_manager.start() if verb == "start" else service_manager.restart()
        if isinstance(action, HealOutcome):  # no port to start on: nothing was run
            return action
        # What runs now is a new process: watched from here on, its death in the wait
        # below included.
        self._watching.arm(rt)
        if not action.ok:
            return HealOutcome(Verdict.FAILED, dict(
                **fields, action=verb,
                reason=f"{verb} command failed", **action.fields(),
                **_details(service_manager)))
        woken = self._wake(rt.spec.name)
        with rt.awaiting_lock:
            if not rt.awaiting:  # an operator's heal of a healthy service: all must pass
                rt.awaiting = set(woken)
            if not woken:
                rt.passed.set()  # no check to wait for
        return self._await_pass(rt, service_manager, began[1], emit, verb, action)

    def _await_pass(self, rt: ServiceRuntime, service_manager: ServiceManager, began: float,
                    emit: Emit, verb: str, action: Action) -> HealOutcome:
        """Wait up to start_timeout for the awaited checks to pass, failing at once when the manager
        says the start failed; progress goes to the log every PROGRESS_EVERY seconds, to
        an interactive caller every second."""
        fields, command = _subject(rt), action.fields()
        grace = rt.spec.start_timeout
        logged = shown = -PROGRESS_EVERY
        while True:
            rt.stirred.clear()  # before looking: a later stir ends the wait below at once
            elapsed = time.monotonic() - began
            if rt.passed.is_set():
                return HealOutcome(Verdict.SUCCEEDED, dict(
                    **fields, action=verb,
                    recovery_s=round(elapsed, 3), **action.fields(tail=BRIEF_TAIL)))
            died = service_manager.start_failed()
            if died is not None:
                return HealOutcome(Verdict.FAILED, dict(
                    **fields, action=verb,
                    reason=f"{rt.spec.name} failed {elapsed:.1f}s after {command['command']}, "
                           "before any check passed", elapsed_s=round(elapsed, 1),
                    **{**command, **died}))
            if elapsed >= grace:
                return HealOutcome(Verdict.FAILED, dict(
                    **fields, action=verb,
                    reason=f"{_awaited(rt)} of {rt.spec.name} did not pass within "
                           f"{grace:g}s (start_timeout) after {command['command']}",
                    elapsed_s=round(elapsed, 1), **command, **_details(service_manager)))
            if elapsed - shown >= 1:
                loud = elapsed - logged >= PROGRESS_EVERY
                logged, shown = (elapsed if loud else logged), elapsed
                emit("heal.waiting", log.info if loud else None, **fields,
                     elapsed_s=round(elapsed, 1), timeout_s=grace)
            rt.stirred.wait(min(START_POLL, grace - elapsed))

    def _start_on_free_port(self, rt: ServiceRuntime, service_manager: ServiceManager,
                            running: bool | None, emit: Emit) -> Action | HealOutcome:
        """Stop, choose a free port of the service's range (the last one chosen first),
        hand it to the manager, start; when every port is taken, the heal.failed."""
        fields = _subject(rt)
        ports = rt.spec.ports or []
        if running is not False:
            service_manager.stop()
        port = first_free(ports, prefer=service_manager.state.get("port"))
        if port is None:
            taken = "; ".join(f"{p} by {who}" for p, who in port_holders(ports).items())
            return HealOutcome(Verdict.FAILED, dict(
                **fields, action="start",
                reason=f"every port of {describe_ports(ports)} is taken: {taken or 'unknown'}"))
        if port != ports[0]:
            held = port_holders([ports[0]]).get(ports[0], "another program")
            emit("heal.port_fallback", log.warning, **fields, port=port, preferred=ports[0],
                 holder=held)
        service_manager.state["port"] = port
        service_manager.use_port(port)
        action = service_manager.start()
        action.port = port
        return action


def _subject(rt: ServiceRuntime) -> dict[str, str]:
    """The fields every event of a heal starts with."""
    return {"service": rt.spec.name, "manager": rt.manager}


def _awaited(rt: ServiceRuntime) -> str:
    """The checks a heal still waits for, for its failure's reason."""
    with rt.awaiting_lock:
        names = sorted(rt.awaiting)
    return (f"check{'s' if len(names) > 1 else ''} {', '.join(names)}" if names
            else "a check")


def _details(service_manager: ServiceManager) -> dict[str, dict[str, str]]:
    details = service_manager.details()
    return {"service_state": details} if details else {}
