"""What makes a ``[slos.NAME]`` section (``SloSpec``) wrong: its objective, window,
checks and SLI."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import Any

from vigil._api.ladder import LATENCY_LADDER_MS as LADDER_MS
from vigil._config.sections import CheckSpec
from vigil._kit.durations import format_duration

#: The longest window a burn alert looks back over: an objective's window is at least
#: this long, or its slowest alert would look past it.
LONGEST_ALERT_WINDOW = 3 * 86400


def parse_objective(value: object) -> float:
    """A fraction from ``"99.9%"`` (or ``0.999``); ValueError saying what was expected."""
    fraction: float | None = None
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            # Rounded: 99.9 / 100 is 0.9990000000000001 in binary.
            fraction = round(float(value.strip()[:-1]) / 100, 12)
        except ValueError:
            fraction = None
    elif isinstance(value, int | float) and not isinstance(value, bool) and value < 1:
        fraction = float(value)
    if fraction is None or not 0 < fraction < 1:
        raise ValueError(f"expected a percentage under 100% such as \"99.9%\", got {value!r}")
    return fraction


def problems(values: dict[str, Any], checks: Mapping[str, CheckSpec], keep: float | None,
             ) -> list[tuple[str, str]]:
    """What is wrong with an objective's keys: (key, message) pairs. Fills in ``target``,
    ``covers`` and ``runs_per_s`` in ``values`` as it goes."""
    found: list[tuple[str, str]] = []
    try:
        values["target"] = parse_objective(values.get("objective"))
    except ValueError as exc:
        found.append(("objective", str(exc)))
    found += _window(values.get("window", 0.0), keep)
    patterns = values.get("checks") or ([values["check"]] if values.get("check") else [])
    covers = sorted(n for n in checks if any(fnmatch.fnmatchcase(n, p) for p in patterns))
    values["covers"] = covers
    values["runs_per_s"] = sum(1 / checks[n].interval for n in covers if checks[n].enabled)
    if values.get("checks") and values.get("check"):
        found.append(("check", "set check or checks, not both"))
    elif not patterns:
        found.append(("checks", 'name what it covers: check = "db" or checks = ["db*"]'))
    elif checks and not covers:
        found.append(("checks" if values.get("checks") else "check",
                      f"matches no configured check (checks: {', '.join(sorted(checks))})"))
    return found + _sli(values, [checks[name] for name in covers])


def _window(window: float, keep: float | None) -> list[tuple[str, str]]:
    if keep is None:
        return [("window", "objectives are computed from the history: it needs "
                           "[daemon] history = true")]
    if window > keep:
        return [("window", f"{format_duration(window)} is longer than [daemon] history_keep "
                           f"({format_duration(keep)}): the history would not reach back "
                           "that far")]
    if window < LONGEST_ALERT_WINDOW:
        return [("window", f"must be at least {format_duration(LONGEST_ALERT_WINDOW)}: the "
                           "slowest burn alert looks back that far")]
    return []


def _sli(values: Mapping[str, Any], covered: list[CheckSpec]) -> list[tuple[str, str]]:
    sli, threshold = values.get("sli", "availability"), values.get("threshold")
    found: list[tuple[str, str]] = []
    if values.get("budgeting", "occurrences") != "occurrences" and sli != "availability":
        found.append(("budgeting", "timeslices are for availability objectives"))
    if sli == "latency" and threshold is None:
        found.append(("threshold", 'a latency objective needs one, such as "100ms"'))
    if sli == "availability" and threshold is not None:
        found.append(("threshold", "is for latency and events objectives"))
    if threshold is not None and round(threshold * 1000) not in LADDER_MS:
        found.append(("threshold", f"must be on the history's latency ladder (ms): "
                                   f"{', '.join(map(str, LADDER_MS))}"))
    if sli != "events":
        if values.get("group") is not None:
            found.append(("group", "is for events objectives"))
        return found
    for spec in covered:
        options = spec.check.options
        if spec.type != "events":
            found.append(("sli", f"events objectives cover events checks; {spec.name!r} is "
                                 f"of type {spec.type!r}"))
        elif threshold is not None and not getattr(options, "latency_field", None):
            found.append(("threshold", f"check {spec.name!r} has no latency_field"))
        elif values.get("group") is not None and not getattr(options, "group_by", None):
            found.append(("group", f"check {spec.name!r} has no group_by"))
    return found
