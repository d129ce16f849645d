"""Check type ``system``: CPU, memory, disks and load, through psutil; and when a disk
or the memory will be full at the rate it fills now (a least-squares line through the
last hours' readings, as Prometheus's ``predict_linear``)."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from typing import Any

import psutil

from vigil import (
    Check,
    ConfigError,
    Duration,
    RegisterCheck,
    Result,
    Status,
    above,
    hookimpl,
    worst,
)


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
    #: WARN when a disk or the memory will be full sooner than this at the current rate
    #: ("0s": no forecast), fitted over the readings of the last ``forecast_window``.
    forecast_warn: Duration = Duration(86400)
    forecast_window: Duration = Duration(6 * 3600)

    def __post_init__(self) -> None:
        self.disks = [os.path.abspath(os.path.expanduser(d)) for d in self.disks]
        if not 0 < self.warn_pct <= self.crit_pct <= 100:
            raise ConfigError("warn_pct", "need 0 < warn_pct <= crit_pct <= 100")


class System(Check):
    Options = SystemOptions
    options: SystemOptions
    metrics = ("cpu_pct", "memory_pct", "disk_*_pct", "disk_*_full_in_seconds",
               "memory_full_in_seconds", "load1", "load5", "load15", "load1_per_core")

    def __init__(self, name: str, options: SystemOptions, timeout: float = 10.0) -> None:
        super().__init__(name, options, timeout)
        # CPU use is measured between two readings. Each check keeps its own: psutil's
        # cpu_percent() shares one baseline per process, which any other caller resets.
        self._cpu = CpuMeter()
        self.forecasts: dict[str, Forecast] = {}

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

        if opts.forecast_warn:
            for label, pct in usage.items():
                if label == "cpu":
                    continue
                forecast = self.forecasts.setdefault(label, Forecast(opts.forecast_window))
                forecast.add(time.time(), pct)
                full_in = forecast.full_in()
                if full_in is not None:
                    metrics[_metric(label).replace("_pct", "_full_in_seconds")] = round(full_in)
                if full_in is not None and full_in < opts.forecast_warn:
                    statuses.append(Status.WARN)
                    parts.append(f"{label} full in about {_about(full_in)}")
        status = worst(statuses)
        if status is not Status.OK:
            hot = [p for p, s in zip(parts, statuses, strict=True) if s is status]
            parts = [f"{status.name}: {', '.join(hot)}", *[p for p in parts if p not in hot]]
        return Result(status, ", ".join(parts), metrics)


class Forecast:
    """Readings of one percentage over a window, and when the line through them reaches
    100%."""

    #: Readings closer together than this count once: a check every few seconds keeps
    #: a few hundred readings over hours, not thousands.
    EVERY = 60.0
    #: The fit needs this many readings spanning this much time before it says anything.
    MIN_READINGS, MIN_SPAN = 5, 1800.0

    def __init__(self, window: float) -> None:
        self.window = window
        self.readings: list[tuple[float, float]] = []

    def add(self, at: float, pct: float) -> None:
        if self.readings and at - self.readings[-1][0] < self.EVERY:
            self.readings[-1] = (self.readings[-1][0], pct)
        else:
            self.readings.append((at, pct))
        while self.readings and at - self.readings[0][0] > self.window:
            self.readings.pop(0)

    def full_in(self) -> float | None:
        """Seconds until 100% at the fitted rate; None when it is not filling up (or
        too few readings say so)."""
        n = len(self.readings)
        if n < self.MIN_READINGS or self.readings[-1][0] - self.readings[0][0] < self.MIN_SPAN:
            return None
        mean_t = sum(t for t, _ in self.readings) / n
        mean_p = sum(p for _, p in self.readings) / n
        spread = sum((t - mean_t) ** 2 for t, _ in self.readings)
        slope = sum((t - mean_t) * (p - mean_p) for t, p in self.readings) / spread
        if slope <= 0:
            return None
        now = self.readings[-1][0]
        return max(0.0, (100.0 - (mean_p + slope * (now - mean_t))) / slope)


def _about(seconds: float) -> str:
    return f"{seconds / 3600:.0f} h" if seconds >= 5400 else f"{seconds / 60:.0f} min"


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
def vigil_check_types(register: RegisterCheck) -> None:
    register("system", System)
