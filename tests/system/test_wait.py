"""`vigil wait`, the deploy gate: exit 0 once every matching check passed for --stable in
a row, 1 at the timeout naming what fails, 3 when nothing matches; with a daemon running
(it runs the checks and streams their results) and without one."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.helpers import FIXTURES, run_vigil


@pytest.fixture
def gated(write_config, tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("PYTHONPATH", FIXTURES)
    (tmp_path / "web").write_text("CRIT")
    return write_config(f"""
        [daemon]
        state_dir = "state"
        plugins = ["misbehaving"]
        [checks.db]
        type = "fixed"
        interval = "1h"
        [checks.web]
        type = "fixed"
        status_file = "{tmp_path / 'web'}"
        interval = "1h"
    """)


def wait(config: Path, *args: str) -> tuple[int, str, str]:
    done = run_vigil("wait", *args, "-c", str(config), env={**os.environ}, timeout=60)
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize("with_daemon", [False, True])
def test_wait_exits_0_1_or_3(gated: Path, daemon, tmp_path: Path, with_daemon: bool) -> None:
    if with_daemon:
        d = daemon(gated).start()
        d.wait_for("check.result", check="web")
    code, out, _ = wait(gated, "db", "--stable", "2s", "--timeout", "20s")
    assert code == 0 and "healthy: 1 check(s) passed for 2s in a row" in out, out
    code, _, err = wait(gated, "--stable", "1s", "--timeout", "3s")
    assert code == 1 and "not healthy after 3s: web CRIT - told to be CRIT" in err, err
    code, _, err = wait(gated, "nothing*")
    assert code == 3 and "no check matches nothing*" in err
    (tmp_path / "web").write_text("OK")
    code, out, _ = wait(gated, "--stable", "1s", "--timeout", "20s", "--json")
    answer = json.loads(out)
    assert code == 0 and answer["ok"] and set(answer["checks"]) == {"db", "web"}
    if with_daemon:
        assert d.stop() == 0
