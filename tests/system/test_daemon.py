"""``vigil run`` as a real process: signals, reloads, misbehaving plugins, state."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import signal
import socket
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.helpers import (
    FIXTURES,
    KILLED_CONFIG,
    answers,
    event_time,
    free_port,
    kill_and_restart,
    need_program,
    run_in_terminal,
    run_vigil,
    saved_state,
    vigil_command,
    wait_until,
)


@pytest.fixture(autouse=True)
def _fixture_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", FIXTURES)


@pytest.fixture
def with_fixtures(write_config):
    """A config file that loads the misbehaving test plugins."""
    return lambda body: write_config(
        '[daemon]\nstate_dir = "state"\nplugins = ["misbehaving"]\n' + textwrap.dedent(body))


def test_sigterm_stops_cleanly_and_logs_are_json(write_config, daemon, tmp_path) -> None:
    d = daemon(write_config("""
        [daemon]
        state_dir = "state"
        [checks.sys]
        type = "system"
        interval = "1s"
    """)).start()
    result = d.wait_for("check.result", check="sys")[0]
    assert set(result) >= {"timestamp", "level", "event", "check", "status", "summary",
                           "duration_ms"}
    assert list(result)[:3] == ["timestamp", "level", "event"]
    assert result["timestamp"].endswith("Z")
    assert d.stop() == 0
    assert d.events("daemon.stopping")[0]["signal"] == "SIGTERM"
    assert d.events("daemon.stopped")
    for line in d.log.read_text().splitlines():
        json.loads(line)  # every line is one JSON object


def test_log_file_setting_writes_json_lines(write_config, daemon, tmp_path) -> None:
    log_file = tmp_path / "vigil.log"
    d = daemon(write_config(f"""
        [daemon]
        state_dir = "state"
        log_file = "{log_file}"
        [checks.sys]
        type = "system"
        interval = "1s"
    """))
    d.start(wait_started=False)
    wait_until(lambda: log_file.exists() and '"check.result"' in log_file.read_text(), 20,
               "a check result in log_file")
    assert d.stop() == 0
    records = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert {"daemon.started", "check.result", "daemon.stopped"} <= {r["event"] for r in records}
    assert not d.log.exists() or d.log.read_text() == "", "log_file was not the only log"


FIRST = """
    [checks.first]
    type = "fixed"
    interval = "300ms"
"""


def test_sighup_reloads_and_a_broken_config_is_rejected(with_fixtures, daemon) -> None:
    path = with_fixtures(FIRST)
    d = daemon(path).start()
    d.wait_for("check.result", check="first")
    path.write_text(path.read_text() + '[checks.second]\ntype = "fixed"\ninterval = "300ms"\n')
    d.signal(signal.SIGHUP)
    reloaded = d.wait_for("config.reloaded")[0]
    assert reloaded["added"] == ["second"]
    d.wait_for("check.result", check="second")

    good = path.read_text()
    path.write_text(good + '[checks.third]\ntype = "fixed"\ninterval = "never"\n')
    d.signal(signal.SIGHUP)
    rejected = d.wait_for("config.rejected")[0]
    assert any("checks.third.interval" in e for e in rejected["errors"])
    seen = len(d.events("check.result", check="second"))
    d.wait_for("check.result", count=seen + 3, check="second")  # the old config runs on
    assert not d.events("check.result", check="third")
    assert d.stop() == 0


def test_a_reload_that_moves_the_state_folder_asks_for_a_restart(with_fixtures, daemon,
                                                                  tmp_path) -> None:
    path = with_fixtures(FIRST)
    d = daemon(path).start()
    d.wait_for("check.result", check="first")
    path.write_text(path.read_text().replace('"state"', '"elsewhere"'))
    for count in (1, 2):  # it keeps asking until the daemon restarts
        d.signal(signal.SIGHUP)
        d.wait_for("config.reloaded", count=count)
        needed = d.wait_for("config.restart_needed", count=count)[-1]
        assert needed["key"] == "daemon.state_dir"
        assert needed["running"] == str(tmp_path / "state")
        assert needed["wanted"] == str(tmp_path / "elsewhere")
    # Everything else changes with SIGHUP, the log's place included.
    path.write_text(path.read_text().replace('[daemon]', '[daemon]\nlog_file = "moved.log"'))
    d.signal(signal.SIGHUP)
    d.wait_for("config.reloaded", count=3)
    moved = tmp_path / "moved.log"
    wait_until(lambda: moved.exists() and '"check.result"' in moved.read_text(), 10,
               "results in the moved log")
    assert d.stop() == 0
    assert '"daemon.stopped"' in moved.read_text()
    assert saved_state(tmp_path / "state")["checks"]["first"]["last"]
    assert not (tmp_path / "elsewhere").exists()


def test_sigusr1_runs_every_check_now(with_fixtures, daemon) -> None:
    d = daemon(with_fixtures("""
        [checks.slow]
        type = "fixed"
        interval = "1h"
    """)).start()
    d.wait_for("check.result", check="slow")
    d.signal(signal.SIGUSR1)
    assert d.wait_for("daemon.run_all")[0]["checks"] == 1
    d.wait_for("check.result", count=2, check="slow", timeout=5)
    d.signal(signal.SIGUSR1)
    d.wait_for("check.result", count=3, check="slow", timeout=5)


def test_hung_and_raising_plugins_never_delay_a_healthy_check(with_fixtures, daemon) -> None:
    d = daemon(with_fixtures("""
        [checks.healthy]
        type = "fixed"
        interval = "200ms"
        [checks.hang]
        type = "hang"
        interval = "300ms"
        timeout = "250ms"
        [checks.boom]
        type = "boom"
        interval = "200ms"
        [checks.observer_breaker]
        type = "fixed"
        interval = "200ms"
    """)).start()
    # Counts are awaited rather than slept for, so a slow start on a busy CI host cannot fail it.
    # Five timed-out runs; the first of the row is the warning, the rest are debug.
    d.wait_for("check.result", count=5, check="hang", status="UNKNOWN", timeout=10)
    assert len(d.events("check.timeout", check="hang")) == 1
    healthy = d.wait_for("check.result", count=12, check="healthy", timeout=10)
    times = [event_time(r) for r in healthy]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # A check held up by the hanging one would stop for good: any finite bound shows it;
    # this one leaves a loaded host room (five of its intervals).
    assert max(gaps) < 1.0, f"healthy check was delayed: gaps {gaps}"
    assert all(r["status"] == "OK" for r in healthy)

    hang_results = d.events("check.result", check="hang")
    assert {r["status"] for r in hang_results} == {"UNKNOWN"}
    assert d.events("check.state_changed", check="hang", to="FAILING")

    errors = d.events("check.error", check="boom")
    assert errors and errors[0]["error"] == "RuntimeError: boom"
    d.wait_for("plugin.error", count=3, hook="vigil_check_result", timeout=5)
    d.wait_for("check.result", count=10, check="observer_breaker", timeout=5)

    start = time.monotonic()
    assert d.stop(timeout=5) == 0, "SIGTERM must stop the daemon even while a check hangs"
    # "Within about a second" (README), with room for a loaded host.
    assert time.monotonic() - start < 4
    assert d.events("daemon.stopped")[0]["hung_checks"] == ["hang"]


def test_skipped_and_missed_runs_are_logged_counted_and_library_logs_are_json(
        with_fixtures, daemon, tmp_path) -> None:
    sleep = tmp_path / "sleep"
    sleep.write_text("0.7")
    d = daemon(with_fixtures(f"""
        [checks.slow]
        type = "fixed"
        interval = "200ms"
        timeout = "5s"
        sleep_file = "{sleep}"
        [checks.steady]
        type = "fixed"
        interval = "2s"
        say = "a library speaks"
    """)).start()
    # Runs of 0.7s at a 200ms interval: each due run waits for the one before, and the
    # streak is one check.skipped, with its count, once the runs are quick again.
    d.wait_for("check.result", count=4, check="slow")
    assert not d.events("check.skipped")
    sleep.write_text("0")
    skipped = d.wait_for("check.skipped", check="slow")[0]
    assert skipped["skipped"] >= 3 and skipped["total"] == skipped["skipped"]

    # A frozen host (a suspended laptop, a stalled VM) makes the due run late by more than
    # its grace of half the interval (at least 1s): it is counted, not silently dropped.
    # Freeze right after a fresh run, so that only the next due run falls in the freeze.
    seen = len(d.events("check.result", check="steady")) + 1
    d.wait_for("check.result", count=seen, check="steady", timeout=5)
    d.signal(signal.SIGSTOP)
    time.sleep(3.2)
    d.signal(signal.SIGCONT)
    missed = d.wait_for("check.missed", check="steady", timeout=5)[0]
    assert missed["missed"] == 1 and missed["reason"] == "ran too late"
    assert 1 < missed["late_s"] < 4  # frozen 3.2 s, due somewhere in it
    # A library's own stdlib logging comes through the same JSON stream, named.
    foreign = d.events("a library speaks", logger="thirdparty.lib")
    assert foreign and all(r["level"] == "warning" and "timestamp" in r for r in foreign)
    d.wait_for("check.result", count=seen + 1, check="steady", timeout=5)  # and it runs on
    d.stop()
    counts = saved_state(d.config.parent / "state")["checks"]
    assert counts["slow"]["counts"]["skipped"] >= 2
    assert counts["steady"]["counts"]["missed"] == 1


def test_a_run_asked_for_during_a_quick_run_follows_it_at_once(with_fixtures, daemon,
                                                               tmp_path) -> None:
    # A heal's wake, SIGUSR1 or `vigil wait` asking for a run while a run shorter than the
    # interval is under way: no overrun, so no check.skipped; the run comes right after.
    runs = tmp_path / "runs"
    d = daemon(with_fixtures(f"""
        [checks.quick]
        type = "fixed"
        interval = "1h"
        sleep_s = 1.0
        runs_file = "{runs}"
    """)).start()
    d.wait_for("check.result", check="quick")
    d.signal(signal.SIGUSR1)
    wait_until(lambda: runs.read_text().count("run") == 2, 10, "the run SIGUSR1 asked for")
    d.signal(signal.SIGUSR1)  # while that run sleeps
    wait_until(lambda: runs.read_text().count("run") == 3, 10,
               "a run right after the one under way (not an interval later)")
    d.wait_for("daemon.run_all", count=2)
    d.signal(signal.SIGUSR1)  # a sentinel: the third run has ended, its successor begins
    wait_until(lambda: runs.read_text().count("run") == 4, 10, "the sentinel's run")
    assert not d.events("check.skipped")


def test_state_transitions_status_and_restart_continuity(write_config, daemon, tmp_path,
                                                          monkeypatch) -> None:
    flag = tmp_path / "status"
    transitions = tmp_path / "transitions"
    monkeypatch.setenv("VIGIL_TEST_TRANSITIONS", str(transitions))
    path = write_config(f"""
        [daemon]
        state_dir = "state"
        plugins = ["misbehaving"]
        [checks.flip]
        type = "fixed"
        interval = "100ms"
        fall = 2
        rise = 3
        status_file = "{flag}"
    """)
    d = daemon(path).start()
    d.wait_for("check.state_changed", check="flip", to="OK")
    flag.write_text("CRIT")
    change = d.wait_for("check.state_changed", check="flip", to="FAILING")[0]
    assert change["from"] == "OK" and change["status"] == "CRIT"
    def saved_failing() -> bool:  # the main loop saves state twice a second
        data = json.loads(run_vigil("status", "--json", "-c", str(path)).stdout)
        return data["checks"]["flip"]["state"] == "FAILING"

    wait_until(saved_failing, 10, "FAILING in the saved state")
    status = run_vigil("status", "-c", str(path))
    assert status.returncode == 0, status.stdout + status.stderr
    assert "vigil is running" in status.stdout
    row = next(line for line in status.stdout.splitlines() if line.startswith("flip"))
    assert "FAILING" in row and "CRIT" in row and "told to be CRIT" in row
    data = json.loads(run_vigil("status", "--json", "-c", str(path)).stdout)
    assert data["running"] is True and data["checks"]["flip"]["state"] == "FAILING"
    assert d.stop() == 0
    # The vigil_state_changed hook saw the same transitions as the log.
    assert transitions.read_text().splitlines() == ["flip PENDING OK OK", "flip OK FAILING CRIT"]

    stopped = run_vigil("status", "-c", str(path))
    assert stopped.returncode == 3 and "not running" in stopped.stdout
    # A restarted daemon continues: still FAILING, so one pass does not make it OK.
    flag.write_text("OK")
    d2 = daemon(path).start()
    first = d2.wait_for("check.result", check="flip")[0]
    assert first["state"] == "FAILING"
    d2.wait_for("check.state_changed", check="flip", to="OK")
    assert d2.events("check.state_changed", check="flip")[0]["from"] == "FAILING"
    assert d2.stop() == 0


def test_sigkills_at_random_moments_keep_every_failing_state(write_config, daemon) -> None:
    # Issue 11's bar is 40 kills (tests/benchmarks/kills.py); a dozen here keep the suite
    # short and still land in every part of the writer's one-second cycle.
    path = write_config(KILLED_CONFIG)
    report = kill_and_restart(path, daemon, kills=12, rng=random.Random(11))
    assert report.failing_after_each == [30] * 12, report
    assert report.runs == sorted(report.runs) and report.runs[-1] > report.runs[0], report
    assert not report.unreadable, report
    d = daemon(path).start()
    assert d.stop() == 0
    assert sorted(p.name for p in (path.parent / "state").iterdir()) == ["state.db"]


@pytest.mark.parametrize("name", ["state.db", "state.json"])
def test_unreadable_state_is_set_aside_not_lost(write_config, daemon, name: str) -> None:
    path = write_config('[daemon]\nstate_dir = "state"\n[checks.s]\ntype = "system"\n'
                        'cpu = false\n')
    state_dir = path.parent / "state"
    state_dir.mkdir()
    (state_dir / name).write_text("{ torn" * 1000)
    d = daemon(path).start()
    event = d.events("state.unreadable")[0]
    assert Path(event["moved_to"]).read_text() == "{ torn" * 1000
    d.wait_for("check.result", check="s")
    assert d.stop() == 0
    last = saved_state(state_dir)["checks"]["s"]["last"]
    assert last is not None and last["status"] == "OK"


def test_a_full_state_disk_is_logged_and_the_checks_run_on(with_fixtures, daemon,
                                                           tmp_path) -> None:
    """A 64 KiB tmpfs as the state folder, mounted in a mount namespace of the daemon's
    own (nothing to clean up on the host, whatever happens)."""
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    mount = need_program("unshare", "util-linux")
    prefix = [mount, "--mount", "--propagation", "private", "--fork", "sh", "-c",
              'mount -t tmpfs -o size=64k vigil-test "$0" && exec "$@"', str(state_dir)]
    d = daemon(with_fixtures(FIRST + "".join(
        f'[checks.fill{i}]\ntype = "fixed"\ninterval = "50ms"\n' for i in range(20))),
        prefix).start()
    failed = d.wait_for("state.write_failed", timeout=30)[0]
    assert failed["path"] == str(state_dir / "state.db")
    assert "full" in failed["error"], failed
    seen = len(d.events("check.result", check="first"))
    d.wait_for("check.result", count=seen + 2, check="first")  # the checks carry on
    assert d.stop() == 0
    assert not os.listdir(state_dir), "the tmpfs was the daemon's alone"


def test_without_a_control_socket_the_daemon_runs_and_vigil_heal_says_why_it_waits(
        write_config, daemon, tmp_path) -> None:
    # A UNIX socket path is limited to 107 bytes; this state folder is longer.
    port = free_port()
    path = write_config(f"""
        [daemon]
        state_dir = "state-{'x' * 100}"
        [services.svc]
        manager = "command"
        start = ["{sys.executable}", "-m", "http.server", "{port}", "--bind", "127.0.0.1"]
        heal = false                 # only the operator heals it here
        [checks.s]
        type = "tcp"
        port = {port}
        service = "svc"
        interval = "300ms"
    """)
    d = daemon(path).start()
    unavailable = d.wait_for("control.unavailable")[0]
    assert "shorten state_dir" in unavailable["hint"]
    d.wait_for("check.result", count=2, check="s", status="CRIT")
    try:
        # Never a second healer beside the running daemon: it says why, and waits.
        done = run_vigil("heal", "svc", "-c", str(path))
        assert done.returncode == 2, done.stderr
        assert f"a daemon runs this config (PID {d.pid})" in done.stderr
        assert "AF_UNIX path too long" in done.stderr and "Traceback" not in done.stderr
        assert not answers(port) and not d.events("heal.started")
        # Once it is gone, `vigil heal` heals directly.
        assert d.stop() == 0
        done = run_vigil("heal", "svc", "-c", str(path))
        assert done.returncode == 0, done.stderr
        assert "healing svc directly" in done.stderr
        assert "heal.succeeded svc start check passes after" in done.stdout
        assert answers(port)
    finally:
        for found in psutil.process_iter(["cmdline"]):
            if str(port) in (found.info["cmdline"] or []) and "http.server" in (
                    found.info["cmdline"] or []):
                found.kill()


def test_bad_config_at_start_exits_1_without_traceback(write_config) -> None:
    path = write_config('[checks.s]\ntype = "system"\nfall = 0\n')
    done = run_vigil("run", "-c", str(path), timeout=20)
    assert done.returncode == 1
    assert "checks.s.fall" in done.stderr and "Traceback" not in done.stderr
    assert os.path.exists(path)


def test_a_terminal_gets_readable_lines_instead_of_json(write_config) -> None:
    path = write_config('[daemon]\nstate_dir = "state"\n[checks.sys]\ntype = "system"\n'
                        'interval = "1s"\n')
    _code, text = run_in_terminal([*vigil_command(), "run", "-c", str(path)], 20,
                                  until="check.result")
    line = next(line for line in text.splitlines() if "check.result" in line)
    assert not line.lstrip().startswith("{"), line
    assert "sys" in line and "status" in line


def test_a_plugin_that_fails_to_load_is_logged_as_json_and_the_daemon_runs(with_fixtures,
                                                                           daemon) -> None:
    path = with_fixtures("""
        [checks.ok]
        type = "fixed"
        interval = "300ms"
    """)
    path.write_text(path.read_text().replace('plugins = ["misbehaving"]',
                                             'plugins = ["misbehaving", "no_such_plugin_x"]'))
    d = daemon(path).start()
    failed = d.events("plugin.failed", plugin="no_such_plugin_x")
    assert failed and failed[0]["error"].startswith("ModuleNotFoundError")
    d.wait_for("check.result", count=3, check="ok")
    assert d.stop() == 0


def test_a_reload_during_fast_confirmation_returns_to_the_normal_interval(with_fixtures,
                                                                          daemon,
                                                                          tmp_path) -> None:
    flag = tmp_path / "status"
    flag.write_text("CRIT")
    d = daemon(with_fixtures(f"""
        [checks.flip]
        type = "fixed"
        interval = "1s"
        fast_interval = "200ms"
        fall = 50
        status_file = "{flag}"
    """)).start()
    d.wait_for("check.result", count=3, check="flip", status="CRIT")  # running fast now
    d.signal(signal.SIGHUP)
    d.wait_for("config.reloaded")
    flag.write_text("OK")
    passes = d.wait_for("check.result", count=4, check="flip", status="OK", timeout=10)
    gaps = [b - a for a, b in itertools.pairwise(event_time(r) for r in passes)]
    assert min(gaps[-2:]) > 0.8, f"still at the fast interval after passing: {gaps}"
    assert d.stop() == 0


@pytest.fixture
def mute_listener() -> Iterator[int]:
    """A loopback port that accepts connections and never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                held.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in [*held, server]:
        conn.close()


def test_a_check_that_hangs_to_its_timeout_at_a_fast_interval_stays_quiet(
        write_config, daemon, mute_listener: int) -> None:
    # Each run lasts its whole 1s timeout while the fast interval (250ms) comes due four
    # times: news is a warning (the first timeout, the first failure, the state change),
    # repeats are not, and nothing is said once per tick.
    d = daemon(write_config(f"""
        [daemon]
        state_dir = "state"
        log_results = "changes"
        [checks.mute]
        type = "http"
        url = "http://127.0.0.1:{mute_listener}/"
        interval = "1s"
        timeout = "1s"
        fall = 100
    """)).start()
    time.sleep(10)
    events = d.events()
    runs = [e for e in events if e["event"] == "check.result"]
    assert len(runs) >= 6, f"only {len(runs)} runs in 10s"
    assert all(r["status"] != "OK" for r in runs)
    loud = [e for e in events if e["level"] in ("warning", "error", "critical")]
    # Said once per tick would be some 40 lines. On a loaded host the check's own socket
    # timeout (CRIT) sometimes beats vigil's (UNKNOWN): each switch is news, so a few more.
    assert len(loud) < 10, [(e["event"], e.get("summary")) for e in loud]
    assert not [e for e in events if "maximum number of running instances" in e["event"]]
