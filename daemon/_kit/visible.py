"""Text that checks and services wrote, shown on a terminal: its control characters
(C0 but tab, DEL, C1) made visible as ``\\xNN``, and the bidirectional overrides as
``\\uNNNN``, so that a check's output cannot recolour or erase the screen, retitle the
terminal, write its clipboard (OSC 52) or make one name read as another. A line of a
table or a log gets its newlines shown too."""

from __future__ import annotations

from vigil._kit.redact import redact

_CONTROLS = [*range(0x00, 0x20), *range(0x7F, 0xA0)]
#: The bidirectional overrides and isolates, which reorder what a reader sees (a name
#: that reads as another): shown as ``\u202e``.
_BIDI = [0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_SHOWN = {c: f"\\x{c:02x}" for c in _CONTROLS} | {c: f"\\u{c:04x}" for c in _BIDI}
#: Keeps newlines and tabs: text shown as it was written, lines and all.
_LINES = {c: e for c, e in _SHOWN.items() if c not in (0x09, 0x0A)}
#: Keeps only tabs: text that must stay on its one line.
_ONE_LINE = {c: e for c, e in _SHOWN.items() if c != 0x09}


def visible(text: str, one_line: bool = True) -> str:
    """``text`` with its control characters shown as escapes."""
    return text.translate(_ONE_LINE if one_line else _LINES)


def shown(text: str, one_line: bool = True) -> str:
    """What a command prints of a check's or a service's words: secrets masked, control
    characters made visible."""
    return visible(redact(text), one_line)
