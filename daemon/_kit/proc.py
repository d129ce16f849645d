"""Run a command: always an argv list, never a shell, always with a timeout."""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import threading
import time
from dataclasses import dataclass

#: Process groups of the commands running now, so that the daemon can stop them all on
#: its way out: a check's process must never outlive vigil.
_running: set[int] = set()
_running_lock = threading.Lock()


@dataclass
class CommandResult:
    argv: list[str]
    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool
    duration_s: float


def run_command(argv: list[str], timeout: float, max_output: int = 65536,
                env: dict[str, str] | None = None, keep_tail: bool = False,
                stdin: bytes | None = None) -> CommandResult:
    """Run ``argv`` in a process group of its own and keep at most ``max_output`` bytes
    of each stream: the first ones, or with ``keep_tail`` the last ones (where a failing
    service manager says why); ``stdin`` is written to its standard input. On timeout
    the whole group is killed, grandchildren included."""
    start = time.monotonic()
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True, close_fds=True, env=env,
    )
    with _running_lock:
        _running.add(proc.pid)
    if stdin is not None:
        # Its own thread: a program that reads nothing must not block the reading of
        # its output (nor outlive its timeout).
        threading.Thread(target=_feed, args=(proc, stdin), daemon=True).start()
    try:
        return _collect(proc, argv, start, timeout, max_output, keep_tail)
    finally:
        with _running_lock:
            _running.discard(proc.pid)


def _feed(proc: subprocess.Popen[bytes], data: bytes) -> None:
    assert proc.stdin is not None
    with contextlib.suppress(OSError):
        proc.stdin.write(data)
    with contextlib.suppress(OSError):
        proc.stdin.close()


def _collect(proc: subprocess.Popen[bytes], argv: list[str], start: float, timeout: float,
             max_output: int, keep_tail: bool) -> CommandResult:
    assert proc.stdout is not None and proc.stderr is not None
    kept = {proc.stdout: bytearray(), proc.stderr: bytearray()}
    timed_out = False
    with selectors.DefaultSelector() as sel:
        for stream in kept:
            sel.register(stream, selectors.EVENT_READ)
        deadline = start + timeout
        while sel.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                # The child may have exited while a grandchild still holds the pipe.
                timed_out = proc.poll() is None
                kill_process_group(proc.pid)
                break
            for key, _ in sel.select(remaining):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                buf = kept[key.fileobj]  # type: ignore[index]  # one of our two pipes
                # Keep draining past the cap, so that a chatty child never blocks on a full pipe.
                if keep_tail:
                    buf += chunk
                    del buf[:-max_output]
                else:
                    buf += chunk[: max(0, max_output - len(buf))]
    if not timed_out:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            timed_out = True
    if timed_out:
        kill_process_group(proc.pid)
        proc.wait()
    for stream in kept:
        stream.close()
    return CommandResult(
        argv=list(argv), returncode=None if timed_out else proc.returncode,
        stdout=kept[proc.stdout].decode(errors="replace"),
        stderr=kept[proc.stderr].decode(errors="replace"),
        timed_out=timed_out, duration_s=time.monotonic() - start,
    )


def kill_process_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    """Send ``sig`` to every process of the group ``pgid`` (a ``run_command`` child's,
    or a service started in a session of its own); a group already gone is no error."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def stop_all(grace: float = 1.0) -> None:
    """TERM every command still running, KILL what is left after ``grace``."""
    with _running_lock:
        groups = sorted(_running)
    for pgid in groups:
        kill_process_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_group_alive(g) for g in groups):
        time.sleep(0.05)
    for pgid in groups:
        kill_process_group(pgid)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True
