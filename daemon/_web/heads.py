"""Waiting for requests without a thread each: every accepted connection, and every
kept-alive one between its requests, waits here, on one thread and one selector, until
its request head has come whole. Only then does it take one of the server's connection
slots, so that clients which trickle, stall or hold idle connections cost a file
descriptor, never a slot a probe needs. A head not whole within HEAD_S is answered 408
(nothing sent: closed without a word); past MAX_WAITING, the oldest waiter gives way."""

from __future__ import annotations

import contextlib
import io
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: How long a request head may take to come whole, from its connection's start or from
#: the end of the request before it.
HEAD_S = 10.0
#: The longest head read here: past it, the handler answers (431 or 414) as it would.
MAX_HEAD = 64 * 1024 + 8 * 1024
#: Connections waiting for a head at once.
MAX_WAITING = 1024

#: Told of a head come whole: the connection, its address, and what was read of it.
Dispatch = Callable[[socket.socket, tuple[str, int], bytes], None]


@dataclass
class _Waiter:
    conn: socket.socket
    address: tuple[str, int]
    deadline: float
    head: bytearray = field(default_factory=bytearray)


def complete(head: bytes | bytearray) -> bool:
    """Whether ``head`` holds a request line and its headers to their empty line (as
    http.server reads them: CRLF or LF)."""
    stripped = bytes(head).lstrip(b"\r\n")  # empty lines before a request are ignored
    return b"\r\n\r\n" in stripped or b"\n\n" in stripped or len(head) >= MAX_HEAD


class Heads:
    def __init__(self, dispatch: Dispatch) -> None:
        self._dispatch = dispatch
        self._selector = selectors.DefaultSelector()
        self._waiting: dict[socket.socket, _Waiter] = {}
        self._new: list[_Waiter] = []
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="http-heads", daemon=True)
        self._thread.start()

    def wait(self, conn: socket.socket, address: tuple[str, int],
             head: bytes = b"") -> None:
        """Hold ``conn`` until its (next) request head has come; ``head`` is what was
        read of it already."""
        with self._lock:
            self._new.append(_Waiter(conn, address, time.monotonic() + HEAD_S,
                                     bytearray(head)))
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def close(self) -> None:
        self._stopping = True
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        self._thread.join(5)
        for waiter in list(self._waiting.values()):
            _close(waiter.conn)
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    def _run(self) -> None:
        while not self._stopping:
            self._adopt()
            now = time.monotonic()
            # Nothing waiting: asleep until a connection comes (the wake socket), not
            # once a second for nothing.
            soonest = min((w.deadline for w in self._waiting.values()), default=None)
            for key, _ in self._selector.select(
                    None if soonest is None else max(0.0, soonest - now)):
                if key.fileobj is self._wake_r:
                    with contextlib.suppress(OSError):
                        self._wake_r.recv(4096)
                    continue
                self._read(self._waiting[key.fileobj])  # type: ignore[index]
            self._expire(time.monotonic())

    def _adopt(self) -> None:
        with self._lock:
            new, self._new = self._new, []
        for waiter in new:
            if complete(waiter.head):
                self._hand_on(waiter)
                continue
            while len(self._waiting) >= MAX_WAITING:
                oldest = next(iter(self._waiting.values()))
                self._drop(oldest)
                _close(oldest.conn)
            try:
                waiter.conn.setblocking(False)
                self._selector.register(waiter.conn, selectors.EVENT_READ)
            except (OSError, ValueError):
                _close(waiter.conn)
                continue
            self._waiting[waiter.conn] = waiter

    def _read(self, waiter: _Waiter) -> None:
        try:
            chunk = waiter.conn.recv(MAX_HEAD - len(waiter.head))
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:  # the client closed (or reset) it
            self._drop(waiter)
            _close(waiter.conn)
            return
        waiter.head += chunk
        if complete(waiter.head):
            self._drop(waiter)
            self._hand_on(waiter)

    def _expire(self, now: float) -> None:
        for waiter in [w for w in self._waiting.values() if w.deadline <= now]:
            self._drop(waiter)
            if waiter.head.strip():
                # Part of a request came, not the rest: said, then closed.
                with contextlib.suppress(OSError):
                    waiter.conn.send(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n"
                                     b"Connection: close\r\n\r\n")
            _close(waiter.conn)

    def _drop(self, waiter: _Waiter) -> None:
        self._waiting.pop(waiter.conn, None)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self._selector.unregister(waiter.conn)

    def _hand_on(self, waiter: _Waiter) -> None:
        try:
            waiter.conn.setblocking(True)
            self._dispatch(waiter.conn, waiter.address, bytes(waiter.head))
        except OSError:
            _close(waiter.conn)


class Replay(io.RawIOBase):
    """A connection's input for its handler: what the head waiter read of it first, then
    the socket. A socket without data while non-blocking reads as nothing for now."""

    def __init__(self, prefix: bytes, conn: socket.socket) -> None:
        self._prefix = memoryview(prefix)
        self._conn = conn

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        try:
            return self._conn.recv_into(buffer)
        except BlockingIOError:
            return None


def _close(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.close()
