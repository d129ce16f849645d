"""Check type ``system``: CPU, memory, disks and load, through psutil."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from typing import Any

import psutil

from vigil import Check, ConfigError, Result, Status, above, hookimpl, worst


@dataclass
class SystemOptions:
    warn_pct: float = 80.0
    crit_pct: float = 90.0
    cpu: bool = True
    memory: bool = True
    load: bool = True
    disks: list[str] = field(default_factory=lambda: ["/"])
    #: Load average per core; unset means report only.
    load_warn: float | None = None
    load_crit: float | None = None

    def __post_init__(self) -> None:
        self.disks = [os.path.abspath(os.path.expanduser(d)) for d in self.disks]
        if not 0 < self.warn_pct <= self.crit_pct <= 100:
            raise ConfigError("warn_pct", "need 0 < warn_pct <= crit_pct <= 100")


class System(Check):
    Options = SystemOptions
    options: SystemOptions

    def __init__(self, name: str, options: SystemOptions, timeout: float = 10.0) -> None:
        super().__init__(name, options, timeout)
        # CPU use is measured between two readings. Each check keeps its own: psutil's
        # cpu_percent() shares one baseline per process, which any other caller resets.
        self._cpu = CpuMeter()

    def run(self) -> Result:
        opts = self.options
        usage: dict[str, float] = {}
        if opts.cpu:
            usage["cpu"] = self._cpu.percent()
        if opts.memory:
            usage["memory"] = psutil.virtual_memory().percent
        for path in opts.disks:
            usage[f"disk {path}"] = psutil.disk_usage(path).percent
        statuses = [above(pct, opts.warn_pct, opts.crit_pct) for pct in usage.values()]
        metrics = {_metric(label): pct for label, pct in usage.items()}
        parts = [f"{label} {pct:.0f}%" for label, pct in usage.items()]
        if opts.load:
            load1, load5, load15 = os.getloadavg()
            per_core = load1 / (psutil.cpu_count() or 1)
            statuses.append(above(per_core, opts.load_warn, opts.load_crit))
            metrics |= {"load1": load1, "load5": load5, "load15": load15,
                        "load1_per_core": per_core}
            parts.append(f"load {load1:.2f}")

        status = worst(statuses)
        if status is not Status.OK:
            hot = [p for p, s in zip(parts, statuses, strict=True) if s is status]
            parts = [f"{status.name}: {', '.join(hot)}", *[p for p in parts if p not in hot]]
        return Result(status, ", ".join(parts), metrics)


class CpuMeter:
    """Busy CPU, in percent of all cores, since the previous reading."""

    #: The shortest span worth measuring: a first reading right after start waits this long.
    MIN_SPAN = 0.25

    def __init__(self) -> None:
        self._times = psutil.cpu_times()
        self._at = time.monotonic()

    def percent(self) -> float:
        if (wait := self.MIN_SPAN - (time.monotonic() - self._at)) > 0:
            time.sleep(wait)
        before, self._times, self._at = self._times, psutil.cpu_times(), time.monotonic()
        total = _total(self._times) - _total(before)
        idle = _idle(self._times) - _idle(before)
        return round(max(0.0, min(100.0, 100.0 * (total - idle) / total)), 1) if total else 0.0


def _total(times: Any) -> float:
    # Linux counts guest time inside user time as well: once is enough.
    return float(sum(times) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0))


def _idle(times: Any) -> float:
    return float(times.idle + getattr(times, "iowait", 0.0))


def _metric(label: str) -> str:
    # "disk /" -> disk_root_pct, "disk /var/lib" -> disk_var_lib_pct
    kind, _, path = label.partition(" ")
    if not path:
        return f"{kind}_pct"
    return f"{kind}_{re.sub(r'[^a-zA-Z0-9]+', '_', path).strip('_') or 'root'}_pct"


@hookimpl
def vigil_check_types(register):
    register("system", System)
