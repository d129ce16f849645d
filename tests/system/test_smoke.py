"""A daemon from start to stop, as tests/run.sh runs it on every other CPython the
machine has: it starts, runs a check, heals a `command` service that was killed, and
stops cleanly."""

from __future__ import annotations

import json
import os
import signal
import sys

import pytest

from tests.helpers import free_port, run_vigil, saved_pid

pytestmark = pytest.mark.smoke


def test_a_daemon_starts_checks_heals_and_stops(write_config, daemon, tmp_path) -> None:
    port = free_port()
    config = write_config(f"""
        [daemon]
        state_dir = "state"
        http = ""
        [services.web]
        manager = "command"
        start = ["{sys.executable}", "-m", "http.server", "{port}", "--bind", "127.0.0.1"]
        [checks.web]
        type = "tcp"
        port = {port}
        service = "web"
        interval = "300ms"
        fall = 2
    """)
    d = daemon(config).start()
    d.wait_for("heal.succeeded", service="web", timeout=20)
    d.wait_for("check.state_changed", check="web", to="OK")
    os.kill(saved_pid(tmp_path / "state", "web"), signal.SIGKILL)
    d.wait_for("heal.succeeded", count=2, service="web", timeout=20)
    status = json.loads(run_vigil("status", "--json", "-c", str(config)).stdout)
    assert status["services"]["web"]["heals"]["succeeded"] == 2
    assert d.stop() == 0
    assert d.events("daemon.stopped")
