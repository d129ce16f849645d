"""Find the line of a key path in TOML text: tomllib returns values, not positions."""

from __future__ import annotations

import re

_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_NAME = r"""(?:"[^"]*"|'[^']*'|[A-Za-z0-9_\-]+)"""
_KEY = re.compile(rf"^\s*({_NAME}(?:\s*\.\s*{_NAME})*)\s*=")
_INDEX = re.compile(r"(\[\d+\])+$")
_PART = re.compile(rf"\s*({_NAME})\s*(?:\.|$)")


def _split(dotted: str) -> tuple[str, ...]:
    return tuple(p.strip("\"'") for p in _PART.findall(dotted))


def key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Every table header and key path in ``text`` with its 1-based line."""
    lines: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), start=1):
        if header := _HEADER.match(line):
            table = _split(header.group(1))
            path = table
        elif key := _KEY.match(line):
            path = table + _split(key.group(1))
        else:
            continue
        # [checks.db] also places "checks", for errors about the section as a whole.
        for end in range(1, len(path) + 1):
            lines.setdefault(path[:end], number)
    return lines


def locate(lines: dict[tuple[str, ...], int], path: tuple[str, ...]) -> int | None:
    """The line of ``path``, or of its nearest ancestor that has one (a list's item,
    ``tags[1]``, is on its list's line)."""
    path = tuple(_INDEX.sub("", part) for part in path)
    for end in range(len(path), 0, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None
