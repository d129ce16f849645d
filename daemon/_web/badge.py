"""``/badge/NAME.svg``: a check's state as a small flat badge, for READMEs and wikis."""

from __future__ import annotations

from html import escape

COLOURS = {"OK": "#4c1", "WARN": "#dfb317", "FAILING": "#e05d44", "PENDING": "#9f9f9f"}
#: Roughly how wide a character of 11px Verdana is: enough to size the two halves.
CHAR_PX = 7


def render(check: str, state: str, status: str | None) -> str:
    """``check | ok`` in green, ``warn`` in yellow, ``failing`` in red, ``pending`` grey."""
    said = "warn" if state == "OK" and status == "WARN" else state.lower()
    colour = COLOURS["WARN" if said == "warn" else state]
    left, right = CHAR_PX * len(check) + 10, CHAR_PX * len(said) + 10
    width = left + right
    label, value = escape(check), escape(said)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" '
        f'role="img" aria-label="{label}: {value}"><title>{label}: {value}</title>'
        f'<rect width="{left}" height="20" fill="#555"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{colour}"/>'
        f'<g fill="#fff" text-anchor="middle" font-family="Verdana,sans-serif" '
        f'font-size="11"><text x="{left / 2}" y="14">{label}</text>'
        f'<text x="{left + right / 2}" y="14">{value}</text></g></svg>'
    )
