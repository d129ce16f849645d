"""Maintenance windows (issue 26, in progress): a window on a service holds its heals
back, shows its checks in MAINTENANCE, and when it ends the checks are judged afresh."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

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


def test_history_marks_the_results_taken_under_maintenance(write_config, daemon,
                                                           tmp_path: Path,
                                                           monkeypatch) -> None:
    monkeypatch.setenv("PYTHONPATH", FIXTURES)
    config = write_config("""
        [daemon]
        state_dir = "state"
        plugins = ["misbehaving"]
        [checks.disk]
        type = "fixed"
        interval = "200ms"
    """)
    d = daemon(config).start()
    d.wait_for("check.result", check="disk", count=2)
    assert run_vigil("maintenance", "start", "disk", "--for", "1s", "-c",
                     str(config)).returncode == 0
    d.wait_for("maintenance.ended", target="disk", why="expired", timeout=10)
    after = len(d.events("check.result", check="disk"))
    d.wait_for("check.result", check="disk", count=after + 2)

    def results() -> list[dict[str, Any]]:
        done = run_vigil("history", "disk", "--json", "-c", str(config))
        return json.loads(done.stdout)["results"] if done.returncode == 0 else []

    def held() -> list[bool]:
        return [r["maintenance"] for r in results()]

    # Before, under and after the window, in the history once the writer committed it.
    wait_until(lambda: held() and held()[0] is False and True in held()
               and held()[-1] is False, 10, "results before, under and after the window")
    assert d.stop() == 0  # the history holds still: the text shows what the JSON did
    text = run_vigil("history", "disk", "-c", str(config)).stdout.splitlines()
    lines = [line for line in text if " ms  " in line]  # a result's line
    assert [("(maintenance) told to be OK" in line) for line in lines] == held()
