"""Check type ``process``: is a program running, by name, command line or pidfile."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from vigil import Check, ConfigError, RegisterCheck, Result, Status, hookimpl


@dataclass
class ProcessOptions:
    #: The process name (as `ps -o comm` shows it).
    name: str | None = None
    #: A regular expression searched in the full command line.
    match: str | None = None
    #: A pidfile; with `name`, the PID must also belong to a process of that name.
    pidfile: str | None = None
    min_count: int = 1
    max_count: int | None = None

    def __post_init__(self) -> None:
        if not (self.name or self.match or self.pidfile):
            raise ConfigError("name", "set at least one of name, match or pidfile")
        if self.match:
            try:
                re.compile(self.match)
            except re.error as exc:
                raise ConfigError("match", f"not a valid regular expression: {exc}") from None


class Process(Check):
    Options = ProcessOptions
    options: ProcessOptions
    metrics = ("count", "rss_bytes", "uptime_s")

    def run(self) -> Result:
        if self.options.pidfile:
            return self._by_pidfile(Path(self.options.pidfile))
        return self._by_search()

    def _by_search(self) -> Result:
        opts = self.options
        pattern = re.compile(opts.match) if opts.match else None
        found = []
        for proc in psutil.process_iter(["name", "cmdline", "memory_info"]):
            if proc.pid == os.getpid():
                continue
            if opts.name and proc.info["name"] != opts.name:
                continue
            if pattern and not pattern.search(" ".join(proc.info["cmdline"] or [])):
                continue
            found.append(proc)
        what = " and ".join(filter(None, [
            opts.name and f"named {opts.name!r}", opts.match and f"matching {opts.match!r}"]))
        count = len(found)
        metrics = {"count": float(count), "rss_bytes": float(
            sum(p.info["memory_info"].rss for p in found if p.info["memory_info"]))}
        if count < opts.min_count:
            return Result(Status.CRIT, f"{count} processes {what}, expected at least "
                                       f"{opts.min_count}", metrics)
        if opts.max_count is not None and count > opts.max_count:
            return Result(Status.WARN, f"{count} processes {what}, expected at most "
                                       f"{opts.max_count}", metrics)
        pids = ", ".join(str(p.pid) for p in found[:5])
        return Result(Status.OK, f"{count} processes {what} (PID {pids})", metrics)

    def _by_pidfile(self, path: Path) -> Result:
        try:
            text = path.read_text().strip()
            written = path.stat().st_mtime
        except OSError as exc:
            return Result(Status.CRIT, f"cannot read pidfile {path}: {exc.strerror}")
        if not text.isdigit():
            return Result(Status.CRIT, f"pidfile {path} holds {text[:20]!r}, not a PID")
        pid = int(text)
        try:
            proc = psutil.Process(pid)
            name, started = proc.name(), proc.create_time()
            rss = float(proc.memory_info().rss)
        except psutil.NoSuchProcess:
            return Result(Status.CRIT, f"stale pidfile {path}: no process {pid}")
        except psutil.Error as exc:
            return Result(Status.UNKNOWN, f"cannot inspect PID {pid}: {exc}")
        if self.options.name and name != self.options.name:
            return Result(Status.CRIT, f"stale pidfile {path}: PID {pid} is now {name!r}, "
                                       f"not {self.options.name!r}")
        # A process younger than its pidfile got a recycled PID (1 s of clock slack).
        if started > written + 1:
            return Result(Status.CRIT, f"stale pidfile {path}: PID {pid} ({name}) started "
                                       "after the pidfile was written")
        uptime = time.time() - started
        return Result(Status.OK, f"PID {pid} ({name}) running for {uptime:.0f}s",
                      {"uptime_s": round(uptime, 1), "rss_bytes": rss})


@hookimpl
def vigil_check_types(register: RegisterCheck) -> None:
    register("process", Process)
