"""The healing policy in-process, in seconds: a fake service manager, the real Healer,
and structlog's capture_logs for the events. The real-component tests (a daemon, a
private systemd) prove the same paths end to end; these pin the rules down one by one."""

from __future__ import annotations

import functools
import importlib
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs
from structlog.typing import EventDict

from tests.helpers import FIXTURES, wait_until
from vigil import Action, Duration, Result, ServiceManager, Status
from vigil._config.sections import ServiceSpec
from vigil._heal.healer import Healer
from vigil._store.records import HealState, State

CRIT = Result(Status.CRIT, "down")
OK = Result(Status.OK, "up")


class Fake(ServiceManager):
    """Records its verbs; every command succeeds at once."""

    def __init__(self, name: str) -> None:
        super().__init__(name, None)
        self.calls: list[str] = []

    def _do(self, verb: str) -> Action:
        self.calls.append(verb)
        return Action([verb, self.name], 0, "")

    def start(self) -> Action:
        return self._do("start")

    def restart(self) -> Action:
        return self._do("restart")

    def stop(self) -> Action:
        return self._do("stop")

    def is_running(self) -> bool | None:
        return True


class Policy:
    """A Healer over fake services; ``failing`` names the services whose checks fail."""

    def __init__(self, tmp_path: Path, **services: dict[str, Any]) -> None:
        self.failing: set[str] = set()
        #: The wall clock the policy reads: moved by the test, never slept for.
        self.now = 1_800_000_000.0
        self.healer = Healer(failing=lambda s: {"guard"} if s in self.failing else (),
                             wake=lambda _s: [], clock=lambda: self.now)
        specs = {name: ServiceSpec(manager="fake", name=name,
                                   make_manager=functools.partial(Fake, name),
                                   **{"backoff": Duration(0), **keys})
                 for name, keys in services.items()}
        self.healer.install(specs, {}, tmp_path)

    def fail(self, service: str, result: Result = CRIT) -> None:
        """One FAILING result of a check guarding ``service``; waits for a heal it starts."""
        self.failing.add(service)
        self.healer.observe("guard", service, result, State.FAILING)
        wait_until(lambda: not heal_threads(service), 5, "the heal to end")

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def passing(self, service: str, state: State = State.OK) -> None:
        self.failing.discard(service)
        self.healer.observe("guard", service, OK, state)

    def calls(self, service: str) -> list[str]:
        manager = self.healer.services[service].service_manager
        assert isinstance(manager, Fake)
        return manager.calls


def heal_threads(service: str) -> list[threading.Thread]:
    # The healer heals in a thread named for the service. Waiting for the thread, not
    # the heal lock, cannot return before a heal that has not taken the lock yet.
    return [t for t in threading.enumerate() if t.name == f"heal:{service}"]


@pytest.fixture
def logs() -> Iterator[list[EventDict]]:
    with capture_logs() as captured:
        yield captured


def events(logs: list[EventDict], name: str) -> list[EventDict]:
    return [e for e in logs if e["event"] == name]


def test_budget_then_one_gave_up_then_resumed(tmp_path, logs) -> None:
    p = Policy(tmp_path, db={"restarts": 2, "within": Duration(60)})
    for _ in range(5):
        p.fail("db")
    assert p.calls("db") == ["restart", "restart"]
    assert len(events(logs, "heal.gave_up")) == 1
    assert p.healer.services["db"].state is HealState.GAVE_UP
    p.passing("db")
    assert len(events(logs, "heal.resumed")) == 1
    assert p.healer.services["db"].state is HealState.READY
    p.fail("db")
    assert p.calls("db") == ["restart", "restart", "restart"]


def test_the_window_forgets_old_heals(tmp_path, logs) -> None:
    p = Policy(tmp_path, db={"restarts": 1, "within": Duration(0.3)})
    p.fail("db")
    p.fail("db")
    assert p.calls("db") == ["restart"] and events(logs, "heal.gave_up")
    p.passing("db")  # resumed, with a fresh budget...
    p.advance(0.35)  # ...and the heal has left the window
    p.fail("db")
    assert p.calls("db") == ["restart", "restart"]


def test_backoff_holds_the_next_heal(tmp_path) -> None:
    p = Policy(tmp_path, db={"restarts": 5, "backoff": Duration(30)})
    p.fail("db")
    assert p.healer.services["db"].state is HealState.BACKING_OFF
    p.fail("db")
    assert p.calls("db") == ["restart"]


def test_backoff_grows_in_a_crash_loop_and_ends_with_a_heal_that_held(tmp_path) -> None:
    p = Policy(tmp_path, db={"restarts": 10, "backoff": Duration(0.4),
                             "backoff_reset": Duration(0.3)})
    rt = p.healer.services["db"]
    p.fail("db")
    p.fail("db")  # died again at once: the heal did not hold, the backoff holds
    assert p.calls("db") == ["restart"] and rt.state is HealState.BACKING_OFF
    p.advance(0.39)
    p.fail("db")
    assert p.calls("db") == ["restart"], "not before the backoff (0.4 s) has passed"
    p.advance(0.02)
    p.fail("db")
    assert p.calls("db") == ["restart"] * 2
    assert rt.not_before - p.now == pytest.approx(0.8)  # doubled: the loop goes on
    p.passing("db")
    p.advance(0.29)
    assert rt.state is HealState.BACKING_OFF, "not held yet (backoff_reset is 0.3 s)"
    p.advance(0.52)  # healthy for longer than backoff_reset, and past the backoff: held
    assert rt.state is HealState.READY
    p.fail("db")
    assert p.calls("db") == ["restart"] * 3
    assert rt.not_before - p.now == pytest.approx(0.4)  # a new loop: the base wait again


def test_a_failing_dependency_is_healed_first_and_skipped_once(tmp_path, logs) -> None:
    p = Policy(tmp_path, db={}, web={"depends_on": ["db"]})
    p.failing.add("db")
    for _ in range(3):
        p.fail("web")
    skipped = events(logs, "heal.skipped")
    assert len(skipped) == 1 and skipped[0]["dependency"] == "db"
    assert p.calls("web") == []


def test_not_healable_and_report_only_are_skipped_once(tmp_path, logs) -> None:
    p = Policy(tmp_path, db={}, cache={"heal": False})
    wrong_password = Result(Status.CRIT, "auth failed after 3 ms", healable=False)
    p.fail("db", wrong_password)
    # Another guard of db passes while the service is still unhealthy: not said again,
    # nor for a summary whose numbers changed.
    p.healer.observe("port", "db", OK, State.OK)
    p.fail("db", Result(Status.CRIT, "auth failed after 4 ms", healable=False))
    p.fail("cache")
    p.fail("cache")
    reasons = [e["reason"] for e in events(logs, "heal.skipped")]
    assert reasons == ["a restart would not help: auth failed after 3 ms",
                       "report-only service (heal = false)"]
    assert p.calls("db") == [] and p.calls("cache") == []
    p.passing("db")  # healthy again: a new failure is said again
    p.fail("db", wrong_password)
    assert len(events(logs, "heal.skipped")) == 3


def test_heal_events_name_service_and_manager(tmp_path, logs) -> None:
    p = Policy(tmp_path, db={})
    p.fail("db")
    for name in ("heal.started", "heal.succeeded"):
        (event,) = events(logs, name)
        assert event["service"] == "db" and event["manager"] == "fake"


def test_never_two_heals_at_once_from_many_results(tmp_path) -> None:
    p = Policy(tmp_path, db={"restarts": 10})
    gate = threading.Event()
    manager = p.healer.services["db"].service_manager
    assert isinstance(manager, Fake)

    def slow_restart() -> Action:
        gate.wait(5)
        return manager._do("restart")

    manager.restart = slow_restart  # type: ignore[method-assign]
    p.failing.add("db")
    for _ in range(5):
        p.healer.observe("guard", "db", CRIT, State.FAILING)
    gate.set()
    wait_until(lambda: not heal_threads("db"), 5, "the heal to end")
    assert manager.calls == ["restart"]


def raising(tmp_path: Path, broken: str) -> Any:
    """The test plugin's manager (tests/fixtures) whose ``broken`` method raises."""
    sys.path.insert(0, FIXTURES)
    plugin = importlib.import_module("misbehaving")
    options = plugin.RaisingOptions(status_file=str(tmp_path / "flag"), broken=broken)
    return functools.partial(plugin.Raising, "svc", options)


@pytest.mark.parametrize("broken", ["restart", "start", "start_failed"])
def test_a_manager_that_raises_is_a_failed_heal_with_its_budget_spent(tmp_path, broken) -> None:
    healer = Healer(failing=lambda _s: {"guard"}, wake=lambda _s: ["guard"])
    spec = ServiceSpec(manager="raising", name="svc", backoff=Duration(5),
                       start_timeout=Duration(1), make_manager=raising(tmp_path, broken))
    healer.install({"svc": spec}, {}, tmp_path)
    with capture_logs() as logs:
        outcome = healer.heal("svc", "test")
    failed = [e for e in logs if e["event"] == "heal.failed"]
    assert not outcome.ok and len(failed) == 1, logs
    assert failed[0]["reason"] == (f"the raising manager raised RuntimeError: {broken} broke "
                                   "on purpose")
    rt = healer.services["svc"]
    assert len(rt.history) == 1 and rt.state is HealState.BACKING_OFF
    assert rt.last is not None and rt.last["outcome"] == "heal.failed"


@pytest.mark.parametrize("broken", ["is_running", "describe"])
def test_a_manager_whose_questions_raise_still_heals(tmp_path, broken) -> None:
    healer = Healer(failing=lambda _s: {"guard"}, wake=lambda _s: [], watch=True)
    spec = ServiceSpec(manager="raising", name="svc", make_manager=raising(tmp_path, broken))
    healer.install({"svc": spec}, {}, tmp_path)
    assert healer.heal("svc", "test").ok
    if broken == "describe":
        assert "describe() raised RuntimeError" in healer.snapshot()["svc"]["describe"]


@pytest.mark.parametrize("broken", ["watch", "unwatch"])
def test_a_watch_that_raises_is_said_and_the_service_is_polled(tmp_path, broken) -> None:
    healer = Healer(failing=lambda _s: (), wake=lambda _s: [], watch=True)
    spec = ServiceSpec(manager="raising", name="svc", make_manager=raising(tmp_path, broken))
    with capture_logs() as logs:
        healer.install({"svc": spec}, {}, tmp_path)
        healer.install({"svc": spec}, {}, tmp_path)  # a reload
        healer.close()
    errors = [e for e in logs if e["event"] == "watch.error"]
    assert errors and f"{broken}() raised RuntimeError" in errors[0]["error"], logs
    assert healer.services["svc"].watching is (broken != "watch")


def test_a_reload_during_a_heal_keeps_what_the_heal_found(tmp_path) -> None:
    started, release = threading.Event(), threading.Event()

    class Slow(Fake):
        def restart(self) -> Action:
            started.set()
            release.wait(5)
            return Action(["restart"], 1, "cannot start")

    spec = ServiceSpec(manager="slow", name="svc", backoff=Duration(30),
                       make_manager=functools.partial(Slow, "svc"))
    healer = Healer(failing=lambda _s: {"guard"}, wake=lambda _s: ["guard"])
    healer.install({"svc": spec}, {}, tmp_path)
    heal = threading.Thread(target=healer.heal, args=("svc", "test"))
    heal.start()
    assert started.wait(5)
    healer.install({"svc": ServiceSpec(manager="slow", name="svc", backoff=Duration(30),
                                       make_manager=functools.partial(Slow, "svc"))},
                   {}, tmp_path)
    release.set()
    heal.join(5)
    live = healer.services["svc"]
    assert live.last is not None and live.last["outcome"] == "heal.failed"
    assert live.state is HealState.BACKING_OFF and live.heals["failed"] == 1


class Slow(Fake):
    """Takes half a second to restart: a verb that waits for its service."""

    def restart(self) -> Action:
        time.sleep(0.5)
        return super().restart()


def test_a_verbs_own_time_counts_against_start_timeout(tmp_path) -> None:
    # What the guide says to authors: start_timeout runs from the heal's start, the
    # verb's run included; a guard that never passes fails the heal at once after it.
    healer = Healer(failing=lambda _s: {"guard"}, wake=lambda _s: ["guard"])
    healer.install({"db": ServiceSpec(manager="slow", name="db",
                                      make_manager=functools.partial(Slow, "db"),
                                      start_timeout=Duration(0.3))}, {}, tmp_path)
    outcome = healer.heal("db", "a test")
    assert not outcome.ok and outcome.fields["elapsed_s"] >= 0.5
    assert "within 0.3s (start_timeout)" in outcome.fields["reason"]
