"""The fixtures: config files, daemons, a private systemd, PostgreSQL and Redis servers,
all cleaned up whatever the test does. Shared helpers are in tests/helpers.py."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from tests.helpers import (
    Daemon,
    Receiver,
    answers,
    free_port,
    reap_command_services,
    redis_argv,
    with_daemon_keys,
)
from tests.private_systemd import PrivateSystemd

UNIT = Path(__file__).parent / "unit"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The folder says what a test is: tests/unit holds the in-process ones."""
    for item in items:
        if UNIT in item.path.parents:
            item.add_marker(pytest.mark.unit)


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[str], Path]:
    """Write a config file; its state and log go to the test's own folder. Unless the
    body sets ``log_results`` or ``every_result`` is false, the daemon logs every result
    (``log_results = "all"``): tests follow runs in the log. Unless it sets ``http``, it
    has no HTTP surface: daemons run side by side would all want port 8787."""

    def write(body: str, name: str = "config.toml", every_result: bool = True) -> Path:
        path = tmp_path / name
        text = textwrap.dedent(body)
        keys = {}
        if every_result and "log_results" not in text:
            keys["log_results"] = '"all"'
        if not re.search(r"^\s*http\s*=", text, re.M):
            keys["http"] = '""'
        if keys:
            text = with_daemon_keys(text, **keys)
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on a free loopback port, recording every POST."""
    hook = Receiver().start()
    yield hook
    hook.stop()


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    started: list[Daemon] = []

    def make(config: Path, prefix: list[str] | None = None,
             command: list[str] | None = None) -> Daemon:
        d = Daemon(config, tmp_path / f"daemon{len(started)}.log", prefix, command)
        started.append(d)
        return d

    yield make
    for d in started:
        d.kill()
        reap_command_services(d.config)
    problems = [p for d in started for p in d.problems()]
    assert not problems, "the daemon wrote what it never should:\n" + "\n".join(problems)


@pytest.fixture
def in_process_cli() -> Iterator[Callable[[list[str]], int]]:
    """``vigil.main`` called in this process; the logging it configures (root handlers,
    structlog) is put back afterwards, so it never leaks into the tests that follow."""
    from vigil._cli import main as _cli

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    saved = structlog.get_config()
    try:
        yield _cli.main
    finally:
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
        for handler in handlers:
            if handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(level)
        structlog.configure(**saved)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Never pick up the developer's own config or state.
    monkeypatch.delenv("VIGIL_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    os.environ.setdefault("PYTHONUNBUFFERED", "1")


@pytest.fixture
def systemd() -> Iterator[PrivateSystemd]:
    """A private systemd, powered off after the test whatever happens."""
    booted = PrivateSystemd()
    try:
        yield booted.boot()
    finally:
        booted.poweroff()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start redis-server on a loopback port (extra arguments go to it); killed after."""
    started: list[subprocess.Popen[bytes]] = []

    def start(port: int, *extra: str, wait: bool = True) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(redis_argv(port, tmp_path, *extra),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(proc)
        deadline = time.monotonic() + 10
        while wait and not answers(port) and time.monotonic() < deadline:
            time.sleep(0.02)
        return proc

    yield start
    for proc in started:
        proc.kill()
        proc.wait()


@pytest.fixture
def pg_cluster() -> Iterator[Any]:
    """A fresh PostgreSQL cluster on a free port, not started; removed afterwards."""
    from tests.pg import Cluster

    cluster = Cluster(free_port())
    try:
        yield cluster
    finally:
        cluster.remove()
