"""`vigil deploy` beside a running daemon: the services under maintenance while the
command runs (the daemon holds its heals back), the gate after it, a rollback when the
command fails or the service is not healthy in time (said healthy only when it is),
`deploy.failed` without one, the command's output streamed as it comes, and a line of
the service's history either way."""

from __future__ import annotations

import json
import os
import shlex
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import FIXTURES, Daemon, readline_within, run_vigil, vigil_command

#: The deploy command of the healthy deploy: the release goes down while it is switched
#: (its check fails), and the command waits until the daemon has held back the heal
#: that failure asks for, then says what the daemon showed meanwhile, and comes up.
SWITCH = """
import json, pathlib, subprocess, sys, time
status, log, seen, config, vigil = sys.argv[1:6]
pathlib.Path(status).write_text("CRIT")
print("switching to the new release", flush=True)
deadline = time.monotonic() + 60
while not any(json.loads(line).get("event") == "heal.skipped"
              for line in pathlib.Path(log).read_text().splitlines()):
    assert time.monotonic() < deadline, "the daemon never held a heal back"
    time.sleep(0.05)
shown = json.loads(subprocess.run([vigil, "status", "--json", "-c", config],
                                  capture_output=True, text=True, timeout=60).stdout)
pathlib.Path(seen).write_text(shown["checks"]["app"]["state"])
pathlib.Path(status).write_text(sys.argv[6] if len(sys.argv) > 6 else "OK")
sys.exit(int(sys.argv[7]) if len(sys.argv) > 7 else 0)
"""


@pytest.fixture
def app(write_config, tmp_path: Path, monkeypatch) -> Path:
    """The service `app`, guarded by the check `app`, which reads the file `status`:
    only the deploy's commands write it. A heal by the daemon writes the file `healed`
    instead (and counts itself in `healed.heals`): it can never make `app` pass."""
    monkeypatch.setenv("PYTHONPATH", FIXTURES)
    (tmp_path / "status").write_text("OK")
    return write_config(f"""
        [daemon]
        state_dir = "state"
        plugins = ["misbehaving"]
        [services.app]
        manager = "flag"
        status_file = "{tmp_path / 'healed'}"
        [checks.app]
        type = "fixed"
        status_file = "{tmp_path / 'status'}"
        service = "app"
        interval = "300ms"
        fall = 1
    """)


def write(path: Path, text: str) -> list[str]:
    return [sys.executable, "-c", f"open({str(path)!r}, 'w').write({text!r})"]


def switch(tmp_path: Path, d: Daemon, config: Path, *then: str) -> list[str]:
    """The SWITCH command; ``then``: the status it leaves, and its exit code."""
    return [sys.executable, "-c", SWITCH, str(tmp_path / "status"), str(d.log),
            str(tmp_path / "seen"), str(config), vigil_command()[0], *then]


def deploy(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``vigil deploy app ARGS`` (the command after ``--`` among them)."""
    return run_vigil("deploy", "app", "-c", str(config), *args, env={**os.environ},
                     timeout=180)


def steps(done: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    """The deploy's own steps (its log lines on stderr), by event."""
    found = {}
    for line in done.stderr.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if str(record.get("event", "")).startswith("deploy."):
            found[record["event"]] = record
    return found


def deploys(tmp_path: Path) -> list[tuple[str, str]]:
    """The deploys in the services' history (the daemon's heals left out)."""
    conn = sqlite3.connect(tmp_path / "state" / "state.db")
    return conn.execute("SELECT service, outcome FROM heals WHERE outcome LIKE 'deploy.%' "
                        "ORDER BY at").fetchall()


def maintenance_of(d: Daemon) -> list[str]:
    """The daemon's maintenance events on app, in order, and where its heals came."""
    return [e["event"] for e in d.events()
            if e.get("target") == "app" or e.get("event") in ("heal.skipped", "heal.started")]


def test_a_deploy_holds_heals_back_while_its_command_runs_and_exits_0_when_healthy(
        app: Path, daemon, tmp_path: Path) -> None:
    d = daemon(app).start()
    d.wait_for("check.result", check="app", status="OK")
    done = deploy(app, "--stable", "1s", "--timeout", "60s", "--",
                  *switch(tmp_path, d, app))
    assert done.returncode == 0, done.stdout + done.stderr
    assert set(steps(done)) == {"deploy.started", "deploy.command_done", "deploy.healthy"}
    assert "switching to the new release" in done.stdout, "the command's output"
    # While the command ran, the daemon showed app under maintenance and held back the
    # heal its failure asked for; the window ended after it, and app never was healed.
    assert (tmp_path / "seen").read_text() == "MAINTENANCE"
    assert d.events("heal.skipped", service="app")[0]["reason"] == "maintenance"
    assert maintenance_of(d) == ["maintenance.started", "heal.skipped", "maintenance.ended"]
    assert d.events("maintenance.started", target="app")[0]["by"] == "vigil deploy"
    assert not (tmp_path / "healed.heals").exists()
    assert deploys(tmp_path) == [("app", "deploy.healthy")]
    assert d.stop() == 0


def test_a_failing_command_is_rolled_back_under_the_same_window_and_said_healthy(
        app: Path, daemon, tmp_path: Path) -> None:
    """The release fails (its check too, exit 3): the rollback runs before the window
    ends, so the daemon never restarts the broken release beside it; the rollback made
    app healthy, and the deploy says so (and still exits 1)."""
    d = daemon(app).start()
    d.wait_for("check.result", check="app", status="OK")
    rollback = shlex.join(write(tmp_path / "status", "OK"))
    done = deploy(app, "--stable", "1s", "--timeout", "60s", "--rollback", rollback, "--",
                  *switch(tmp_path, d, app, "CRIT", "3"))
    assert done.returncode == 1, done.stdout + done.stderr
    said = steps(done)
    assert said["deploy.command_done"]["exit_code"] == 3
    assert said["deploy.rolling_back"]["reason"] == "the command failed (exit code 3)"
    assert said["deploy.rolled_back"]["healthy"] is True, said
    assert said["deploy.rolled_back"]["exit_code"] == 0 and "deploy.failed" not in said
    assert (tmp_path / "status").read_text() == "OK", "the rollback ran"
    assert maintenance_of(d) == ["maintenance.started", "heal.skipped", "maintenance.ended"]
    assert not (tmp_path / "healed.heals").exists(), "a heal raced the rollback"
    assert deploys(tmp_path) == [("app", "deploy.rolled_back")]
    assert d.stop() == 0


def test_a_rollback_that_does_not_make_it_healthy_is_said_so(app: Path, daemon,
                                                             tmp_path: Path) -> None:
    d = daemon(app).start()
    d.wait_for("check.result", check="app", status="OK")
    rollback = shlex.join([sys.executable, "-c", "print('rolled back, to no avail')"])
    done = deploy(app, "--stable", "1s", "--timeout", "3s", "--rollback", rollback, "--",
                  *write(tmp_path / "status", "CRIT"))
    assert done.returncode == 1, done.stdout + done.stderr
    said = steps(done)
    assert said["deploy.rolled_back"]["healthy"] is False, said
    assert said["deploy.rolled_back"]["exit_code"] == 0
    assert "rolled back, to no avail" in done.stdout
    assert deploys(tmp_path) == [("app", "deploy.rolled_back")]
    assert d.stop() == 0


def test_a_release_not_healthy_in_time_is_rolled_back(app: Path, daemon,
                                                      tmp_path: Path) -> None:
    """The command succeeds, but the service does not come up within --timeout: the
    rollback runs (under maintenance again), and the wait after it finds app healthy."""
    d = daemon(app).start()
    d.wait_for("check.result", check="app", status="OK")
    rollback = shlex.join(write(tmp_path / "status", "OK"))
    done = deploy(app, "--stable", "1s", "--timeout", "10s", "--rollback", rollback, "--",
                  *write(tmp_path / "status", "CRIT"))
    assert done.returncode == 1, done.stdout + done.stderr
    said = steps(done)
    assert said["deploy.command_done"]["exit_code"] == 0
    assert "reason" not in said["deploy.command_done"]
    assert said["deploy.rolling_back"]["reason"] == "not healthy in time"
    assert said["deploy.rolled_back"]["healthy"] is True, said
    assert (tmp_path / "status").read_text() == "OK"
    windows = [e for e in maintenance_of(d) if e.startswith("maintenance.")]
    assert windows == ["maintenance.started", "maintenance.ended"] * 2, maintenance_of(d)
    assert deploys(tmp_path) == [("app", "deploy.rolled_back")]
    assert d.stop() == 0


def test_a_deploy_without_a_rollback_that_fails_says_deploy_failed(app: Path, daemon,
                                                                   tmp_path: Path) -> None:
    d = daemon(app).start()
    d.wait_for("check.result", check="app", status="OK")
    failed = deploy(app, "--stable", "1s", "--timeout", "60s", "--", "false")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    said = steps(failed)
    assert said["deploy.failed"]["reason"] == "the command failed (exit code 1)"
    assert said["deploy.failed"]["exit_code"] == 1 and "deploy.rolling_back" not in said
    # A command that works, and a service that does not come up in time.
    late = deploy(app, "--stable", "1s", "--timeout", "3s", "--",
                  *write(tmp_path / "status", "CRIT"))
    assert late.returncode == 1, late.stdout + late.stderr
    said = steps(late)
    assert said["deploy.failed"]["reason"] == "not healthy in time", said
    assert said["deploy.failed"]["exit_code"] == 0
    assert deploys(tmp_path) == [("app", "deploy.failed")] * 2
    assert d.stop() == 0


def test_the_commands_output_is_streamed_as_it_comes(app: Path, tmp_path: Path) -> None:
    """The command's first line reaches deploy's output while the command still runs:
    it goes on only once the test has read that line."""
    go = tmp_path / "go"
    command = ("import os, sys, time; print('step 1', flush=True); "
               "deadline = time.monotonic() + 60\n"
               f"while not os.path.exists({str(go)!r}) and time.monotonic() < deadline: "
               "time.sleep(0.05)\nprint('step 2')")
    proc = subprocess.Popen([*vigil_command(), "deploy", "app", "--stable", "1s",
                             "--timeout", "60s", "-c", str(app), "--", sys.executable, "-c",
                             command], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ})
    try:
        assert readline_within(proc, 30) == "step 1\n"
        go.touch()
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out + err
    assert out.startswith("step 2\n"), out


def test_a_deploy_whose_command_overruns_says_it_timed_out(app: Path, tmp_path: Path) -> None:
    rollback = shlex.join(write(tmp_path / "status", "OK"))
    done = run_vigil("deploy", "app", "--timeout", "1s", "--stable", "1s", "--rollback",
                     rollback, "-c", str(app), "--", sys.executable, "-c",
                     "import time; time.sleep(60)", env={**os.environ})
    assert done.returncode == 1, done.stdout + done.stderr
    steps = {line["event"]: line for line in map(json.loads, done.stderr.splitlines())
             if line.get("event", "").startswith("deploy.")}
    said = "the command timed out after 1s (--timeout)"
    assert steps["deploy.command_done"]["reason"] == said, done.stderr
    assert steps["deploy.rolling_back"]["reason"] == said
    assert "the command failed" not in done.stderr
