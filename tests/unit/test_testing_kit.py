"""vigil.testing, the kit a plugin's own tests use: on the built-in plugins and the test
fixtures, as a plugin author would use it on theirs."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import FIXTURES
from vigil import ConfigError, Status
from vigil.testing import (
    deliver,
    fixed_time,
    make_alert,
    make_check,
    make_manager,
    make_sink,
    run_check,
    watch_deaths,
)


def test_options_are_checked_as_the_loader_checks_them() -> None:
    check = make_check("tcp", {"port": 5432, "host": "127.0.0.1"})
    assert check.options.port == 5432 and check.name == "test"
    with pytest.raises(ConfigError) as caught:
        make_check("tcp", {"port": "x", "hots": "a"})
    assert sorted(issue.key for issue in caught.value.issues) == [
        "checks.test.hots", "checks.test.port"]
    assert "unknown option" in str(caught.value)


def test_a_check_runs_as_the_daemon_runs_it(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        assert run_check(make_check("tcp", {"port": port})).status is Status.OK
    assert run_check(make_check("tcp", {"port": port})).status is Status.CRIT
    monkeypatch.syspath_prepend(FIXTURES)
    raising = run_check(make_check("boom", plugins=["misbehaving"]))
    assert raising.status is Status.UNKNOWN and "RuntimeError: boom" in raising.summary
    slow = make_check("fixed", {"sleep_s": 5.0}, plugins=["misbehaving"], timeout=0.2)
    assert run_check(slow).summary == "timed out after 0.2s"


def test_a_managers_verbs_and_watch_are_driven_directly(tmp_path: Path) -> None:
    manager = make_manager("command", {"start": [sys.executable, "-c",
                                                 "import time; time.sleep(60)"]})
    manager.state_dir = tmp_path
    assert manager.start().ok
    with watch_deaths(manager) as deaths:
        assert deaths.watching
        os.kill(manager.state["pid"], signal.SIGKILL)
        assert deaths.wait(1)[0]["pid"] == manager.state["pid"]
    assert manager.is_running() is False


def test_a_sink_gets_an_alert(receiver) -> None:
    sink = make_sink("webhook", {"url": receiver.url("/hook")})
    deliver(sink, make_alert("db", service="pg"))
    deliver(sink, make_alert("db", "resolved"))
    bodies = receiver.at("/hook")
    assert [body["status"] for body in bodies] == ["firing", "resolved"]
    assert bodies[0]["commonLabels"]["service"] == "pg"


def test_the_wall_clock_holds_still_until_moved() -> None:
    # A time far from now, whenever the test runs: the real clock is back after.
    held = time.time() + 10 * 365 * 86400
    with fixed_time(held) as clock:
        assert time.time() == held
        clock.advance(90)
        assert time.time() == held + 90
    assert abs(time.time() - held) > 365 * 86400, "the real clock is back"
