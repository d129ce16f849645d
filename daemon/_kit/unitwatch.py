"""Tell the moment a systemd unit stops being active: systemd's own signals
(``PropertiesChanged`` of each watched unit) on its private D-Bus socket, which needs no
bus daemon: ``/run/systemd/private`` for root, ``$XDG_RUNTIME_DIR/systemd/private`` for
a user's manager. One thread per socket reads them; a dropped connection is reopened,
and what changed meanwhile is read back. jeepney (pure Python) is imported only when a
unit is watched."""

from __future__ import annotations

import itertools
import os
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

log = structlog.get_logger("vigil.watch")

SYSTEMD = "org.freedesktop.systemd1"
UNIT = "org.freedesktop.systemd1.Unit"
SERVICE = "org.freedesktop.systemd1.Service"
#: The states of a unit that is up; leaving them is what a watcher reports.
UP = ("active", "reloading")
#: The wait before reconnecting, doubled after each failed attempt up to the second.
RETRY = (1.0, 5.0)
#: How long a connection with no unit left to watch stays open for the next.
LINGER = 2.0

Exited = Callable[[dict[str, Any]], None]


def private_socket(user: bool) -> str | None:
    """The manager's private socket, when this process may talk to it."""
    folder = os.environ.get("XDG_RUNTIME_DIR", f"/run/user/{os.getuid()}") if user else "/run"
    path = f"{folder}/systemd/private"
    return path if os.access(path, os.R_OK | os.W_OK) else None


class _Connection:
    """A D-Bus peer connection to systemd (no bus daemon, so no ``Hello``), over
    jeepney's I/O-free message parser."""

    def __init__(self, path: str) -> None:
        from jeepney import Parser

        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(2)
        self._parser = Parser()
        try:
            self.sock.connect(path)
            # AUTH and BEGIN in one write, as sd-bus's own clients send them: for seconds
            # after a daemon-reexec, systemd answers nothing on a connection that waited
            # for OK before sending BEGIN.
            uid = str(os.getuid()).encode().hex().encode()
            self.sock.sendall(b"\0AUTH EXTERNAL " + uid + b"\r\nBEGIN\r\n")
            said = b""
            while b"\r\n" not in said:
                if not (chunk := self.sock.recv(1024)):
                    raise ConnectionError("systemd closed the connection while authenticating")
                said += chunk
        except BaseException:
            self.sock.close()
            raise
        answer, _, rest = said.partition(b"\r\n")
        if not answer.startswith(b"OK"):
            self.sock.close()
            raise ConnectionError(f"systemd refused us: {answer.decode(errors='replace')}")
        self.sock.settimeout(None)
        self._parser.add_data(rest)
        self._serials = itertools.count(1)
        #: Signals that arrived while a call awaited its reply.
        self.early: list[Any] = []

    def call(self, message: Any, timeout: float = 2) -> tuple[Any, ...]:
        """The reply's body; systemd answers in milliseconds."""
        from jeepney import HeaderFields, MessageType
        from jeepney.wrappers import DBusErrorResponse

        serial = next(self._serials)
        self.sock.sendall(message.serialise(serial))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for reply in self.receive(deadline - time.monotonic()):
                if reply.header.fields.get(HeaderFields.reply_serial) != serial:
                    self.early.append(reply)
                elif reply.header.message_type is MessageType.error:
                    raise DBusErrorResponse(reply)
                else:
                    return tuple(reply.body)
        raise TimeoutError(f"systemd did not answer {message.header.fields} in {timeout:g}s")

    def receive(self, timeout: float, wake: int | None = None) -> list[Any]:
        """The messages that arrive within ``timeout`` (none when ``wake`` is readable)."""
        if waiting := list(iter(self._parser.get_next_message, None)):
            return waiting
        fd = self.sock.fileno()
        ready = select.select([fd, *([wake] if wake is not None else [])], [], [],
                              max(0.0, timeout))[0]
        if fd not in ready:
            return []
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("systemd closed the connection")
        self._parser.add_data(data)
        return list(iter(self._parser.get_next_message, None))

    def close(self) -> None:
        self.sock.close()


@dataclass
class _Unit:
    exited: list[Exited] = field(default_factory=list)
    path: str = ""
    active: str = ""
    #: The service's last Result (signal, exit-code...): systemd sends it just before.
    result: str = ""


class UnitBus:
    """Every unit watched on one manager's socket, and the thread that reads it."""

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self.units: dict[str, _Unit] = {}
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        self._thread: threading.Thread | None = None
        #: Whether the current connection got as far as watching.
        self._up = False

    def add(self, unit: str, exited: Exited) -> Callable[[], None]:
        with self._lock:
            self.units.setdefault(unit, _Unit()).exited.append(exited)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name=f"unitwatch:{self.socket_path}")
                self._thread.start()
        os.write(self._wake_w, b".")
        return lambda: self._remove(unit, exited)

    def _remove(self, unit: str, exited: Exited) -> None:
        with self._lock:
            watched = self.units.get(unit)
            if watched is not None and exited in watched.exited:
                watched.exited.remove(exited)
                if not watched.exited:
                    del self.units[unit]
        os.write(self._wake_w, b".")

    def _run(self) -> None:
        delay, connected_before, said = RETRY[0], False, False
        while True:
            with self._lock:
                if not self.units:  # nothing left to watch: the next add starts a thread
                    self._thread = None
                    return
            self._up = False
            conn = None
            try:
                conn = _Connection(self.socket_path)
                self._follow(conn, connected_before)
            except Exception as exc:  # a drop (a daemon-reexec), a refusal, no answer
                if self._up:
                    delay, said = RETRY[0], False
                # Once per outage: systemd can take seconds to answer after re-executing.
                (log.debug if said else log.warning)(
                    "watch.lost", socket=self.socket_path,
                    error=f"{type(exc).__name__}: {exc}", retry_s=delay)
                said = True
                time.sleep(delay)
                delay = min(delay * 2, RETRY[1])
            finally:
                if conn is not None:
                    conn.close()
                connected_before = connected_before or self._up

    def _follow(self, conn: _Connection, reconnected: bool) -> None:
        from jeepney import DBusAddress, new_method_call

        conn.call(new_method_call(DBusAddress("/org/freedesktop/systemd1", SYSTEMD,
                                              f"{SYSTEMD}.Manager"), "Subscribe"))
        loaded: dict[str, _Unit] = {}
        while True:
            with self._lock:
                units = dict(self.units)
            if not units:
                # vigil watches a unit anew after each start (unwatch, then watch): the
                # list is empty for a moment. The connection waits for that, rather than
                # close and open again.
                if select.select([self._wake_r], [], [], LINGER)[0]:
                    os.read(self._wake_r, 512)
                    continue
                return
            for name, unit in units.items():
                if loaded.get(name) is not unit:  # new, or watched anew
                    self._load(conn, name, unit, reconnected)
            if not loaded:
                log.info("watch.connected", socket=self.socket_path, units=sorted(units))
                self._up = True
            loaded = units
            messages, conn.early = conn.early, []
            for message in messages or conn.receive(60, self._wake_r):
                self._on_signal(message)
            if select.select([self._wake_r], [], [], 0)[0]:
                os.read(self._wake_r, 512)

    def _load(self, conn: _Connection, name: str, unit: _Unit, reconnected: bool) -> None:
        """Where the unit's object lives and its state now; after a reconnect, a unit that
        went down meanwhile is reported."""
        from jeepney import DBusAddress, Properties, new_method_call

        manager = DBusAddress("/org/freedesktop/systemd1", SYSTEMD, f"{SYSTEMD}.Manager")
        unit.path = conn.call(new_method_call(manager, "LoadUnit", "s", (name,)))[0]
        state = conn.call(Properties(DBusAddress(unit.path, SYSTEMD, UNIT)).get("ActiveState"))
        now = state[0][1]
        if reconnected and unit.active in UP and now not in UP:
            self._report(unit, name, {"active_state": now, "was": unit.active,
                                      "seen": "after the watcher reconnected"})
        unit.active = now

    def _on_signal(self, message: Any) -> None:
        from jeepney import HeaderFields

        fields = message.header.fields
        if fields.get(HeaderFields.member) != "PropertiesChanged":
            return
        with self._lock:
            found = [(n, u) for n, u in self.units.items()
                     if u.path == fields.get(HeaderFields.path)]
        if not found:
            return
        interface, changed = message.body[0], message.body[1]
        name, unit = found[0]
        if interface == SERVICE and "Result" in changed:
            unit.result = changed["Result"][1]
        if interface != UNIT or "ActiveState" not in changed:
            return
        was, unit.active = unit.active, changed["ActiveState"][1]
        if was in UP and unit.active not in UP:
            sub = changed.get("SubState", ("s", ""))[1]
            self._report(unit, name, {"active_state": unit.active, "sub_state": sub,
                                      "result": unit.result, "was": was})

    @staticmethod
    def _report(unit: _Unit, name: str, seen: dict[str, Any]) -> None:
        for exited in list(unit.exited):
            try:
                exited({"unit": name, **seen})
            except Exception as exc:  # one watcher's callback must not end the thread
                log.error("watch.error", error=f"{type(exc).__name__}: {exc}")


_buses: dict[str, UnitBus] = {}
_buses_lock = threading.Lock()


def watch_unit(unit: str, user: bool, exited: Exited) -> Callable[[], None] | None:
    """Call ``exited(seen)`` from a watcher thread each time ``unit`` leaves the active
    state (seen: the new ``active_state``, ``sub_state``, the service's ``result``).
    Returns a function that stops watching, or None when the manager's private socket is
    out of reach (not root, no systemd as PID 1): then its checks must tell."""
    path = private_socket(user)
    if path is None:
        return None
    with _buses_lock:
        bus = _buses.setdefault(path, UnitBus(path))
    return bus.add(unit, exited)
