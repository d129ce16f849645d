"""Where a running daemon says what it runs with: its PID, its state folder and its log.

``vigil status`` and ``vigil logs`` look here first, so that they find the daemon that
runs even when the config on disk has changed since it started (a new ``state_dir``
waiting for a restart) or is broken (a reload was rejected and the old config kept).
One small JSON file per config file, in the runtime folder (``/run/vigil`` for root)."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import cast

import psutil

from vigil._kit import atomic
from vigil._kit.digest import sha256_hex
from vigil._kit.paths import runtime_dir
from vigil._store.records import DaemonInfo


def _entry(source: str) -> Path:
    # One daemon per config file: key on the file's absolute path.
    key = source if source.startswith("<") else str(Path(source).resolve())
    return runtime_dir() / f"{sha256_hex(key, 16)}.json"


def announce(source: str, identity: DaemonInfo, state_dir: Path, log_file: str) -> None:
    """Say (again, after a reload) what this daemon runs with; clear out dead entries."""
    folder = runtime_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    for old in folder.glob("*.json"):
        with contextlib.suppress(OSError, ValueError):
            if not daemon_alive(json.loads(old.read_text())):
                old.unlink()
    entry: DaemonInfo = {**identity, "config": source, "state_dir": str(state_dir),
                         "log_file": log_file}
    atomic.replace_file(_entry(source), json.dumps(entry).encode(), mode=0o600)


def withdraw(source: str) -> None:
    with contextlib.suppress(OSError):
        _entry(source).unlink()


def find(source: str) -> DaemonInfo | None:
    """What the live daemon of this config file runs with, or None when none runs."""
    try:
        entry = json.loads(_entry(source).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(entry, dict):
        return None
    # Written by a daemon of this vigil; daemon_alive takes any junk for a dead one.
    info = cast(DaemonInfo, entry)
    return info if daemon_alive(info) else None


def daemon_alive(info: DaemonInfo) -> bool:
    """Whether the daemon that wrote this state still runs."""
    # The PID alone could have been reused by another program since.
    try:
        proc = psutil.Process(int(info["pid"]))
        return abs(proc.create_time() - float(info["create_time"])) < 1 and (
            proc.pid != os.getpid())
    except (KeyError, ValueError, TypeError, psutil.Error):
        return False
