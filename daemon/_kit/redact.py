"""Keep secrets out of everything vigil prints or logs."""

from __future__ import annotations

import re
from typing import Any

MASK = "***"
_URL_PASSWORD = re.compile(r"(\b[a-zA-Z][\w+.-]*://[^\s:/@]*):[^\s@/]*@")
#: A key that names a secret, as a word or inside one (``access_token``, ``PGPASSWORD``,
#: ``X-Api-Key``, ``client_secret``), then ``=`` or ``:`` and its value; an
#: ``Authorization`` header's scheme (``Bearer``) stays, its credentials go.
_KEY_VALUE = re.compile(
    r"""(?i)\b([\w.-]*(?:password|passwd|pwd|token|secret|api[_-]?key|credential)[\w.-]*"""
    r"""|[\w.-]*auth(?:orization|entication)?)"""
    r"""(\s*[=:]\s*)((?:bearer|basic|token|digest)\s+)?('[^']*'|"[^"]*"|[^\s,;&]+)"""
)
SECRET_KEYS = re.compile(r"(?i)(password|passwd|secret|token|api[_-]?key|credential|authorization)")
#: What each pattern needs to find anything: most text has none of it, and a plain
#: substring test is a hundred times cheaper than the search (a /health page is 20 KB).
_URL_HINTS = ("://",)
_KEY_HINTS = ("pass", "pwd", "token", "secret", "api", "auth", "credential")


def redact(text: str) -> str:
    """``text`` with URL passwords and ``password=...``-style values masked."""
    if "@" in text and any(hint in text for hint in _URL_HINTS):
        text = _URL_PASSWORD.sub(rf"\1:{MASK}@", text)
    lowered = text.lower()
    if any(hint in lowered for hint in _KEY_HINTS):
        text = _KEY_VALUE.sub(rf"\1\2\3{MASK}", text)
    return text


def redact_value(value: Any, key: str = "") -> Any:
    """Redact strings anywhere inside dicts and lists; mask whole values of secret keys."""
    if key and SECRET_KEYS.search(key) and isinstance(value, str | bytes) and value:
        return MASK
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_value(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    return value
