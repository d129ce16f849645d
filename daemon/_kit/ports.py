"""Port ranges, who holds a port, and which port is free: for checks that find a
server that moved, and for healing that starts one on a free port."""

from __future__ import annotations

import socket

import psutil


def parse_ports(value: str | list[int]) -> list[int]:
    """``"3000-3010"``, ``"3000,3005"`` or ``[3000, 3005]`` as a list, in order of
    preference; ValueError with a message fit for a user."""
    ports: list[int] = []
    if isinstance(value, list):
        ports = list(value)
    else:
        for part in str(value).split(","):
            low, _, high = part.strip().partition("-")
            if not low.isdigit() or (high and not high.isdigit()):
                raise ValueError(f"bad port range {value!r} (use \"3000-3010\" or [3000, 3001])")
            ports += range(int(low), int(high or low) + 1)
    if not ports:
        raise ValueError(f"no ports in {value!r}")
    bad = [p for p in ports if not 1 <= p <= 65535]
    if bad:
        raise ValueError(f"ports must be between 1 and 65535, got {bad[0]}")
    return list(dict.fromkeys(ports))


def describe_ports(ports: list[int]) -> str:
    """``[3000, ..., 3010]`` as ``3000-3010``; ports not in one run as ``80,443``."""
    if ports == list(range(ports[0], ports[-1] + 1)) and len(ports) > 1:
        return f"{ports[0]}-{ports[-1]}"
    return ",".join(map(str, ports))


def listeners() -> list[tuple[str, int, int | None]]:
    """(address, port, pid) of every TCP socket listening on this host, by port; the
    PID is None where the kernel does not say (another user's socket, without root)."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        return []
    return sorted({(c.laddr.ip, c.laddr.port, c.pid) for c in connections
                   if c.status == psutil.CONN_LISTEN and c.laddr},
                  key=lambda found: (found[1], found[0]))


def listeners_named(process_names: set[str]) -> list[tuple[str, int, int]]:
    """The listeners owned by processes of these names (``{"redis-server"}``)."""
    found = []
    for address, port, pid in listeners():
        try:
            if pid and psutil.Process(pid).name() in process_names:
                found.append((address, port, pid))
        except psutil.Error:
            continue
    return found


def port_holders(ports: list[int]) -> dict[int, str]:
    """Who listens on each of these TCP ports: ``PID 123 (python -m http.server)``."""
    wanted = set(ports)
    found: dict[int, str] = {}
    for _address, port, pid in listeners():
        if port not in wanted or port in found:
            continue
        found[port] = "an unknown process"
        if pid:
            try:
                found[port] = f"PID {pid} ({' '.join(psutil.Process(pid).cmdline())[:120]})"
            except psutil.Error:
                found[port] = f"PID {pid}"
    return found


def is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no holder
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def first_free(ports: list[int], prefer: int | None = None, host: str = "127.0.0.1") -> int | None:
    """The port to start on: ``prefer`` (the last one chosen) when still free, else the
    first free one in order."""
    order = ([prefer] if prefer in ports else []) + ports
    return next((p for p in order if is_free(p, host)), None)
