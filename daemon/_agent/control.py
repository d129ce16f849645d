"""The daemon's control socket: how ``vigil heal`` reaches a running daemon.

A UNIX stream socket in the state folder, mode 0600 (only vigil's own user may talk
to it). One JSON request per connection; the answer is JSON lines: progress events as
they happen, then a final line with ``"done": true``."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

SOCKET = "control.sock"
MAX_REQUEST = 65536

log = structlog.get_logger("vigil.control")

#: One JSON line of the control protocol: a request, a step of its progress, or the
#: answer (``done``). Free-form: each command says its own.
Message = dict[str, Any]
Send = Callable[[Message], None]
Handler = Callable[[Message, Send], Message]


class ControlServer:
    def __init__(self, state_dir: Path, handle: Handler) -> None:
        self.path = state_dir / SOCKET
        self._handle = handle
        self._sock: socket.socket | None = None

    def start(self) -> bool:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            old = os.umask(0o177)
            try:
                sock.bind(str(self.path))
            finally:
                os.umask(old)
            sock.listen(8)
        except OSError as exc:
            sock.close()
            log.error("control.unavailable", path=str(self.path), error=str(exc),
                      hint="vigil heal cannot reach this daemon; shorten state_dir")
            return False
        self._sock = sock
        threading.Thread(target=self._serve, name="control", daemon=True).start()
        return True

    def stop(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    def _serve(self) -> None:
        while self._sock is not None:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                request = json.loads(conn.makefile("rb").readline(MAX_REQUEST))
                conn.settimeout(None)

                def send(message: Message) -> None:
                    conn.sendall(json.dumps(message, default=str).encode() + b"\n")

                final = self._handle(request, send) if isinstance(request, dict) else {
                    "ok": False, "error": "a request is one JSON object"}
                send({**final, "done": True})
            except (OSError, ValueError) as exc:
                with contextlib.suppress(OSError):
                    conn.sendall(json.dumps({"ok": False, "error": str(exc), "done": True})
                                 .encode() + b"\n")


class Unreachable(Exception):
    """No daemon answers on the control socket; the message says why (no socket, the
    connection refused, no permission...)."""


def request(state_dir: Path, message: Message,
            on_event: Callable[[Message], None]) -> Message:
    """Ask the running daemon. Raises Unreachable when none answers (none runs, or its
    socket could not be made: see ``control.unavailable``)."""
    path = state_dir / SOCKET
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except OSError as exc:
        sock.close()
        raise Unreachable(f"{path}: {exc.strerror or exc}") from None
    with sock:
        sock.sendall(json.dumps(message).encode() + b"\n")
        for line in sock.makefile("rb"):
            answer: Message = json.loads(line)
            if answer.get("done"):
                return answer
            on_event(answer)
    return {"ok": False, "error": "the daemon closed the connection"}
