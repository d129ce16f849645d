"""Durations as config writes them: ``250ms``, ``10s``, ``5m``, ``1h`` or plain seconds."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")


class Duration(float):
    """Seconds; the type to give a duration field of a check's ``Options``."""


def parse_duration(value: object) -> Duration:
    """Seconds from a duration; raises ValueError with a message fit for a user."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as '10s', got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        match = _PATTERN.match(value)
        if not match:
            raise ValueError(
                f"bad duration {value!r} (use 250ms, 10s, 5m, 1h or plain seconds)"
            )
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    else:
        raise ValueError(f"expected a duration such as '10s', got {value!r}")
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative, got {value!r}")
    return Duration(seconds)


def format_duration(seconds: float) -> str:
    """Seconds as the config writes them: ``300`` is ``5m``, ``0.25`` is ``250ms``."""
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    for unit in ("d", "h", "m"):
        if seconds >= _UNITS[unit] and seconds % _UNITS[unit] == 0:
            return f"{seconds / _UNITS[unit]:g}{unit}"
    return f"{seconds:g}s"
