"""The persisted state: one JSON file, replaced atomically so that a kill at any moment
leaves either the old or the new file, never a torn one."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import structlog

from vigil import _atomic as atomic

STATE_FILE = "state.json"
VERSION = 1

log = structlog.get_logger("vigil.store")


class Store:
    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir
        self.path = state_dir / STATE_FILE

    def read(self) -> dict[str, Any] | None:
        """The last state written, or None; never raises for a missing file."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        if not isinstance(data, dict):
            raise ValueError("state file does not hold a JSON object")
        return data

    def load(self) -> dict[str, Any]:
        """Read at start: removes temp files a killed writer left, and sets an unreadable
        state file aside (keeping it for inspection) instead of failing."""
        self.dir.mkdir(parents=True, exist_ok=True)
        for leftover in self.dir.glob(f".{STATE_FILE}.*.tmp"):
            leftover.unlink(missing_ok=True)
        try:
            return self.read() or {}
        except (ValueError, OSError) as exc:
            aside = self.path.with_name(f"{STATE_FILE}.unreadable-{int(time.time())}")
            os.replace(self.path, aside)
            log.error("state.unreadable", path=str(self.path), moved_to=str(aside), error=str(exc))
            return {}

    def write(self, data: dict[str, Any]) -> None:
        payload = json.dumps({"version": VERSION, **data}, indent=1, sort_keys=True, default=str)
        atomic.replace_file(self.path, payload.encode("utf-8"), mode=0o600)
