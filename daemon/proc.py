"""Run a command: always an argv list, never a shell, always with a timeout."""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass


@dataclass
class Completed:
    argv: list[str]
    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool
    duration_s: float


def run(argv: list[str], timeout: float, max_output: int = 65536,
        env: dict[str, str] | None = None, keep_tail: bool = False) -> Completed:
    """Run ``argv`` in a process group of its own and keep at most ``max_output`` bytes
    of each stream: the first ones, or with ``keep_tail`` the last ones (where a failing
    service manager says why). On timeout the whole group is killed, grandchildren
    included."""
    start = time.monotonic()
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True, close_fds=True, env=env,
    )
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
                kill_group(proc.pid)
                break
            for key, _ in sel.select(remaining):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                buf = kept[key.fileobj]
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
        kill_group(proc.pid)
        proc.wait()
    for stream in kept:
        stream.close()
    return Completed(
        argv=list(argv), returncode=None if timed_out else proc.returncode,
        stdout=kept[proc.stdout].decode(errors="replace"),
        stderr=kept[proc.stderr].decode(errors="replace"),
        timed_out=timed_out, duration_s=time.monotonic() - start,
    )


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)
