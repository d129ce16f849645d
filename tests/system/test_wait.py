"""`vigil wait`, the deploy gate: exit 0 once every matching check passed for --stable in
a row, 1 at the timeout naming what fails, 3 when nothing matches; with a daemon running
(it runs the checks and streams their results) and without one; a failure on the way
starts the stable time again."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import FIXTURES, readline_within, run_vigil, vigil_command


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
        ran = len(d.events("check.result", check="db"))
    code, out, _ = wait(gated, "db", "--stable", "2s", "--timeout", "20s")
    assert code == 0 and "healthy: 1 check(s) passed for 2s in a row" in out, out
    if with_daemon:
        # The daemon answered: it ran db (its interval is an hour) each time the wait
        # asked, and streamed those results back; the wait ran none of its own.
        shown = [line for line in out.splitlines() if line.startswith("db: OK (")]
        assert len(shown) >= 2, out
        assert len(d.events("check.result", check="db")) - ran >= len(shown), out
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


def results(lines: list[str]) -> list[tuple[str, float]]:
    """(status, stable_s) of each of web's result lines `vigil wait` printed."""
    return [(m.group(1), float(m.group(2))) for line in lines
            if (m := re.match(r"web: (\w+) \(([\d.]+)s\) - ", line))]


@pytest.mark.parametrize("with_daemon", [False, True])
def test_a_flap_starts_the_stable_time_again(gated: Path, daemon, tmp_path: Path,
                                             with_daemon: bool) -> None:
    """web passes for a second or more, fails once, then passes: the time it has passed
    for starts again at the failure, and the wait ends --stable after it, not before."""
    (tmp_path / "web").write_text("OK")
    if with_daemon:
        daemon(gated).start().wait_for("check.result", check="web")
    proc = subprocess.Popen([*vigil_command(), "wait", "web", "--stable", "6s", "--timeout",
                             "60s", "-c", str(gated)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ})
    lines: list[str] = []

    def until(status: str, stable: float = 0.0) -> None:
        while not any(s == status and t >= stable for s, t in results(lines[-1:])):
            lines.append(readline_within(proc, 30))

    try:
        until("OK", 1.0)
        before = len(lines)
        (tmp_path / "web").write_text("CRIT")
        until("CRIT")
        failed = time.monotonic()
        (tmp_path / "web").write_text("OK")
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out + err
    assert time.monotonic() - failed >= 6, "healthy before it passed 6 s after the flap"
    after = results(lines[before:] + out.splitlines())
    statuses = "".join(s[0] for s, _ in after)
    assert re.fullmatch("O*C+O+", statuses), after
    passes = [t for _, t in after[statuses.rindex("C") + 1:]]
    assert passes[0] < 1, f"the stable time went on across the flap: {after}"
    assert "healthy: 1 check(s) passed for 6s in a row" in out
