"""The wall clock steps (NTP's first sync, a VM resumed, `date -s`) under a real daemon:
libfaketime (Debian's `faketime`) moves the daemon's wall clock by an hour back, then
forward, while its monotonic clock stays real. The checks keep their rhythm, /livez
stays 200, and the history and uptime stay whole."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from tests.helpers import FIXTURES, call, free_port, listening, run_vigil

LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1")
INTERVAL = 1.0


def results_during(d, check: str, seconds: float, port: int) -> tuple[list[float], list[int]]:
    """The log times of ``check``'s results that came during the next ``seconds`` (real
    time), and /livez's answers, polled meanwhile."""
    before = len(d.events("check.result", check=check))
    probes = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        probes.append(call(port, "/livez")[0])
        time.sleep(0.2)
    found = d.events("check.result", check=check)[before:]
    return [datetime.fromisoformat(r["timestamp"]).timestamp() for r in found], probes


def test_a_step_of_an_hour_back_and_forward_keeps_the_rhythm(write_config, daemon, tmp_path,
                                                            monkeypatch) -> None:
    assert LIBFAKETIME.exists(), "install the Debian package faketime"
    offset = tmp_path / "faketime"
    offset.write_text("+0\n")
    port, up = free_port(), free_port()
    config = write_config(f"""
        [daemon]
        state_dir = "state"
        http = "127.0.0.1:{port}"
        log_results = "all"
        [checks.up]
        type = "tcp"
        port = {up}
        interval = "{INTERVAL}s"
        timeout = "5s"
    """)
    for name, value in {"LD_PRELOAD": str(LIBFAKETIME), "FAKETIME_TIMESTAMP_FILE": str(offset),
                        "FAKETIME_NO_CACHE": "1", "DONT_FAKE_MONOTONIC": "1",
                        # time.sleep through select: see the sitecustomize there.
                        "PYTHONPATH": str(Path(FIXTURES) / "faketime")}.items():
        monkeypatch.setenv(name, value)
    with listening(up):
        d = daemon(config).start()
        for name in ("LD_PRELOAD", "FAKETIME_TIMESTAMP_FILE", "PYTHONPATH"):
            monkeypatch.delenv(name)
        steady, _ = results_during(d, "up", 5, port)
        offset.write_text("-3600\n")  # an hour back
        back, back_probes = results_during(d, "up", 5, port)
        offset.write_text("+0\n")  # and forward again
        forward, forward_probes = results_during(d, "up", 5, port)

    stepped = [round(e["by_s"] / 60) for e in d.wait_for("clock.stepped", count=2)]
    assert stepped == [-60, 60], stepped
    # At its rhythm in each phase: none paused for the step, none fired in a storm.
    for phase, times in (("steady", steady), ("back", back), ("forward", forward)):
        gaps = [b - a for a, b in itertools.pairwise(times) if abs(b - a) < 600]
        assert 3 <= len(times) <= 8, f"{phase}: {len(times)} results in 5 s"
        assert max(gaps) < 3 * INTERVAL, f"{phase}: gaps {gaps}"
    assert set(back_probes + forward_probes) == {200}, "/livez stayed 200"
    # libfaketime slows every clock read (a run may overlap the next: check.skipped, and
    # on a loaded machine one may come a second late: check.missed), but no run came an
    # hour late or early.
    assert all(e["late_s"] < 60 for e in d.events("check.missed")), d.events("check.missed")
    assert d.stop() == 0

    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LD_PRELOAD", "FAKE"))}
    state = json.loads(run_vigil("status", "--json", "-c", str(config), env=clean).stdout)
    found = json.loads(run_vigil("history", "up", "--since", "3h", "--json", "-c", str(config),
                                 env=clean).stdout)
    results = found["results"]
    assert len(results) >= 10 and all(r["duration_ms"] >= 0 for r in results)
    # Uptime is the share of passing runs: the hour the clock skipped holds no run, and
    # counts neither way (a host this busy under libfaketime may fail a run of its own).
    passed = sum(r["status"] in ("OK", "WARN") for r in results)
    assert state["checks"]["up"]["uptime_24h"] == round(passed / len(results), 6)
    assert passed >= len(results) - 2, [r["summary"] for r in results]


def test_the_in_process_tests_pass_a_year_ahead(tmp_path) -> None:
    # No test may assume today's date: tests/unit again, its wall clock 400 days ahead
    # (libfaketime), its monotonic clock real.
    assert LIBFAKETIME.exists(), "install the Debian package faketime"
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "LD_PRELOAD": str(LIBFAKETIME), "FAKETIME": "+400d",
           "DONT_FAKE_MONOTONIC": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1",
           "PYTHONPATH": str(Path(FIXTURES) / "faketime")}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-n", "0", f"--basetemp={tmp_path / 'base'}", "tests/unit"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=600)
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr
    assert done.returncode == 0, f"a year ahead, tests/unit says: {last}\n{done.stdout[-3000:]}"
    assert " passed" in last and "failed" not in last, last
