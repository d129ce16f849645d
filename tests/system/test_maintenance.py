"""Maintenance windows (issue 26, in progress): a window on a service holds its heals
back, shows its checks in MAINTENANCE, and when it ends the checks are judged afresh."""

from __future__ import annotations

import time
from pathlib import Path

from tests.helpers import FIXTURES, run_vigil, saved_state, wait_until


def test_a_window_holds_heals_back_and_its_end_lets_them_go(write_config, daemon,
                                                             tmp_path: Path,
                                                             monkeypatch) -> None:
    monkeypatch.setenv("PYTHONPATH", FIXTURES)
    flag = tmp_path / "flag"
    flag.write_text("CRIT")
    config = write_config(f"""
        [daemon]
        state_dir = "state"
        plugins = ["misbehaving"]
        [services.app]
        manager = "flag"
        status_file = "{flag}"
        backoff = "0s"
        [checks.app]
        type = "fixed"
        status_file = "{flag}"
        service = "app"
        interval = "1s"
        fall = 1
    """)
    started = run_vigil("maintenance", "start", "app", "--for", "3s", "--reason", "upgrade",
                        "-c", str(config))
    assert started.returncode == 0, started.stderr
    d = daemon(config).start()
    window = d.wait_for("maintenance.started", target="app")[0]
    assert window["reason"] == "upgrade" and window["by"] == "vigil maintenance"
    skipped = d.wait_for("heal.skipped", service="app")[0]
    assert skipped["reason"] == "maintenance" and skipped["window"] == "app"
    wait_until(lambda: saved_state(tmp_path / "state")["checks"]["app"]["state"]
               == "MAINTENANCE", 5, "the check shown in MAINTENANCE")
    assert not d.events("heal.started")
    d.wait_for("maintenance.ended", target="app", why="expired", timeout=10)
    d.wait_for("heal.succeeded", service="app", timeout=10)
    assert d.stop() == 0


def test_a_scheduled_window_is_opened_by_its_cron(write_config, daemon) -> None:


    # Every minute, for 55 s: started now unless in the minute's last seconds.
    if time.time() % 60 > 50:
        time.sleep(61 - time.time() % 60)
    d = daemon(write_config("""
        [daemon]
        state_dir = "state"
        [checks.disk]
        type = "system"
        [maintenance.nightly]
        schedule = "* * * * *"
        duration = "55s"
        checks = ["disk*"]
        reason = "the backup"
    """)).start()
    window = d.wait_for("maintenance.started", target="disk*")[0]
    assert window["by"] == "schedule nightly" and window["reason"] == "the backup"
    assert d.stop() == 0
