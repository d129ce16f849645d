"""Counts in sentences, for summaries and messages a person reads: ``1 check``,
``2 checks``."""

from __future__ import annotations


def plural(count: float, noun: str, many: str | None = None) -> str:
    """``count`` and ``noun``, the noun in the plural unless the count is one
    (``many``, when it is not the noun with an ``s``): ``plural(1, "event")`` is
    ``1 event``, ``plural(3, "missing section")`` is ``3 missing sections``."""
    word = noun if count == 1 else (many or f"{noun}s")
    return f"{count:g} {word}"
