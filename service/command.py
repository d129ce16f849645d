"""Service manager ``command``: explicit ``start`` and ``stop`` argv lists.

vigil starts the program detached, in a process group of its own, and remembers its
PID (and the PID's start time, so a recycled PID is never mistaken for it). Without a
``stop`` command, stopping signals the whole group: TERM, then KILL after ``stop_grace``.
A ``start`` that exits 0 at once (``pg_ctl start``) is a starter that daemonized its
service; one that keeps running is the service itself."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psutil

from vigil import (
    Action,
    ConfigError,
    Duration,
    RegisterManager,
    ServiceManager,
    hookimpl,
    kill_process_group,
    redact,
    watch_pid,
)

#: How long a start command may take to fail before it counts as running.
SETTLE = 0.5


@dataclass
class CommandOptions:
    start: list[str]
    stop: list[str] | None = None
    stop_grace: Duration = Duration(10)
    #: Where the program's output goes; by default a file in the state folder.
    log: str | None = None
    cwd: str | None = None

    def __post_init__(self) -> None:
        if not self.start:
            raise ConfigError("start", "must name a program: [\"pg_ctl\", \"-D\", \"/srv/pg\", "
                                       "\"start\"]")
        if self.stop == []:
            raise ConfigError("stop", "must name a program, or be left out")


class Command(ServiceManager):
    Options = CommandOptions
    options: CommandOptions

    def __init__(self, name: str, options: CommandOptions, timeout: float = 30.0) -> None:
        super().__init__(name, options, timeout)
        self._child: subprocess.Popen[bytes] | None = None

    def log_path(self) -> str:
        if self.options.log:
            return self.options.log
        if self.state_dir is not None:
            return str(self.state_dir / f"{self.name}.out")
        return os.devnull

    def _open_log(self, path: str) -> int:
        """The program's output file, for appending: readable by vigil's user alone (and
        its group when the state folder is theirs too), never through a symlink."""
        group = self.state_dir is not None and bool(self.state_dir.stat().st_mode & 0o050)
        return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW
                       | os.O_CLOEXEC, 0o640 if group else 0o600)

    def argv(self) -> list[str]:
        """The start command, with ``{port}`` replaced by the port vigil chose."""
        port = str(self.state.get("port", ""))
        return [arg.replace("{port}", port) for arg in self.options.start]

    def port_problem(self) -> str | None:
        if not self.asks_for_port():
            return "put a {port} placeholder in start, where the program takes its port"
        return None

    def asks_for_port(self) -> str | None:
        return "start" if any("{port}" in arg for arg in self.options.start) else None

    def use_port(self, port: int) -> None:
        """The {port} placeholder reads state["port"] at the next start."""

    def start(self) -> Action:
        path = self.log_path()
        began = time.monotonic()
        argv = self.argv()
        try:
            fd = self._open_log(path)
        except OSError as exc:
            why = ("it is a symlink, which vigil does not follow" if exc.errno == errno.ELOOP
                   else exc.strerror or str(exc))
            return Action(argv, 126, f"cannot open its output file {path}: {why}")
        with os.fdopen(fd, "ab") as out:
            try:
                child = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=out,
                    stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
                    cwd=self.options.cwd)
            except OSError as exc:
                return Action(argv, 127, f"cannot run {argv[0]}: {exc.strerror or exc}")
        self._child = child
        self.state.update(pid=child.pid, pgid=child.pid, detached=False,
                          create_time=_create_time(child.pid))
        try:
            code = child.wait(SETTLE)
        except subprocess.TimeoutExpired:
            code = 0  # still running: the program is the service
        else:
            self.state["detached"] = code == 0
        return Action(argv, code, _tail(path),
                      duration_s=time.monotonic() - began)

    def watch(self, exited: Callable[[dict[str, Any]], None]) -> bool:
        """The program running now, through a pidfd on its PID (Linux); vigil asks
        again after every start. Not a starter that daemonized its service, whose PID
        vigil never learns."""
        pid = self.state.get("pid")
        if not pid or self.state.get("detached") or not _alive(pid,
                                                              self.state.get("create_time")):
            return False
        self.stop_watching = watch_pid(pid, lambda: exited(self._seen(pid)))
        return self.stop_watching is not None

    def _seen(self, pid: int) -> dict[str, Any]:
        child = self._child
        code = child.poll() if child is not None and child.pid == pid else None
        return {"pid": pid, "exit_code": code}

    def stop(self) -> Action:
        if self.options.stop:
            action = self.run(self.options.stop)
            self._signal_group(wait_only=True)
            return action
        return self._signal_group()

    def restart(self) -> Action:
        stopped = self.stop()
        started = self.start()
        started.output = "\n".join(filter(None, [stopped.output, started.output]))
        return started

    def is_running(self) -> bool | None:
        if self._child is not None and self._child.poll() is None:
            return True
        if self.state.get("detached"):
            return None  # the starter is gone by design; only the check can tell
        pid = self.state.get("pid")
        if not pid:
            return False
        return _alive(pid, self.state.get("create_time"))

    def start_failed(self) -> dict[str, Any] | None:
        """The started program exited (a starter that daemonized its service exits by
        design, and is not asked)."""
        child = self._child
        if child is None or self.state.get("detached") or child.poll() is None:
            return None
        return {"exit_code": child.returncode, "output": redact(_tail(self.log_path()))}

    def _signal_group(self, wait_only: bool = False) -> Action:
        pgid = self.state.get("pgid")
        argv = ["killpg", "TERM", str(pgid)]
        if not pgid or not _group(pgid):
            return Action(argv, 0, "not running")
        began = time.monotonic()
        deadline = began + (self.timeout if wait_only else self.options.stop_grace)
        if not wait_only:
            kill_process_group(pgid, signal.SIGTERM)
        while _group(pgid) and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.05)
        note = "stopped"
        if _group(pgid):
            kill_process_group(pgid, signal.SIGKILL)
            waited = deadline - began
            after = "the stop command" if wait_only else "TERM"
            note = f"still running {waited:g}s after {after}: sent KILL"
            while _group(pgid) and time.monotonic() < deadline + 5:
                self._reap()
                time.sleep(0.05)
        self._reap()
        return Action(argv, 0, note, duration_s=time.monotonic() - began)

    def _reap(self) -> None:
        if self._child is not None:
            self._child.poll()

    def describe(self) -> str:
        return f"command {self.options.start[0]}"


def _create_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def _alive(pid: int, create_time: float | None) -> bool:
    """Whether the process vigil started still runs: its PID, with the start time it had
    then. Without that time (a state saved by hand or cut short) a PID may be anyone's
    by now, so it is not taken for ours."""
    if create_time is None:
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return abs(proc.create_time() - create_time) < 1
    except psutil.Error:
        return False


def _group(pgid: int) -> list[int]:
    """Live (non-zombie) members of a process group."""
    members = []
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(proc.pid)
        except (OSError, psutil.Error):
            continue
    return members


def _tail(path: str, size: int = 2000) -> str:
    if path == os.devnull:
        return ""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - size))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


@hookimpl
def vigil_service_managers(register: RegisterManager) -> None:
    register("command", Command)
