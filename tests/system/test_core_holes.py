"""The core keeps its word where plugins and operators make it hard: a service manager
that raises is a failed heal (in-process in test_policy, here in a daemon, over
`vigil heal` and the API), a watcher that raises is polled instead, and a reload in the
middle of a failing heal keeps what the heal found, its backoff and its alert."""

from __future__ import annotations

import http.client
import json
import signal
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import FIXTURES, call, free_port, run_vigil, wait_until


@pytest.fixture(autouse=True)
def _fixture_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", FIXTURES)


def raising(write_config, tmp_path: Path, broken: str, port: int) -> Path:
    flag = tmp_path / "flag"
    flag.write_text("CRIT")
    return write_config(f"""
        [daemon]
        state_dir = "state"
        plugins = ["misbehaving"]
        http = "127.0.0.1:{port}"
        http_token = "t0ken"
        [services.svc]
        manager = "raising"
        status_file = "{flag}"
        broken = "{broken}"
        start_timeout = "2s"
        backoff = "1s"
        [checks.guard]
        type = "fixed"
        status_file = "{flag}"
        service = "svc"
        interval = "300ms"
        fall = 1
        [checks.other]
        type = "tcp"
        port = {free_port()}
        interval = "300ms"
    """)


def test_a_raising_restart_is_a_failed_heal_everywhere(write_config, daemon, tmp_path) -> None:
    port = free_port()
    config = raising(write_config, tmp_path, "restart", port)
    d = daemon(config).start()
    failed = d.wait_for("heal.failed", service="svc")[0]
    assert failed["reason"] == "the raising manager raised RuntimeError: restart broke on purpose"
    runs = len(d.events("check.result", check="other"))
    done = run_vigil("heal", "svc", "-c", str(config))
    assert done.returncode == 2 and "restart broke on purpose" in done.stderr, done
    stream = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    stream.request("GET", "/api/v1/events", headers={"Authorization": "Bearer t0ken"})
    events = stream.getresponse()
    assert events.status == 200, events.read()
    status, _, body = call(port, "/api/v1/services/svc/heal", "POST",
                           {"Authorization": "Bearer t0ken"})
    answer = json.loads(body)
    assert status == 502 and answer["outcome"] == "heal.failed", answer
    assert "restart broke on purpose" in answer["reason"]
    # The event stream said so too.
    said: dict[str, Any] = {}
    while "heal.failed" not in said:
        line = events.fp.readline().decode()
        if line.startswith("data: "):
            said.setdefault(json.loads(line[6:])["event"], json.loads(line[6:]))
    assert "restart broke on purpose" in said["heal.failed"]["reason"]
    stream.close()
    # The other checks kept their schedule meanwhile.
    d.wait_for("check.result", count=runs + 3, check="other")
    service = json.loads(call(port, "/api/v1/services/svc",
                              headers={"Authorization": "Bearer t0ken"})[2])
    assert service["heals"]["failed"] >= 3 and service["last"]["outcome"] == "heal.failed"
    assert service["state"] == "backing off"
    assert d.stop() == 0


def test_a_raising_watch_is_said_at_start_and_at_a_reload(write_config, daemon,
                                                          tmp_path) -> None:
    config = raising(write_config, tmp_path, "watch", free_port())
    d = daemon(config).start()
    first = d.wait_for("watch.error", service="svc")[0]
    assert "watch() raised RuntimeError: watch broke on purpose" in first["error"]
    d.signal(signal.SIGHUP)
    d.wait_for("config.reloaded")
    d.wait_for("watch.error", count=2, service="svc")
    # Polled instead: its check still finds it failing, and healing goes on.
    d.wait_for("heal.succeeded", service="svc")
    listed = run_vigil("status", "-c", str(config)).stdout
    row = next(line for line in listed.splitlines() if line.startswith("svc "))
    assert "no (polled)" in row, listed
    assert d.stop() == 0


def test_status_says_which_services_are_watched(write_config, daemon) -> None:
    config = write_config(f"""
        [daemon]
        state_dir = "state"
        http = ""
        [services.web]
        manager = "command"
        start = ["{sys.executable}", "-m", "http.server", "{{port}}", "--bind", "127.0.0.1"]
        ports = [{free_port()}]
        [services.quiet]
        manager = "command"
        start = ["true"]
        watch = false
        [checks.web]
        type = "tcp"
        port = 1
        service = "web"
        interval = "1h"
        fall = 1
    """)
    d = daemon(config).start()

    def rows() -> dict[str, str]:
        listed = run_vigil("status", "-c", str(config)).stdout
        header = next(line for line in listed.splitlines() if line.startswith("SERVICE "))
        assert "WATCHED" in header, listed
        return {line.split()[0]: line for line in listed.splitlines()[1:] if line}

    # Started (its check, on port 1, never passes): what runs now is watched.
    d.wait_for("heal.started", service="web")
    wait_until(lambda: " yes " in rows()["web"], 10, "web watched once started")
    assert "no (polled)" in rows()["quiet"]
    assert d.stop() == 0


def test_a_reload_in_the_middle_of_a_failing_start_keeps_its_outcome(write_config, daemon,
                                                                     tmp_path) -> None:
    sent, began, go = tmp_path / "sent.jsonl", tmp_path / "began", tmp_path / "go"
    record = (f"import json, sys; open({str(sent)!r}, 'a').write(json.dumps(json.load("
              "sys.stdin)) + '\\n')")
    # Starts, says so, then dies once the test says so (after the reload): the heal
    # fails after the reload, whatever the machine's pace.
    program = tmp_path / "app.py"
    program.write_text(textwrap.dedent(f"""
        import pathlib, sys, time
        pathlib.Path({str(began)!r}).touch()
        deadline = time.monotonic() + 120
        while not pathlib.Path({str(go)!r}).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        sys.exit("cannot bind")
    """))
    body = f"""
        [daemon]
        state_dir = "state"
        [services.app]
        manager = "command"
        start = ["{sys.executable}", "{program}"]
        start_timeout = "60s"
        backoff = "1m"
        [checks.app]
        type = "tcp"
        port = {free_port()}
        service = "app"
        interval = "300ms"
        fall = 1
        [alerts.page]
        type = "command"
        command = {json.dumps([sys.executable, "-c", record])}
    """
    config = write_config(body)
    d = daemon(config).start()
    d.wait_for("heal.started", service="app")
    wait_until(began.exists, 10, "the start to begin")
    write_config(body.replace('interval = "300ms"', 'interval = "400ms"'))
    d.signal(signal.SIGHUP)
    d.wait_for("config.reloaded")
    go.touch()
    failed = d.wait_for("heal.failed", service="app", timeout=20)[0]
    assert "cannot bind" in failed.get("output", "") + failed["reason"], failed
    order = [e["event"] for e in d.events() if e["event"] in (
        "heal.started", "config.reloaded", "heal.failed")]
    assert order == ["heal.started", "config.reloaded", "heal.failed"], order
    wait_until(lambda: sent.exists() and sent.read_text(), 15, "the after_heal alert")
    alert = json.loads(sent.read_text().splitlines()[0])
    assert alert["reason"] == "heal_failed", alert
    service = json.loads(run_vigil("status", "--json", "-c", str(config)).stdout)[
        "services"]["app"]
    assert service["last"]["outcome"] == "heal.failed" and service["state"] == "backing off"
    assert len(d.events("heal.started", service="app")) == 1, "the backoff holds the next"
    assert d.stop() == 0
