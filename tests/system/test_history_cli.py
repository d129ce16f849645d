"""History and log volume, end to end: a real daemon writes its results to the state
database, `vigil history` and `vigil status` read them back, and the log at the default
level carries changes and failures, not every healthy run."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import FIXTURES, Daemon, run_vigil, wait_until


@pytest.fixture(autouse=True)
def _fixture_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", FIXTURES)


def flip_config(flag: Path, daemon_keys: str = "") -> str:
    return f"""
        [daemon]
        state_dir = "state"
        plugins = ["misbehaving"]
        {daemon_keys}
        [checks.flip]
        type = "fixed"
        interval = "100ms"
        fall = 1
        rise = 1
        status_file = "{flag}"
    """


def history(config: Path, *extra: str) -> dict[str, Any]:
    done = run_vigil("history", "flip", "--json", "-c", str(config), *extra)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def recorded(config: Path, what: str) -> list[dict[str, Any]]:
    """The results or transitions recorded so far; none before the first commit."""
    done = run_vigil("history", "flip", "--json", "-c", str(config))
    return json.loads(done.stdout)[what] if done.returncode == 0 else []


def test_history_shows_results_transitions_and_uptime(write_config, daemon, tmp_path) -> None:
    flag = tmp_path / "status"
    flag.write_text("OK")
    config = write_config(flip_config(flag))
    d: Daemon = daemon(config).start()
    d.wait_for("check.result", count=3, check="flip")
    flag.write_text("CRIT")
    d.wait_for("check.state_changed", check="flip", to="FAILING")
    d.wait_for("check.result", count=2, check="flip", status="CRIT")
    flag.write_text("OK")
    d.wait_for("check.state_changed", check="flip", to="OK", count=2)

    wait_until(lambda: len(recorded(config, "transitions")) == 3, 10,
               "three transitions in the history")
    found = history(config)
    assert [(t["from"], t["to"]) for t in found["transitions"]] == [
        ("PENDING", "OK"), ("OK", "FAILING"), ("FAILING", "OK")]
    statuses = [r["status"] for r in found["results"]]
    assert "CRIT" in statuses and statuses[0] == "OK" and statuses[-1] == "OK"
    assert all(r["summary"] == f"told to be {r['status']}" for r in found["results"])
    assert all(r["metrics"] == {"value_ms": 1.5} for r in found["results"])
    passed = statuses.count("OK") / len(statuses)
    assert found["uptime"]["24h"] == pytest.approx(passed, abs=0.05)
    assert 0 < found["uptime"]["24h"] < 1

    text = run_vigil("history", "flip", "-c", str(config)).stdout
    assert text.startswith("flip: up ") and "over 24h" in text
    assert "state OK -> FAILING  (CRIT: told to be CRIT)" in text
    status = run_vigil("status", "-c", str(config)).stdout
    header, row = status.splitlines()[1:3]
    assert "UP 24H" in header and row.startswith("flip") and "%" in row
    assert d.stop() == 0
    # Once stopped, the history is still there to read.
    assert len(history(config, "--since", "1d")["results"]) >= len(statuses)


def test_history_of_an_unknown_check_or_with_history_off(write_config, daemon,
                                                        tmp_path) -> None:
    flag = tmp_path / "status"
    config = write_config(flip_config(flag, "history = false"))
    d = daemon(config).start()
    d.wait_for("check.result", count=2, check="flip")
    off = run_vigil("history", "flip", "-c", str(config))
    assert off.returncode == 1 and "history = false" in off.stderr
    assert d.stop() == 0
    unknown = run_vigil("history", "nope", "-c", str(config))
    assert unknown.returncode == 1 and "no history of a check named 'nope'" in unknown.stderr
    elsewhere = write_config('[daemon]\nstate_dir = "nothing-here"\n', name="other.toml")
    none = run_vigil("history", "flip", "-c", str(elsewhere))
    assert none.returncode == 3 and "no state database" in none.stderr


def test_the_default_log_holds_changes_and_failures_not_every_run(write_config, daemon,
                                                                  tmp_path) -> None:
    flag = tmp_path / "status"
    flag.write_text("OK")
    config = write_config(flip_config(flag), every_result=False)
    d = daemon(config).start()
    wait_until(lambda: len(recorded(config, "results")) >= 10, 10, "ten runs recorded")
    # Ten healthy runs, one line: the first result (its status is new).
    assert [r["status"] for r in d.events("check.result", check="flip")] == ["OK"]
    flag.write_text("CRIT")
    failing = d.wait_for("check.result", count=3, check="flip", status="CRIT")
    # Every failing result is logged; the first of a status is the warning.
    assert [r["level"] for r in failing[:3]] == ["warning", "info", "info"]
    flag.write_text("OK")
    d.wait_for("check.state_changed", check="flip", to="OK", count=2)
    wait_until(lambda: recorded(config, "results")[-1]["status"] == "OK", 5, "a pass")
    runs_before = len(recorded(config, "results"))
    wait_until(lambda: len(recorded(config, "results")) >= runs_before + 10, 10, "more runs")
    oks = d.events("check.result", check="flip", status="OK")
    assert len(oks) == 2, oks  # the first, and the first after the failure
    assert d.stop() == 0
    assert os.path.getsize(d.log) < 10_000
    # `vigil logs` says so too.
    said = " ".join(run_vigil("logs", "--help").stdout.split())
    assert "a healthy check's unchanged result is a debug line" in said
