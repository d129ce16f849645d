"""Check type ``system``: CPU, memory, disks and load, through psutil."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import psutil

from daemon import Check, ConfigError, Result, Status, hookimpl
from plugins.thresholds import above, worst


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
        # psutil measures CPU between two calls; this first one sets the baseline.
        psutil.cpu_percent(interval=None)

    def run(self) -> Result:
        opts = self.options
        usage: dict[str, float] = {}
        if opts.cpu:
            usage["cpu"] = psutil.cpu_percent(interval=None)
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


def _metric(label: str) -> str:
    # "disk /" -> disk_root_pct, "disk /var/lib" -> disk_var_lib_pct
    kind, _, path = label.partition(" ")
    if not path:
        return f"{kind}_pct"
    return f"{kind}_{re.sub(r'[^a-zA-Z0-9]+', '_', path).strip('_') or 'root'}_pct"


@hookimpl
def vigil_check_types(register):
    register("system", System)
