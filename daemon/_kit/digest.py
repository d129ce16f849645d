"""SHA-256 names and a constant-time comparison of secrets, without OpenSSL's hashlib.

Importing ``hashlib`` (or ``hmac``, which imports it) sets up OpenSSL's providers for
every digest it has: half a megabyte resident in a daemon whose bar is 1.10x
supervisord's memory, for the one digest vigil uses to name things (an alert's
fingerprint, a remediation's key, a runtime file). CPython's own SHA-256, what hashlib
itself falls back to without OpenSSL, gives the same digests; ``_compare_digest`` is
what ``hmac.compare_digest`` is without OpenSSL."""

from __future__ import annotations

import importlib
import sys
from _operator import _compare_digest
from collections.abc import Callable
from typing import Protocol


class _Hash(Protocol):
    def hexdigest(self) -> str: ...


#: CPython's built-in SHA-256 module: ``_sha2`` from 3.12 on, ``_sha256`` before.
_SHA256: Callable[[bytes], _Hash] = importlib.import_module(
    "_sha2" if sys.version_info >= (3, 12) else "_sha256").sha256


def sha256_hex(data: str | bytes, length: int = 64) -> str:
    """The first ``length`` hex digits of ``data``'s SHA-256 (a str is hashed as UTF-8)."""
    raw = data.encode() if isinstance(data, str) else data
    return _SHA256(raw).hexdigest()[:length]


def same_secret(given: bytes, expected: bytes) -> bool:
    """Whether two secrets are equal, in a time that does not tell how much matched."""
    return _compare_digest(given, expected)
