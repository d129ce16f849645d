"""Keep secrets out of everything vigil prints or logs."""

from __future__ import annotations

import re
from typing import Any

MASK = "***"
#: A URL's password: up to the last ``@`` before the host (a password may hold an ``@``).
_URL_PASSWORD = re.compile(r"(\b[a-zA-Z][\w+.-]*://[^\s:/@]*):[^\s/]*@")
_SECRET_WORDS = (r"password|passwd|pwd|token|secret|api[_-]?key|credential|private[_-]?key"
                 r"|cookie|session[_-]?id|signature")
#: A key that names a secret, as a word or inside one (``access_token``, ``PGPASSWORD``,
#: ``X-Api-Key``, ``client_secret``, ``"password"`` in JSON), then ``=`` or ``:`` and its
#: value, quoted or not; an ``Authorization`` header's scheme (``Bearer``) stays, its
#: credentials go.
_KEY_VALUE = re.compile(
    rf"""(?i)\b([\w.-]*(?:{_SECRET_WORDS})[\w.-]*|[\w.-]*auth(?:orization|entication)?)"""
    r"""(["']?\s*[=:]\s*)((?:bearer|basic|token|digest)\s+)?"""
    r"""('[^']*'|"[^"]*"|[^\s,;&'"]+)"""
)
#: A command line's option that names a secret, then its value as the next word
#: (``--password hunter2``, ``--api-key K``).
_OPTION_VALUE = re.compile(
    rf"""(?i)(--?[\w-]*(?:{_SECRET_WORDS})[\w-]*)(\s+)(?!-)([^\s'"]+)""")
#: A bearer token standing alone (``Bearer eyJ...``).
_BEARER = re.compile(r"(?i)\b(bearer\s+)([^\s'\",;]+)")
SECRET_KEYS = re.compile(
    r"(?i)(password|passwd|secret|token|api[_-]?key|credential|authorization|private[_-]?key"
    r"|cookie|signature)")
#: What each pattern needs to find anything: most text has none of it, and a plain
#: substring test is a hundred times cheaper than the search (a /health page is 20 KB).
_URL_HINTS = ("://",)
_KEY_HINTS = ("pass", "pwd", "token", "secret", "api", "auth", "credential", "private",
              "cookie", "session", "signature", "bearer")


def _masked(match: re.Match[str]) -> str:
    key, separator, scheme, value = match.groups()
    quote = value[0] if value[:1] in ("'", '"') and len(value) > 1 else ""
    return f"{key}{separator}{scheme or ''}{quote}{MASK}{quote}"


def redact(text: str) -> str:
    """``text`` with URL passwords, ``password=...``-style values (quoted ones keep their
    quotes), secret command-line options' values and bearer tokens masked."""
    if "@" in text and any(hint in text for hint in _URL_HINTS):
        text = _URL_PASSWORD.sub(rf"\1:{MASK}@", text)
    lowered = text.lower()
    if any(hint in lowered for hint in _KEY_HINTS):
        text = _KEY_VALUE.sub(_masked, text)
        text = _OPTION_VALUE.sub(rf"\1\2{MASK}", text)
        if "bearer" in lowered:
            text = _BEARER.sub(rf"\1{MASK}", text)
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
