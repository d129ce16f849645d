"""A logger for plugins: its lines go into vigil's own JSON log (or the terminal, for a
command), each naming the plugin, at the level the config sets."""

from __future__ import annotations

import sys
from typing import cast

import structlog


def get_logger(plugin: str | None = None) -> structlog.stdlib.BoundLogger:
    """``get_logger().info("backup.checked", path=path)``: a structured line with
    ``plugin`` set to the calling module's name (or ``plugin``). Name events as vigil
    does, ``noun.verb_ed``; keep secrets out of the fields."""
    if plugin is None:
        plugin = str(sys._getframe(1).f_globals.get("__name__", "plugin"))
    return cast(structlog.stdlib.BoundLogger,
                structlog.get_logger("vigil.plugin").bind(plugin=plugin))
