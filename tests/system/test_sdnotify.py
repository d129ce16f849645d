"""The NOTIFY_SOCKET protocol against a real datagram socket, as systemd listens."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from tests.helpers import FIXTURES
from vigil._agent.agent import Agent
from vigil._agent.sdnotify import Notifier
from vigil._config import loader as config


@pytest.fixture
def listener() -> Iterator[tuple[socket.socket, str]]:
    """An abstract datagram socket, named the way systemd names its own (@...)."""
    name = f"vigil-test-{os.getpid()}-{time.monotonic_ns()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    yield sock, "@" + name
    sock.close()


def messages(sock: socket.socket, until: str, timeout: float = 10) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            seen += sock.recv(4096).decode().split("\n")
        except TimeoutError:
            continue
        if any(line.startswith(until) for line in seen):
            return seen
    raise AssertionError(f"{until} never came; got {seen}")


def test_daemon_speaks_the_protocol(listener, write_config, daemon, monkeypatch) -> None:
    sock, address = listener
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")
    # Thresholds out of reach, and no CPU (saturated, it is 100% at any threshold):
    # "1 OK" must not depend on how busy or full this host is.
    d = daemon(write_config('[daemon]\nstate_dir = "s"\n[checks.sys]\ntype = "system"\n'
                            'interval = "1s"\ncpu = false\nwarn_pct = 100\n'
                            'crit_pct = 100\n')).start()
    seen = messages(sock, "STATUS=1 check: 1 OK")
    assert seen[0] == "READY=1" and seen[1].startswith("STATUS=1 check:")
    assert "WATCHDOG=1" in seen + messages(sock, "WATCHDOG=1")
    d.stop()
    assert "STOPPING=1" in messages(sock, "STOPPING=1")


def test_a_live_daemon_whose_scheduler_wedges_says_so_and_stops_the_watchdog(
        listener, write_config, daemon, monkeypatch) -> None:
    sock, address = listener
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")
    monkeypatch.setenv("PYTHONPATH", FIXTURES)
    d = daemon(write_config('[daemon]\nstate_dir = "s"\nplugins = ["misbehaving"]\n'
                            '[checks.w]\ntype = "wedge"\ninterval = "1h"\n')).start()
    assert "WATCHDOG=1" in messages(sock, "WATCHDOG=1")
    wedged = d.wait_for("daemon.wedged", timeout=15)[0]
    assert wedged["since_s"] >= 3 and "no watchdog ping" in wedged["reason"]
    sock.setblocking(False)
    with contextlib.suppress(BlockingIOError):
        while True:  # what was sent before the wedge was seen
            sock.recv(4096)
    # Three more turns of the watchdog (each says the scheduler is wedged, instead of
    # pinging): a live scheduler would have been pinged for thrice.
    turns = len(d.events("daemon.wedged"))
    d.wait_for("daemon.wedged", count=turns + 3, timeout=15)
    late: list[str] = []
    with contextlib.suppress(BlockingIOError):
        while True:
            late += sock.recv(4096).decode().split("\n")
    assert "WATCHDOG=1" not in late  # systemd would now kill and restart this vigil
    assert d.stop() == 0  # and a wedged scheduler does not stop vigil from stopping
    assert "the scheduler did not stop" in json.dumps(d.events("daemon.wedged"))


def test_a_path_socket_works_too(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    notifier = Notifier()
    assert "NOTIFY_SOCKET" not in os.environ  # children must not speak for vigil
    assert notifier.send("READY=1", "STATUS=hello")
    assert sock.recv(100) == b"READY=1\nSTATUS=hello"
    sock.close()


def test_no_watchdog_ping_while_the_scheduler_is_wedged(listener, tmp_path, monkeypatch):
    sock, address = listener
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    (tmp_path / "c.toml").write_text('[daemon]\nstate_dir = "s"\n[checks.s]\ntype="system"\n')
    agent = Agent(config.load(str(tmp_path / "c.toml")))
    assert agent.notifier.watchdog == 2.0
    agent.scheduler.last_progress = time.monotonic() - 60  # no heartbeat for a minute
    with capture_logs() as logged:
        agent._watchdog(0.0)
    (wedged,) = [e for e in logged if e["event"] == "daemon.wedged"]
    assert wedged["log_level"] == "error" and wedged["since_s"] >= 60
    sock.settimeout(0.5)
    with pytest.raises(TimeoutError):
        sock.recv(100)
    agent.scheduler.last_progress = time.monotonic()
    agent._watchdog(0.0)
    assert sock.recv(100) == b"WATCHDOG=1"


def test_watchdog_for_another_pid_is_ignored(monkeypatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert Notifier().watchdog is None
