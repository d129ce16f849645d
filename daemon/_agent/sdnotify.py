"""systemd's notification protocol, without a library: one datagram per message to the
AF_UNIX socket named by $NOTIFY_SOCKET (``@name`` is an abstract socket)."""

from __future__ import annotations

import os
import socket


class Notifier:
    """Reads $NOTIFY_SOCKET and $WATCHDOG_USEC once, and removes them from the
    environment so that the programs vigil starts never speak for it."""

    def __init__(self) -> None:
        address = os.environ.pop("NOTIFY_SOCKET", "")
        usec = os.environ.pop("WATCHDOG_USEC", "")
        pid = os.environ.pop("WATCHDOG_PID", "")
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self.watchdog: float | None = None
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog = int(usec) / 1_000_000

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def send(self, *lines: str) -> bool:
        if not self.address:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
                s.connect(self.address)
                s.sendall("\n".join(lines).encode())
            return True
        except OSError:
            return False  # systemd went away; nothing useful to do about it
