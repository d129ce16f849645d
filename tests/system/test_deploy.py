"""`vigil deploy`: maintenance around the command, the gate after it, a rollback when
it fails, and a line of the service's history either way."""

from __future__ import annotations

import json
import os
import shlex
import sqlite3
import sys
from pathlib import Path

import pytest

from tests.helpers import FIXTURES, run_vigil


@pytest.fixture
def app(write_config, tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("PYTHONPATH", FIXTURES)
    (tmp_path / "flag").write_text("CRIT")
    return write_config(f"""
        [daemon]
        state_dir = "state"
        plugins = ["misbehaving"]
        [services.app]
        manager = "flag"
        status_file = "{tmp_path / 'flag'}"
        [checks.app]
        type = "fixed"
        status_file = "{tmp_path / 'flag'}"
        service = "app"
    """)


def write(path: Path, text: str) -> list[str]:
    return [sys.executable, "-c", f"open({str(path)!r}, 'w').write({text!r})"]


def history(tmp_path: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(tmp_path / "state" / "state.db")
    return conn.execute("SELECT service, outcome FROM heals ORDER BY at").fetchall()


def test_a_deploy_that_comes_up_healthy_exits_0_and_is_recorded(app: Path,
                                                                tmp_path: Path) -> None:
    done = run_vigil("deploy", "app", "--stable", "1s", "--timeout", "20s", "-c", str(app),
                     "--", *write(tmp_path / "flag", "OK"), env={**os.environ})
    assert done.returncode == 0, done.stdout + done.stderr
    for event in ("deploy.started", "deploy.command_done", "deploy.healthy"):
        assert event in done.stderr + done.stdout, event
    assert history(tmp_path) == [("app", "deploy.healthy")]


def test_a_failing_deploy_is_rolled_back_and_exits_1(app: Path, tmp_path: Path) -> None:
    rollback = shlex.join(write(tmp_path / "flag", "OK"))
    done = run_vigil("deploy", "app", "--stable", "1s", "--timeout", "20s",
                     "--rollback", rollback, "-c", str(app), "--", "false",
                     env={**os.environ})
    assert done.returncode == 1, done.stdout + done.stderr
    assert "deploy.rolled_back" in done.stderr + done.stdout
    assert (tmp_path / "flag").read_text() == "OK", "the rollback ran"
    assert history(tmp_path) == [("app", "deploy.rolled_back")]


def test_a_deploy_whose_command_overruns_says_it_timed_out(app: Path, tmp_path: Path) -> None:
    rollback = shlex.join(write(tmp_path / "flag", "OK"))
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
