"""Nagios performance data: ``'label'=value[UOM];warn;crit;min;max``.

vigil puts units in metric names (``latency_ms``); perfdata puts them after the value
(``latency=12ms``). These functions translate between the two. A Nagios plugin's own
perfdata is also kept as the plugin wrote it (quoted labels, thresholds, min and max),
so that ``vigil check`` hands it on unchanged."""

from __future__ import annotations

import re
from collections.abc import Iterable

from vigil._kit.redact import redact

# metric-name suffix -> Nagios unit of measure. A rate (``requests_per_s``) has none:
# Nagios has no unit for "per second", and ``s`` would call it a time. ``c`` is Nagios'
# continuous counter.
_SUFFIX_UOM = {"_per_s": "", "_ms": "ms", "_us": "us", "_seconds": "s", "_s": "s", "_pct": "%",
               "_bytes": "B", "_count": "c"}
_UOM_SCALE = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
_ITEM = re.compile(r"""('(?:[^']|'')+'|[^\s=']+)=([-+]?[\d.]+(?:[eE][-+]?\d+)?)([a-zA-Z%]*)(\S*)""")


def format_perfdata(metrics: dict[str, float]) -> str:
    """Metrics as perfdata, one unique label each: ``connections`` and ``connections_pct``
    become ``connections=6 connections_pct=6%``, not two ``connections``."""
    split = {name: _split_unit(name) for name in metrics}
    taken = [label for label, _uom in split.values()]
    items = []
    for name, value in metrics.items():
        label, uom = split[name]
        if uom and taken.count(label) > 1:
            label = name  # the unit stays in the label, where it tells them apart
        if not re.fullmatch(r"[\w.\-/:]+", label):
            label = "'" + label.replace("'", "''") + "'"
        items.append(f"{label}={_number(value)}{uom}")
    return " ".join(items)


def _split_unit(name: str) -> tuple[str, str]:
    """(label, unit): the unit comes off the name, before any labels it ends with
    (``latency_p95_ms{group="QA"}`` is ``latency_p95{group="QA"}`` in ms)."""
    base, brace, labels = name.partition("{")
    for suffix, unit in _SUFFIX_UOM.items():
        if base.endswith(suffix) and len(base) > len(suffix):
            return (base[: -len(suffix)] + brace + labels, unit) if unit else (name, "")
    return name, ""


def parse_perfdata(text: str) -> dict[str, float]:
    """Perfdata as metrics: the unit goes into the name, each name is unique."""
    return _metrics(_ITEM.finditer(text))


def _metrics(items: Iterable[re.Match[str]]) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for item in items:
        label, value, uom, _thresholds = item.groups()
        label = label.strip("'").replace("''", "'")
        name = re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_") or (
            "root" if label == "/" else "value")
        number = float(value)
        if uom.upper() in _UOM_SCALE:
            number, suffix = number * _UOM_SCALE[uom.upper()], "_bytes"
        else:
            suffix = {"ms": "_ms", "us": "_us", "s": "_s", "%": "_pct", "c": "_count"}.get(uom, "")
        unique, n = name + suffix, 1
        while unique in metrics:  # two labels that read alike ("a b" and "a_b")
            n += 1
            unique = f"{name}_{n}{suffix}"
        metrics[unique] = number
    return metrics


def split_plugin_output(output: str) -> tuple[str, dict[str, float], str]:
    """A Nagios plugin's output as (summary, metrics, perfdata): the first line, and the
    perfdata after ``|`` on any line (long output may carry more), both as metrics and as
    the plugin wrote it."""
    lines = output.strip().splitlines() or [""]
    summary, _, perf = lines[0].partition("|")
    # A label may quote a secret ('token=abc'=5): masked before it names a metric.
    chunks = [redact(chunk) for chunk in
              [perf] + [line.split("|", 1)[1] for line in lines[1:] if "|" in line]]
    items = [match for chunk in chunks for match in _ITEM.finditer(chunk)]
    return summary.strip(), _metrics(items), " ".join(m.group(0) for m in items)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.6g}"
