"""Where vigil looks for its config and keeps its state, per platform."""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP = "vigil"


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def config_dir() -> Path:
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / APP
    if _is_root():
        return Path("/etc") / APP
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / APP


def default_state_dir() -> Path:
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / APP / "state"
    if _is_root():
        return Path("/var/lib") / APP
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / APP


def runtime_dir() -> Path:
    """Where running daemons say what they run with (see ``vigil._agent.runtime``): the same for
    a daemon under the service manager and an operator's shell, so not $XDG_RUNTIME_DIR
    for root, whose shells may have one that services do not."""
    if sys.platform != "darwin" and _is_root():
        return Path("/run") / APP
    if sys.platform != "darwin" and os.environ.get("XDG_RUNTIME_DIR"):
        return Path(os.environ["XDG_RUNTIME_DIR"]) / APP
    return default_state_dir() / "running"


def config_candidates(explicit: str | None) -> list[tuple[Path, bool]]:
    """(path, must_exist) in lookup order: -c, $VIGIL_CONFIG, ./config.toml, config dir."""
    if explicit:
        return [(Path(explicit), True)]
    candidates = []
    if env := os.environ.get("VIGIL_CONFIG"):
        candidates.append((Path(env), True))
    candidates += [(Path("config.toml"), False), (config_dir() / "config.toml", False)]
    return candidates
