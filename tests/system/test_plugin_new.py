"""`vigil plugin new`: the plugin guide's two lines, run as written in a fresh virtual
environment where vigil was installed as the README's quick start installs it: the
package installs, passes its own tests and `mypy --strict`, and works in a daemon: its
check, its service manager (each death seen by its watch) and its alert sink."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from tests.helpers import ROOT, answers, event_time, free_port, saved_pid, wait_until

#: What a checkout holds that vigil's install does not read.
NOT_BUILT = shutil.ignore_patterns(".*", "build", "*.egg-info", "__pycache__", "tests", "docs")


def fresh_venv(folder: Path) -> Path:
    """A new virtual environment that sees this one's packages (vigil's dependencies,
    pip, pytest, mypy) on a plain path, so that not this one's vigil (an editable install,
    which its own .pth file adds): its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True,
                   timeout=60)
    python = folder / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; "
                           "print(sysconfig.get_paths()['purelib'])"], capture_output=True,
                          text=True, check=True).stdout.strip()
    Path(site, "beside.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def run_as_written(python: Path, line: str, cwd: Path) -> Path:
    """One line of the guide, in the fresh environment (`pip`, `pytest`, `mypy` and
    `vigil` are its python's modules): each command joined by && must succeed; the
    folder a `cd` leaves it in."""
    for command in line.split(" && "):
        argv = shlex.split(command)
        if argv[0] == "cd":
            cwd = cwd / argv[1]
            continue
        done = subprocess.run([str(python), "-m", *argv], cwd=cwd, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"
    return cwd


def test_a_new_plugin_installs_passes_its_tests_and_works_in_a_daemon(
        tmp_path: Path, write_config, daemon) -> None:
    python = fresh_venv(tmp_path / "venv")
    # vigil, from a copy of this checkout, with the README's own install command.
    [install] = re.findall(r"\.venv/bin/pip (install [^&]*-e \.) &&",
                           (ROOT / "README.md").read_text())
    checkout = tmp_path / "vigil"
    shutil.copytree(ROOT, checkout, ignore=NOT_BUILT)
    run_as_written(python, f"pip {install}", checkout)
    guide = (ROOT / "plugins" / "README.md").read_text()
    [steps] = re.findall(r"## A plugin in one command\n\n```\n(.*?)```", guide, re.S)
    make, build = steps.splitlines()
    assert make.startswith("vigil plugin new backups ") and build.startswith("cd vigil-")
    run_as_written(python, make, tmp_path)
    assert sorted(p.name for p in (tmp_path / "vigil-backups").iterdir()) == [
        "README.md", "pyproject.toml", "tests", "vigil_backups.py"]
    package = run_as_written(python, build, tmp_path)
    readme = (package / "README.md").read_text()
    # The package's own README says the same steps, and links to nothing bare.
    assert "```\npip install -e '.[test]'\npytest\nmypy --strict vigil_backups.py\n```" in readme
    assert not re.search(r"\]\(https?://[^/)]+/?\)", readme), readme
    again = subprocess.run([str(python), "-m", "vigil", "plugin", "new", "backups"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=60)
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
