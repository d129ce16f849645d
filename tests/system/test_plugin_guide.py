"""plugins/README.md's examples, built, installed and run exactly as written there; and
every hook documented and exercised."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers import ROOT, free_port, run_vigil, wait_until

GUIDE = ROOT / "plugins" / "README.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", GUIDE.read_text(), re.S)


def test_smallest_plugin_works_exactly_as_written(tmp_path: Path) -> None:
    (tmp_path / "always.py").write_text(blocks("python")[0])
    config = tmp_path / "config.toml"
    config.write_text(blocks("toml")[0].replace("[daemon]", '[daemon]\nstate_dir = "s"'))
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = run_vigil("check", "demo", "-c", str(config), env=env)
    assert done.stdout.strip() == "demo WARN - it works"
    assert done.returncode == 1


def test_worked_example_installs_through_the_entry_point_group(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "vigil_backup_age.py").write_text(blocks("python")[1])
    (package / "pyproject.toml").write_text(blocks("toml")[1])
    site = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
         "--no-build-isolation", "--target", str(site), str(package)],
        capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    env = {**os.environ, "PYTHONPATH": str(site)}
    # The types the guide annotates with are the public API's, and hold under --strict.
    typed = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
         "--cache-dir", str(tmp_path / "mypy"), str(site / "vigil_backup_age.py")],
        capture_output=True, text=True, timeout=300)
    assert typed.returncode == 0, typed.stdout
    # Its own tests, as the guide writes them: vigil.testing and the installed package.
    tests = next(b for b in blocks("python") if "from vigil.testing import" in b)
    (tmp_path / "own").mkdir()
    (tmp_path / "own" / "test_backup_age.py").write_text(tests)
    own = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "test_backup_age.py"], cwd=tmp_path / "own", env=env,
                         capture_output=True, text=True, timeout=120)
    assert own.returncode == 0 and "2 passed" in own.stdout, own.stdout + own.stderr

    backup = tmp_path / "db.dump"
    backup.write_text("data")
    config = tmp_path / "config.toml"
    config.write_text('[daemon]\nstate_dir = "s"\n' +
                      blocks("toml")[2].replace("/var/backups/db.dump", str(backup)))

    listed = json.loads(run_vigil("plugins", "--json", "-c", str(config), env=env).stdout)
    plugin = next(p for p in listed if p["name"] == "backup_age")
    assert plugin["origin"] == "entry point of vigil-backup-age 0.1.0"
    assert plugin["check_types"] == ["file_age"] and plugin["error"] is None
    text = run_vigil("plugins", "-c", str(config), env=env).stdout
    # Its long origin keeps the column of what each plugin offers in line.
    assert len({line.index("check types:") for line in text.splitlines()
                if "check types:" in line}) == 1, text

    fresh = run_vigil("check", "nightly_backup", "-c", str(config), env=env)
    assert fresh.returncode == 0 and fresh.stdout.startswith("nightly_backup OK - "), fresh
    stale = time.time() - 25.5 * 3600
    os.utime(backup, (stale, stale))
    assert run_vigil("check", "nightly_backup", "-c", str(config), env=env).returncode == 1
    os.utime(backup, (stale - 3600, stale - 3600))
    assert run_vigil("check", "nightly_backup", "-c", str(config), env=env).returncode == 2
    backup.unlink()
    missing = run_vigil("check", "nightly_backup", "-c", str(config), env=env)
    assert missing.returncode == 2 and "is missing" in missing.stdout

    config.write_text(config.read_text().replace('warn_age = "25h"', 'warn_age = "27h"'))
    invalid = run_vigil("config", "validate", "-c", str(config), env=env)
    assert invalid.returncode == 1
    assert ":7: checks.nightly_backup.warn_age: must not be longer than max_age" in invalid.stderr


def test_every_whole_example_passes_mypy_strict(tmp_path: Path) -> None:
    # Each example that is a whole module, as its own file; the fragments (one method,
    # one hook) are annotated alike but need the module around them.
    names = {"class Always(": "always", "class FileAge(": "vigil_backup_age",
             "from vigil.testing import": "test_backup_age", "class Docker(": "vigil_docker",
             "class Chat(": "vigil_chat"}
    written = []
    for block in blocks("python"):
        name = next((n for marker, n in names.items() if marker in block), None)
        if name is not None:
            (tmp_path / f"{name}.py").write_text(block)
            written.append(str(tmp_path / f"{name}.py"))
    assert len(written) == len(names), written
    typed = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
         "--cache-dir", str(tmp_path / "mypy"), *written],
        capture_output=True, text=True, timeout=300)
    assert typed.returncode == 0, typed.stdout


def test_service_manager_example_registers_and_validates(tmp_path: Path) -> None:
    example = next(b for b in blocks("python") if "class Docker(ServiceManager)" in b)
    (tmp_path / "vigil_docker.py").write_text(example)
    config = tmp_path / "config.toml"
    config.write_text('[daemon]\nstate_dir = "s"\nplugins = ["vigil_docker"]\n'
                      '[services.cache]\nmanager = "docker"\ncontainer = "redis"\n')
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    listed = json.loads(run_vigil("plugins", "--json", "-c", str(config), env=env).stdout)
    assert next(p for p in listed if p["name"] == "vigil_docker")["service_managers"] == [
        "docker"]
    assert run_vigil("config", "validate", "-c", str(config), env=env).returncode == 0
    config.write_text(config.read_text().replace("container", "contianer"))
    bad = run_vigil("config", "validate", "-c", str(config), env=env)
    assert ":6: services.cache.contianer: unknown option (known: container)" in bad.stderr


def test_alert_sink_example_delivers_an_alert_from_a_daemon(tmp_path: Path, daemon, receiver,
                                                           monkeypatch) -> None:
    example = next(b for b in blocks("python") if "class Chat(AlertSink)" in b)
    (tmp_path / "vigil_chat.py").write_text(example)
    section = next(b for b in blocks("toml") if "[alerts.team]" in b)
    config = tmp_path / "config.toml"
    config.write_text('[daemon]\nstate_dir = "s"\nhttp = ""\nplugins = ["vigil_chat"]\n'
                      f'[checks.db]\ntype = "tcp"\nport = {free_port()}\nfall = 1\n'
                      + section.replace("https://chat.example.com/hooks/abc",
                                        receiver.url("/hooks/abc")))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    d = daemon(config).start()
    wait_until(lambda: receiver.posts, 10, "the chat sink's message")
    body = receiver.at("/hooks/abc")[0]
    assert body["channel"] == "#db" and body["text"].startswith("[FIRING] db on ")
    d.wait_for("alert.sent", sink="team", type="chat")
