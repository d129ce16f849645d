"""Nagios performance data: ``'label'=value[UOM];warn;crit;min;max``.

vigil puts units in metric names (``latency_ms``); perfdata puts them after the value
(``latency=12ms``). These two functions translate, so that a metric survives a round
trip through ``vigil check`` and the ``exec`` check type."""

from __future__ import annotations

import re

# metric-name suffix -> Nagios unit of measure
_SUFFIX_UOM = {"_ms": "ms", "_us": "us", "_s": "s", "_pct": "%", "_bytes": "B", "_count": "c"}
_UOM_SCALE = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
_ITEM = re.compile(r"""('(?:[^']|'')+'|[^\s=']+)=([-+]?[\d.]+(?:[eE][-+]?\d+)?)([a-zA-Z%]*)(\S*)""")


def format_perfdata(metrics: dict[str, float]) -> str:
    items = []
    for name, value in metrics.items():
        label, uom = name, ""
        for suffix, unit in _SUFFIX_UOM.items():
            if name.endswith(suffix) and len(name) > len(suffix):
                label, uom = name[: -len(suffix)], unit
                break
        if not re.fullmatch(r"[\w.\-/:]+", label):
            label = "'" + label.replace("'", "''") + "'"
        items.append(f"{label}={_number(value)}{uom}")
    return " ".join(items)


def parse_perfdata(text: str) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for label, value, uom, _thresholds in _ITEM.findall(text):
        label = label.strip("'").replace("''", "'")
        name = re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_") or (
            "root" if label == "/" else "value")
        number = float(value)
        if uom.upper() in _UOM_SCALE:
            number, suffix = number * _UOM_SCALE[uom.upper()], "_bytes"
        else:
            suffix = {"ms": "_ms", "us": "_us", "s": "_s", "%": "_pct", "c": "_count"}.get(uom, "")
        metrics[name + suffix] = number
    return metrics


def split_plugin_output(output: str) -> tuple[str, dict[str, float]]:
    """A Nagios plugin's first line as (summary, metrics); perfdata after ``|`` on any
    line (long output may carry more) is collected too."""
    lines = output.strip().splitlines() or [""]
    summary, _, perf = lines[0].partition("|")
    metrics = parse_perfdata(perf)
    for line in lines[1:]:
        if "|" in line:
            metrics.update(parse_perfdata(line.split("|", 1)[1]))
    return summary.strip(), metrics


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.6g}"
