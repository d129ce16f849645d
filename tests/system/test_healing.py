"""The healing policy, through a service manager from a third-party plugin (the
``flag`` manager of tests/fixtures), in a real daemon."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import pytest

from tests.helpers import FIXTURES, event_time, run_vigil, wait_until
from vigil import Action, ServiceManager
from vigil._config import loader as config
from vigil._heal.healer import Healer
from vigil._heal.healstate import HealOutcome
from vigil._store.records import Verdict


@pytest.fixture(autouse=True)
def _fixture_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", FIXTURES)


def flagged(write_config, tmp_path: Path, service: str = "", check: str = "",
            interval: str = "400ms") -> Path:
    flag = tmp_path / "flag"
    flag.write_text("CRIT")
    return write_config(f"""
        [daemon]
        state_dir = "state"
        plugins = ["misbehaving"]
        [services.svc]
        manager = "flag"
        status_file = "{flag}"
        start_timeout = "3s"
        {service}
        [checks.guard]
        type = "fixed"
        status_file = "{flag}"
        service = "svc"
        interval = "{interval}"
        fall = 2
        {check}
    """)


def test_a_failing_check_heals_its_service_with_fast_confirmation(write_config, daemon,
                                                                  tmp_path) -> None:
    # A 2s interval and its 0.5s fast one: the second failure comes far sooner than the
    # check's own rhythm allows, however busy the host.
    d = daemon(flagged(write_config, tmp_path, interval="2s")).start()
    succeeded = d.wait_for("heal.succeeded", service="svc")[0]
    assert succeeded["manager"] == "flag" and succeeded["action"] == "restart"
    results = d.events("check.result", check="guard")
    failures = [r for r in results if r["status"] == "CRIT"]
    gap = (event_time(failures[1]) - event_time(failures[0]))
    assert gap < 1.5, f"the 2nd failure came {gap:.2f}s later: no fast confirmation"
    d.wait_for("check.state_changed", check="guard", to="OK", **{"from": "FAILING"})
    assert (tmp_path / "flag.heals").read_text() == "restart\n"


def test_unhealable_results_and_report_only_services_are_never_healed(write_config, daemon,
                                                                       tmp_path) -> None:
    d = daemon(flagged(write_config, tmp_path, check="healable = false")).start()
    skipped = d.wait_for("heal.skipped", service="svc")[0]
    assert skipped["reason"] == "a restart would not help: told to be CRIT"
    d.wait_for("check.result", count=8, check="guard")
    assert not d.events("heal.started") and len(d.events("heal.skipped")) == 1
    d.stop()

    passive = tmp_path / "passive"
    passive.mkdir()
    d = daemon(flagged(write_config, passive, service="heal = false")).start()
    skipped = d.wait_for("heal.skipped", service="svc")[0]
    assert skipped["reason"] == "report-only service (heal = false)"
    d.wait_for("check.result", count=8, check="guard")
    assert not d.events("heal.started")


def test_vigil_heal_without_a_daemon_heals_directly(write_config, tmp_path) -> None:
    path = flagged(write_config, tmp_path)
    done = run_vigil("heal", "svc", "-c", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no daemon runs" in done.stderr
    assert "heal.succeeded svc" in done.stdout
    status = run_vigil("status", "--json", "-c", str(path))
    assert '"heal.succeeded"' in status.stdout
    text = run_vigil("status", "-c", str(path)).stdout
    row = next(line for line in text.splitlines() if line.startswith("svc "))
    assert row.split() == ["svc", "Flag", "svc", "1", "of", "3", "-", "no", "(polled)", "-",
                           "succeeded"]
    unknown = run_vigil("heal", "nope", "-c", str(path))
    assert unknown.returncode == 2 and "no service named 'nope'" in unknown.stderr


class Slow(ServiceManager):
    def __init__(self) -> None:
        super().__init__("slow", None, timeout=1.0)
        self.calls = 0
        self.entered = threading.Event()
        self.release = threading.Event()

    def restart(self) -> Action:
        self.calls += 1
        self.entered.set()
        self.release.wait(5)
        return Action(["restart"], 0, "")

    start = restart

    def is_running(self) -> bool | None:
        return True


def test_never_two_heals_of_one_service_at_once(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text('[services.slow]\nmanager = "command"\nstart = ["true"]\n'
                                     'start_timeout = "1s"\n')
    cfg = config.load(str(tmp_path / "c.toml"))
    slow = Slow()
    cfg.services["slow"].make_manager = lambda: slow
    healer = Healer(failing=lambda _s: (), wake=lambda _s: [])
    healer.install(cfg.services, {}, tmp_path)
    first: list[HealOutcome] = []
    worker = threading.Thread(target=lambda: first.append(healer.heal("slow", "test")))
    worker.start()
    assert slow.entered.wait(5)
    second = healer.heal("slow", "test again")
    assert second.verdict is Verdict.BUSY
    slow.release.set()
    worker.join()
    assert first[0].ok and slow.calls == 1
    # Growing backoff (the default base is 5s): 5s after the first heal, 10s after the 2nd.
    rt = healer.services["slow"]
    assert 4.5 < rt.not_before - time.time() <= 5
    healer.heal("slow", "again")
    assert 9.5 < rt.not_before - time.time() <= 10


def test_separate_incidents_heal_at_once_while_a_crash_loop_backs_off(write_config, daemon,
                                                                     tmp_path) -> None:
    flag, never = tmp_path / "flag", tmp_path / "never"
    flag.write_text("CRIT")
    never.write_text("CRIT")  # the loop's check reads this; its heals write elsewhere
    d = daemon(write_config(f"""
        [daemon]
        state_dir = "state"
        plugins = ["misbehaving"]
        [services.svc]
        manager = "flag"
        status_file = "{flag}"
        restarts = 20
        backoff = "3s"
        backoff_reset = "500ms"
        [services.loop]
        manager = "flag"
        status_file = "{tmp_path / 'elsewhere'}"
        start_timeout = "300ms"
        restarts = 3
        within = "1h"
        backoff = "500ms"
        [checks.guard]
        type = "fixed"
        status_file = "{flag}"
        service = "svc"
        interval = "200ms"
        fall = 2
        [checks.crashing]
        type = "fixed"
        status_file = "{never}"
        service = "loop"
        interval = "200ms"
        fall = 2
    """)).start()
    healed = d.wait_for("heal.succeeded", service="svc")[0]
    # Healthy for twice backoff_reset, as its passing runs show: that heal held.
    wait_until(lambda: any(event_time(r) - event_time(healed) >= 1.0 for r in
                           d.events("check.result", check="guard", status="OK")), 10,
               "a second of passing runs after the heal")
    flag.write_text("CRIT")
    failing = d.wait_for("check.state_changed", count=2, check="guard", to="FAILING")[1]
    started = d.wait_for("heal.started", count=2, service="svc")[1]
    delay = event_time(started) - event_time(failing)
    assert delay < 1.0, f"the 2nd incident waited {delay:.2f}s: the 3s backoff still held"

    d.wait_for("heal.gave_up", service="loop", timeout=20)
    starts = [event_time(e) for e in d.events("heal.started", service="loop")]
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    # Waits of 0.5s, then 1s: the second gap is half a second longer.
    assert len(starts) == 3 and gaps[1] > gaps[0] + 0.3, f"no growing backoff: {gaps}"
    # Five more failing runs, each of which the healer judges before the next begins:
    # given up once, not once per run.
    runs = len(d.events("check.result", check="crashing"))
    d.wait_for("check.result", count=runs + 5, check="crashing")
    assert len(d.events("heal.gave_up", service="loop")) == 1
    assert len(d.events("heal.started", service="loop")) == 3


@pytest.mark.parametrize("passing", [1, 2])
def test_a_guard_that_passes_never_ends_a_crash_loops_budget(write_config, daemon, tmp_path,
                                                             passing: int) -> None:
    # The check that asked for the heal never passes; the service's other checks always
    # do. Their passes neither make a heal succeed nor resume a given-up service.
    never, fine = tmp_path / "never", tmp_path / "fine"
    never.write_text("CRIT")
    fine.write_text("OK")
    guards = "".join(f"""
        [checks.fine{n}]
        type = "fixed"
        status_file = "{fine}"
        service = "svc"
        interval = "200ms"
    """ for n in range(passing))
    d = daemon(write_config(f"""
        [daemon]
        state_dir = "state"
        plugins = ["misbehaving"]
        [services.svc]
        manager = "flag"
        status_file = "{tmp_path / 'elsewhere'}"
        start_timeout = "500ms"
        restarts = 3
        within = "10m"
        backoff = "100ms"
        [checks.broken]
        type = "fixed"
        status_file = "{never}"
        service = "svc"
        interval = "200ms"
        fall = 2
        {guards}
    """)).start()
    gave_up = d.wait_for("heal.gave_up", service="svc", timeout=30)[0]
    assert gave_up["check"] == "broken"
    # Ten more failures of the broken check: as many passes of the others, each of which
    # once resumed the service with a fresh budget.
    seen = len(d.events("check.result", check="broken"))
    d.wait_for("check.result", count=seen + 10, check="broken")
    assert len(d.events("heal.started", service="svc")) == 3
    failed = d.events("heal.failed", service="svc")
    assert len(failed) == 3 and not d.events("heal.succeeded")
    assert all(f["reason"].startswith("check broken of svc did not pass within 0.5s")
               for f in failed), failed
    assert len(d.events("heal.gave_up")) == 1 and not d.events("heal.resumed")

    never.write_text("OK")  # now every guard passes: healthy, so healing resumes
    resumed = d.wait_for("heal.resumed", service="svc")[0]
    assert resumed["reason"].endswith("and every check of svc with it")


def test_budget_and_given_up_mark_survive_a_daemon_restart(write_config, daemon,
                                                            tmp_path) -> None:
    never = tmp_path / "never"  # the check reads this; healing writes elsewhere
    never.write_text("CRIT")
    config = write_config(f"""
        [daemon]
        state_dir = "state"
        plugins = ["misbehaving"]
        [services.svc]
        manager = "flag"
        status_file = "{tmp_path / 'elsewhere'}"
        start_timeout = "500ms"
        restarts = 2
        within = "1h"
        backoff = "100ms"
        [checks.guard]
        type = "fixed"
        status_file = "{never}"
        service = "svc"
        interval = "300ms"
        fall = 2
    """)
    d = daemon(config).start()
    d.wait_for("heal.gave_up", service="svc", timeout=20)
    assert len(d.events("heal.failed", service="svc")) == 2
    assert d.stop() == 0
    again = daemon(config).start()
    again.wait_for("check.result", count=6, check="guard")
    assert not again.events("heal.started") and not again.events("heal.gave_up")
    status = run_vigil("status", "-c", str(config))
    row = next(line for line in status.stdout.splitlines() if line.startswith("svc "))
    assert "GAVE UP" in row and " 2 " in row
