"""Who may ask the HTTP surface what: the Host names it answers to (a page that rebinds
its own name to 127.0.0.1 gets nothing), the token (a bearer token, or a browser's Basic
login with the token as its password), and a client that keeps guessing it slowed."""

from __future__ import annotations

import base64
import binascii
import collections
import fnmatch
import ipaddress
import threading
import time
from dataclasses import dataclass, field

from vigil._config.sections import DaemonSettings
from vigil._kit.digest import same_secret

#: Wrong tokens a client may send in GUESS_WINDOW before it must wait.
GUESSES = 5
GUESS_WINDOW = 60.0


@dataclass(frozen=True)
class Access:
    """The ``[daemon]`` keys that say who may ask what."""

    token: str = ""
    #: The status page, its data and stream, /health and the badges stay open with a
    #: token set.
    public_status: bool = False
    #: Host names answered besides IP literals, ``localhost`` and the listening host:
    #: exact, or globs (``*.lan``).
    allowed_hosts: tuple[str, ...] = ()
    #: The host of ``[daemon] http``.
    host: str = ""
    #: Badges may be shown by other sites' pages (Cross-Origin-Resource-Policy).
    cross_origin_badges: bool = False


def access_of(daemon: DaemonSettings) -> Access:
    address = daemon.http_address()
    return Access(daemon.http_token, daemon.public_status, tuple(daemon.allowed_hosts),
                  address[0] if address else "", daemon.cross_origin_badges)


def host_name(header: str) -> str:
    """The name in a Host header, without its port, brackets or final dot, lowercase."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else header
    name, colon, port = header.rpartition(":")
    return (name if colon and port.isdigit() else header).rstrip(".")


def host_allowed(access: Access, header: str | None) -> bool:
    """Whether a request for this Host is one vigil answers. A DNS rebinding attack names
    a host of the attacker's (``evil.example``) that now resolves to this machine: not
    an IP literal, not localhost, not ours."""
    if header is None:
        return True  # HTTP/1.0 without Host: no browser's, so no page's
    name = host_name(header)
    if name == "localhost" or name.endswith(".localhost") or name == access.host.lower():
        return True
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return any(fnmatch.fnmatchcase(name, pattern.lower())
                   for pattern in access.allowed_hosts)


def presented(authorization: str) -> str | None:
    """The token an Authorization header carries: a bearer token, or a Basic login's
    password (what a browser's login prompt sends); None without one."""
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            login = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return login.partition(":")[2]
    return None


@dataclass
class Guesses:
    """Wrong tokens per client address: past GUESSES in GUESS_WINDOW, the client waits."""

    seen: dict[str, collections.deque[float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, client: str) -> float:
        """Seconds ``client`` must wait before its token is looked at again (0: none)."""
        now = time.monotonic()
        with self.lock:
            times = self.seen.get(client)
            if not times:
                return 0.0
            while times and now - times[0] > GUESS_WINDOW:
                times.popleft()
            if not times:
                del self.seen[client]
                return 0.0
            return GUESS_WINDOW - (now - times[0]) if len(times) >= GUESSES else 0.0

    def wrong(self, client: str) -> None:
        with self.lock:
            if len(self.seen) > 10_000:  # addresses without end: forget the oldest
                self.seen.pop(next(iter(self.seen)))
            self.seen.setdefault(client, collections.deque(maxlen=GUESSES)).append(
                time.monotonic())


def token_matches(access: Access, authorization: str) -> bool:
    given = presented(authorization)
    return given is not None and same_secret(given.encode(), access.token.encode())
