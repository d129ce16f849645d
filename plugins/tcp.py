"""Check type ``tcp``: can a TCP connection be opened, and how fast."""

from __future__ import annotations

import functools
import socket
import time
from dataclasses import dataclass

from vigil import Check, ConfigError, RegisterCheck, Result, Status, above, hookimpl


@dataclass
class TcpOptions:
    port: int
    host: str = "127.0.0.1"
    warn_ms: float | None = None
    crit_ms: float | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise ConfigError("port", f"must be between 1 and 65535, got {self.port}")


class Tcp(Check):
    Options = TcpOptions
    options: TcpOptions
    metrics = ("latency_ms",)

    def run(self) -> Result:
        where = f"{self.options.host}:{self.options.port}"
        start = time.perf_counter()
        try:
            with _connect(self.options.host, self.options.port, self.timeout):
                latency_ms = (time.perf_counter() - start) * 1000
        except ConnectionRefusedError:
            return Result(Status.CRIT, f"connection refused on {where}")
        except TimeoutError:
            return Result(Status.CRIT, f"no answer from {where} within {self.timeout:g}s")
        except OSError as exc:
            return Result(Status.CRIT, f"cannot connect to {where}: {exc.strerror or exc}")
        status = above(latency_ms, self.options.warn_ms, self.options.crit_ms)
        limit = self.options.warn_ms or self.options.crit_ms
        return Result(status, f"{where} answered in {latency_ms:.1f} ms",
                      {"latency_ms": round(latency_ms, 3)},
                      thresholds={"latency_ms": limit} if limit else {})


def _connect(host: str, port: int, timeout: float) -> socket.socket:
    """A connected socket. An IP address is connected to as it is; a host name is looked
    up on every run (it may move), which costs more than the connection itself."""
    family = _address_family(host)
    if family is None:
        return socket.create_connection((host, port), timeout)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


@functools.cache
def _address_family(host: str) -> int | None:
    """AF_INET or AF_INET6 for an IP address, None for a host name."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except OSError:
            continue
        return family
    return None


@hookimpl
def vigil_check_types(register: RegisterCheck) -> None:
    register("tcp", Tcp)
