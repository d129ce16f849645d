"""Promises of the README that had no test of their own: exit codes, the control socket's
mode, the config lookup order, SIGINT, and a disabled check."""

from __future__ import annotations

import json
import signal
import stat
import subprocess
import sys

import psutil

from tests.helpers import ROOT, readline_within, run_vigil, wait_until


def test_vigil_heal_exits_2_when_it_cannot_heal(write_config, tmp_path) -> None:
    path = write_config(f"""
        [daemon]
        state_dir = "state"
        [services.svc]
        manager = "command"
        start = ["{tmp_path / 'no-such-program'}"]
        start_timeout = "2s"
    """)
    unknown = run_vigil("heal", "nope", "-c", str(path))
    assert unknown.returncode == 2 and "no service named 'nope' (known: svc)" in unknown.stderr
    failed = run_vigil("heal", "svc", "-c", str(path))
    assert failed.returncode == 2 and "heal of svc did not succeed" in failed.stderr
    assert "Traceback" not in failed.stderr


def test_vigil_check_on_an_invalid_config_is_unknown(write_config) -> None:
    path = write_config('[checks.s]\ntype = "system"\nfall = 0\n')
    done = run_vigil("check", "s", "-c", str(path))
    assert done.returncode == 3
    assert done.stdout.startswith("s UNKNOWN - invalid config: ") and "checks.s.fall" in done.stdout


def test_control_socket_is_only_for_vigils_own_user(write_config, daemon, tmp_path) -> None:
    d = daemon(write_config('[daemon]\nstate_dir = "state"\n[checks.s]\ntype = "system"\n'))
    d.start()
    sock = tmp_path / "state" / "control.sock"
    wait_until(sock.exists, 10, "the control socket")
    assert stat.S_ISSOCK(sock.stat().st_mode) and stat.S_IMODE(sock.stat().st_mode) == 0o600
    assert d.stop() == 0


def test_sigint_stops_the_daemon_like_sigterm(write_config, daemon) -> None:
    d = daemon(write_config('[daemon]\nstate_dir = "state"\n[checks.s]\ntype = "system"\n'))
    d.start()
    d.signal(signal.SIGINT)
    assert d.proc is not None and d.proc.wait(10) == 0
    assert d.events("daemon.stopping")[0]["signal"] == "SIGINT"
    assert d.events("daemon.stopped")


def test_a_disabled_check_never_runs_and_says_so(write_config, daemon, tmp_path) -> None:
    path = write_config("""
        [daemon]
        state_dir = "state"
        [checks.on]
        type = "system"
        interval = "200ms"
        warn_pct = 99.9
        crit_pct = 100
        [checks.off]
        type = "system"
        interval = "200ms"
        enabled = false
    """)
    d = daemon(path).start()
    assert d.events("daemon.started")[0]["checks"] == 1
    d.wait_for("check.result", count=3, check="on")
    assert not d.events("check.result", check="off")
    status = run_vigil("status", "-c", str(path))
    row = next(line for line in status.stdout.splitlines() if line.startswith("off "))
    assert "DISABLED" in row
    assert json.loads(run_vigil("status", "--json", "-c", str(path)).stdout)["checks"]["off"][
        "enabled"] is False
    assert d.stop() == 0


def test_a_killed_test_run_takes_its_private_systemd_with_it(tmp_path) -> None:
    code = ("import time; from tests.private_systemd import PrivateSystemd\n"
            "booted = PrivateSystemd().boot()\nprint(booted.pid, flush=True)\ntime.sleep(120)\n")
    runner = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                              text=True)
    try:
        pid = int(readline_within(runner, 60))
        assert psutil.Process(pid).name() == "systemd"
    finally:
        runner.kill()  # as a CI timeout or an operator's kill -9 would
        runner.wait()
    wait_until(lambda: not psutil.pid_exists(pid), 10, "the private systemd to die with it")


def test_a_bug_behind_a_page_is_a_500_with_http_error_and_no_traceback(
        write_config, daemon, monkeypatch) -> None:
    from tests.helpers import FIXTURES, call, free_port

    monkeypatch.setenv("PYTHONPATH", FIXTURES)
    port = free_port()
    d = daemon(write_config(f"""
        [daemon]
        state_dir = "state"
        http = "127.0.0.1:{port}"
        plugins = ["misbehaving"]
        [checks.odd]
        type = "odd"
        interval = "1s"
    """)).start()
    d.wait_for("check.result", check="odd")
    status, _, body = call(port, "/health")
    assert status == 500 and body == b"internal error; see vigil's log\n"
    error = d.wait_for("http.error")[0]
    assert error["path"] == "/health" and "not JSON serializable" in error["error"]
    assert call(port, "/livez")[0] == 200, "the server goes on"
    assert d.stop() == 0  # the fixture then finds no traceback in any output


def test_daemon_summary_counts_the_states_once_per_period(write_config) -> None:
    from structlog.testing import capture_logs

    from vigil._agent.agent import SUMMARY_EVERY, Agent
    from vigil._config import loader as config

    path = write_config("""
        [daemon]
        state_dir = "state"
        http = ""
        [checks.a]
        type = "system"
        [checks.b]
        type = "tcp"
        port = 1
    """)
    agent = Agent(config.load(str(path)), str(path))
    agent.checks.install(agent.config, {})
    agent._summarised -= SUMMARY_EVERY  # the period has passed
    with capture_logs() as logs:
        agent._log_summary()
        agent._log_summary()  # within the same period: nothing
    assert [e["event"] for e in logs] == ["daemon.summary"]
    assert logs[0]["checks"] == 2 and logs[0]["states"] == {"PENDING": 2}
    assert logs[0]["runs"] == 0 and logs[0]["failing"] == []
    agent.store.close()
