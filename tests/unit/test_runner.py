"""The runner in-process: workers are reused from run to run, a hung check costs one
abandoned worker and gets it back when it ends, and whatever a check does becomes a
Result."""

from __future__ import annotations

import threading

import pytest

from tests.helpers import wait_until
from vigil import Check, Result, Status
from vigil._engine.runner import Runner


class Probe(Check):
    """Passes, raises, returns junk, or blocks until released, as ``behaviour`` says."""

    type = "probe"

    def __init__(self, name: str, behaviour: str = "pass") -> None:
        super().__init__(name, {})
        self.behaviour = behaviour
        self.release = threading.Event()
        self.threads: set[str] = set()

    def run(self) -> Result:
        self.threads.add(threading.current_thread().name)
        if self.behaviour == "raise":
            raise RuntimeError("boom\nsecond line")
        if self.behaviour == "junk":
            return "not a result"  # type: ignore[return-value]
        if self.behaviour == "block":
            self.release.wait(30)
        return Result(Status.OK, "fine")


def workers() -> int:
    """Worker threads alive, of every runner (compare before and after)."""
    return sum(t.name.startswith("check-worker-") for t in threading.enumerate())


def test_runs_reuse_one_worker_instead_of_a_thread_each() -> None:
    runner, check = Runner(), Probe("a")
    before = workers()
    for _ in range(50):
        assert runner.run(check, 5).result.status is Status.OK
    assert len(check.threads) == 1, check.threads
    assert workers() == before + 1


def test_a_hung_check_costs_one_worker_and_returns_it_when_it_ends() -> None:
    runner, stuck, fine = Runner(), Probe("stuck", "block"), Probe("fine")
    before = workers()
    first = runner.run(stuck, 0.1)
    assert (first.kind, first.result.summary) == ("timeout", "timed out after 0.1s")
    assert runner.hung() == ["stuck"]
    for _ in range(5):
        again = runner.run(stuck, 0.1)
        assert again.kind == "timeout"
        assert again.result.summary.startswith("previous run still hangs after ")
        assert runner.run(fine, 5).result.status is Status.OK
    # The hung run holds one worker; the other check got a second one, reused.
    assert workers() == before + 2
    assert len(fine.threads) == 1 and fine.threads != stuck.threads

    stuck.release.set()
    stuck.behaviour = "pass"
    wait_until(lambda: not runner.hung(), 5, "the hung run to end")
    assert runner.run(stuck, 5).kind == "ok"
    # The worker that hung came back to the pool: two checks at once need no third.
    slow = Probe("slow", "block")
    threading.Timer(0.2, slow.release.set).start()
    both = [threading.Thread(target=runner.run, args=(slow, 5)),
            threading.Thread(target=runner.run, args=(Probe("b"), 5))]
    for thread in both:
        thread.start()
    for thread in both:
        thread.join()
    assert runner.hung() == []
    assert workers() == before + 2


@pytest.mark.parametrize(("behaviour", "summary"), [
    ("raise", "check raised RuntimeError: boom"),
    ("junk", "run() returned str, not a Result"),
])
def test_a_check_that_misbehaves_is_unknown_with_the_reason(behaviour: str,
                                                            summary: str) -> None:
    outcome = Runner().run(Probe("bad", behaviour), 5)
    assert (outcome.kind, outcome.result.status, outcome.result.summary) == (
        "error", Status.UNKNOWN, summary)


def test_each_outcome_is_reported_once_and_an_overlapping_run_is_refused() -> None:
    runner, slow = Runner(), Probe("slow", "block")
    outcomes: list[str] = []
    assert runner.submit(slow, 0.2, lambda o: outcomes.append(o.kind))
    # The run is still within its timeout: a second one is refused (the caller counts
    # it as skipped), not queued behind it.
    assert not runner.submit(slow, 0.2, lambda o: outcomes.append("second"))
    wait_until(lambda: outcomes, 5, "the timeout")
    slow.release.set()
    wait_until(lambda: not runner.hung(), 5, "the hung run to end")
    # The run that ended after its timeout was not reported a second time.
    assert outcomes == ["timeout"]


def test_a_burst_grows_the_pool_and_idle_workers_retire_after_it(monkeypatch) -> None:
    from vigil._engine import runner as runner_module

    monkeypatch.setattr(runner_module, "RETIRE_AFTER", 0.2)
    runner = Runner()
    burst = [Probe(f"b{i}", "block") for i in range(6)]
    done = threading.Barrier(len(burst) + 1)

    def finished(_outcome: object) -> None:
        done.wait(5)

    for check in burst:  # all due together, each holding its worker
        assert runner.submit(check, 10, finished)
    wait_until(lambda: runner.workers() == len(burst), 5, "a worker for each blocked run")
    for check in burst:
        check.release.set()
    done.wait(5)
    # Idle for RETIRE_AFTER: the pool shrinks back to the one worker that stays.
    wait_until(lambda: runner.workers() == 1, 5, "idle workers to retire")
    assert runner.run(Probe("after"), 5).result.status is Status.OK, "the one left works"


def test_after_a_burst_a_steady_trickle_keeps_one_worker_busy_and_the_rest_retire(
        monkeypatch) -> None:
    # Were jobs handed round to every idle worker in turn, a check every 20 ms would
    # keep all six waking within RETIRE_AFTER, and the pool would never shrink.
    from vigil._engine import runner as runner_module

    monkeypatch.setattr(runner_module, "RETIRE_AFTER", 0.2)
    runner = Runner()
    burst = [Probe(f"b{i}", "block") for i in range(6)]
    for check in burst:
        assert runner.submit(check, 10, lambda _outcome: None)
    wait_until(lambda: runner.workers() == len(burst), 5, "a worker for each blocked run")
    for check in burst:
        check.release.set()
    wait_until(lambda: not runner.hung(), 5, "the burst to end")
    trickle = Probe("trickle")
    stop = threading.Event()

    def submit_steadily() -> None:
        while not stop.wait(0.02):
            runner.submit(trickle, 5, lambda _outcome: None)

    feeder = threading.Thread(target=submit_steadily)
    feeder.start()
    try:
        wait_until(lambda: runner.workers() == 1, 5, "idle workers to retire mid-trickle")
    finally:
        stop.set()
        feeder.join()


def test_a_run_under_way_at_a_stop_is_no_hang_if_it_ends_within_the_grace() -> None:
    runner, stuck, busy = Runner(), Probe("stuck", "block"), Probe("busy", "block")
    runner.run(stuck, 0.1)  # abandoned at its timeout: hung
    runner.submit(busy, 5, lambda _outcome: None)
    wait_until(lambda: busy.threads, 5, "the busy run to start")
    threading.Timer(0.1, busy.release.set).start()
    # It returns once the busy run has ended: a long grace costs nothing.
    assert runner.hung(grace=10.0) == ["stuck"]
    assert runner.hung() == ["stuck"]
    stuck.release.set()
