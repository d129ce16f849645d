"""`vigil plugin new`: the package it writes installs into a fresh virtual environment
beside vigil, passes its own tests as written, and works in a daemon: its check, its
service manager (each death seen by its watch) and its alert sink."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from tests.helpers import answers, event_time, free_port, run_vigil, saved_pid, wait_until


def fresh_venv(folder: Path) -> Path:
    """A new virtual environment that sees this one's packages (vigil, pytest) through a
    .pth file, as a plugin's own environment sees an installed vigil: its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True,
                   timeout=60)
    python = folder / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; "
                           "print(sysconfig.get_paths()['purelib'])"], capture_output=True,
                          text=True, check=True).stdout.strip()
    # A site directory, not a plain path: its own .pth files (vigil's editable install's)
    # are read too.
    beside = sysconfig.get_paths()["purelib"]
    Path(site, "vigil_beside.pth").write_text(f"import site; site.addsitedir({beside!r})\n")
    return python


def test_a_new_plugin_installs_passes_its_tests_and_works_in_a_daemon(
        tmp_path: Path, write_config, daemon) -> None:
    made = run_vigil("plugin", "new", "backups", "--check", "--manager", "--sink",
                     cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    package = tmp_path / "vigil-backups"
    assert sorted(p.name for p in package.iterdir()) == [
        "README.md", "pyproject.toml", "tests", "vigil_backups.py"]
    python = fresh_venv(tmp_path / "venv")
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--prefix", str(tmp_path / "venv"), str(package)],
        capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    own = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                         cwd=package, capture_output=True, text=True, timeout=120)
    assert own.returncode == 0 and "4 passed" in own.stdout, own.stdout + own.stderr
    again = run_vigil("plugin", "new", "backups", cwd=tmp_path)
    assert again.returncode == 1 and "exists" in again.stderr

    port = free_port()
    dump, alerts = tmp_path / "db.dump", tmp_path / "alerts.jsonl"
    dump.write_text("data")
    d = daemon(write_config(f"""
        [daemon]
        state_dir = "state"
        [services.web]
        manager = "backups"
        argv = ["{sys.executable}", "-m", "http.server", "{port}", "--bind", "127.0.0.1"]
        backoff = "0s"
        restarts = 5
        [checks.web]
        type = "tcp"
        port = {port}
        service = "web"
        interval = "10s"
        fall = 1
        [checks.dump]
        type = "backups"
        path = "{dump}"
        interval = "1s"
        fall = 1
        rise = 1
        [alerts.file]
        type = "backups"
        path = "{alerts}"
        checks = ["dump"]
    """), command=[str(python), "-m", "vigil"]).start()
    listed = subprocess.run([str(python), "-m", "vigil", "plugins", "--json", "-c",
                             str(d.config)], capture_output=True, text=True, timeout=60)
    plugin = next(p for p in json.loads(listed.stdout) if p["name"] == "backups")
    assert plugin["origin"] == "entry point of vigil-backups 0.1.0"
    assert (plugin["check_types"], plugin["service_managers"], plugin["alert_sinks"]) == (
        ["backups"], ["backups"], ["backups"])
    d.wait_for("check.result", check="dump", status="OK")
    d.wait_for("heal.succeeded", service="web", timeout=15)
    assert d.wait_for("backups.started")[0]["plugin"] == "vigil_backups"
    for round_ in (1, 2, 3):
        pid = saved_pid(tmp_path / "state", "web")
        wait_until(lambda: answers(port), 10, "the server to answer")
        killed = time.time()
        os.kill(pid, signal.SIGKILL)
        exited = d.wait_for("service.exited", count=round_, service="web", timeout=5)[-1]
        assert exited["pid"] == pid and event_time(exited) - killed < 0.1, round_
        d.wait_for("heal.succeeded", count=round_ + 1, service="web", timeout=15)

        def new_pid(old: int = pid) -> bool:
            return saved_pid(tmp_path / "state", "web") != old

        wait_until(new_pid, 10, "the new PID saved")
    dump.unlink()
    d.wait_for("alert.sent", sink="file", timeout=15)
    sent = [json.loads(line) for line in alerts.read_text().splitlines()]
    assert sent[0]["check"] == "dump" and sent[0]["status"] == "firing"
    assert d.stop() == 0
    os.kill(saved_pid(tmp_path / "state", "web"), signal.SIGTERM)  # it outlives vigil
