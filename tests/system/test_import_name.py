"""The import name is `vigil`, whether installed editable or from a wheel, and it lives
beside python-daemon, whose import name is `daemon`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT, run_vigil
from vigil._config.plugins import BUILTIN_PLUGINS

PUBLIC = "from vigil import hookimpl, Check, Result, Status; print(Check.__module__)"


def python(code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    # From a folder of its own, so that the checkout's folders cannot be what is imported.
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, **env}, timeout=60, check=False)


def test_public_api_and_python_m_vigil(tmp_path: Path) -> None:
    done = python(PUBLIC, tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == "vigil._api.check", done.stderr
    listed = subprocess.run([sys.executable, "-m", "vigil", "plugins", "--json"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=60)
    names = {p["name"] for p in json.loads(listed.stdout)}
    assert {"vigil.plugins.system", "vigil.service.systemd"} <= names


def test_python_daemon_beside_vigil_breaks_nothing(tmp_path: Path) -> None:
    # tests/run.sh installs python-daemon into the test environment for this test.
    done = python("import daemon, daemon.pidfile; print(daemon.DaemonContext.__name__)",
                  tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == "DaemonContext", (
        "python-daemon is missing: pip install python-daemon (tests/run.sh does)")
    assert python(PUBLIC, tmp_path).returncode == 0
    listed = run_vigil("plugins", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    builtin = [p for p in json.loads(listed.stdout) if p["origin"] == "builtin"]
    assert len(builtin) == len(BUILTIN_PLUGINS)


def test_a_wheel_install_maps_the_folders_onto_vigil(tmp_path: Path) -> None:
    source = tmp_path / "src"
    for name in ("pyproject.toml", "README.md"):
        source.mkdir(exist_ok=True)
        shutil.copy(ROOT / name, source / name)
    for folder in ("daemon", "plugins", "service"):
        shutil.copytree(ROOT / folder, source / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                            "--no-build-isolation", str(source), "-w", str(tmp_path / "dist")],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    wheel = next((tmp_path / "dist").glob("vigil_daemon-*.whl"))
    site = tmp_path / "site"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                                "--target", str(site), str(wheel)],
                               capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr
    code = ("import importlib.resources as r, vigil, vigil.plugins.tcp, vigil.service.systemd;"
            "print(vigil.__file__);"
            "print(all((r.files(p) / f).is_file() for p, f in [('vigil._config', 'defaults.toml'),"
            "('vigil._web', 'status.js'), ('vigil.plugins', 'README.md'),"
            "('vigil.service', 'vigil.service')]))")
    done = python(code, tmp_path, PYTHONPATH=str(site))
    assert done.returncode == 0, done.stderr
    where, data = done.stdout.split()
    assert Path(where).is_relative_to(site) and data == "True"
    assert not (site / "daemon").exists() and not (site / "plugins").exists()
