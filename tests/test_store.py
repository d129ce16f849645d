"""The state file survives a fault inside its own write: a kill between the temp file and
the rename, a failing fsync, a failing rename."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from vigil import _atomic
from vigil._store import Store

pytestmark = pytest.mark.unit

OLD = {"checks": {"a": {"state": "FAILING"}}}


def saved(tmp_path: Path) -> Store:
    store = Store(tmp_path)
    store.write(OLD)
    return store


@pytest.mark.parametrize("fault", ["fsync", "replace"])
def test_a_failing_write_keeps_the_old_file_and_no_temp(tmp_path, monkeypatch, fault) -> None:
    store = saved(tmp_path)

    def fail(*_args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_atomic.os, fault, fail)
    with pytest.raises(OSError, match="No space left"):
        store.write({"checks": {}})
    monkeypatch.undo()
    assert store.read() == {"version": 1, **OLD}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


@pytest.mark.parametrize("moment", ["fsync", "replace"])
def test_a_kill_inside_the_write_leaves_the_old_file_readable(tmp_path, moment) -> None:
    saved(tmp_path)
    # A process that dies by SIGKILL at the named step of its own write.
    code = ("import os, pathlib, signal, sys\nfrom vigil import _atomic\n"
            "from vigil._store import Store\n"
            "def die(*a): os.kill(os.getpid(), signal.SIGKILL)\n"
            f"_atomic.os.{moment} = die\n"
            "Store(pathlib.Path(sys.argv[1])).write({'checks': {}})\n")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], timeout=30, check=False)
    assert done.returncode == -signal.SIGKILL
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "state.json"]
    assert leftovers and all(n.startswith(".state.json.") for n in leftovers)
    store = Store(tmp_path)
    assert store.load() == {"version": 1, **OLD}  # and the start sweeps the temp file up
    assert sorted(os.listdir(tmp_path)) == ["state.json"]
    assert json.loads((tmp_path / "state.json").read_text())["checks"] == OLD["checks"]
