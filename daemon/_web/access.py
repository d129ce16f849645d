"""Who may ask the HTTP surface what: the Host names it answers to (a page that rebinds
its own name to 127.0.0.1 gets nothing), the token (a bearer token, or a browser's Basic
login with the token as its password, which reads but never acts), and the requests a
browser sends for another origin's page."""

from __future__ import annotations

import base64
import binascii
import fnmatch
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from vigil._config.sections import DaemonSettings
from vigil._kit.digest import same_secret


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
        close = header.find("]")
        rest = header[close + 1:]
        if close < 0 or (rest and not (rest[0] == ":" and rest[1:].isdigit())):
            return header  # not a bracketed address and a port: no name of ours
        return header[1:close]
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


def token_matches(access: Access, authorization: str, action: bool = False) -> bool:
    """Whether ``authorization`` carries the token. An action takes it only as a bearer
    token, which a page can send only to its own origin: a browser's login (Basic) is
    sent by the browser itself, with any other page's form or fetch to this address."""
    if action and not authorization.strip().lower().startswith("bearer "):
        return False
    given = presented(authorization)
    return given is not None and same_secret(given.encode(), access.token.encode())


def cross_origin(headers: Mapping[str, str]) -> str | None:
    """Why a request comes from another origin's page (a form or a fetch a browser sends
    there), None when it does not: ``Sec-Fetch-Site`` says so, or ``Origin`` names
    another host than the one asked."""
    site = headers.get("Sec-Fetch-Site", "").lower()
    if site in ("cross-site", "same-site"):
        return f"Sec-Fetch-Site: {site}"
    origin = headers.get("Origin")
    if origin is None:
        return None
    if origin == "null":
        return "Origin: null"
    asked = headers.get("Host", "").strip().lower()
    return None if origin.lower().split("://", 1)[-1] == asked else f"Origin: {origin}"
