"""structlog, imported without the optional packages it reaches for on its own import
whenever they are installed: ``rich`` and ``better_exceptions`` (its console renderer's
tracebacks), ``colorama`` (colours on Windows), ``greenlet`` (its deprecated
thread-local context) and ``twisted``. rich alone is about 6 MB of the daemon's memory,
and vigil uses none of them: its lines are JSON, and even at a terminal an exception is
made text (``format_exc_info``) before the console renderer sees it. ``vigil`` imports
this module first, before anything imports structlog; whoever imports one of these
packages later gets it as usual."""

from __future__ import annotations

import sys

#: What structlog imports when it can, and vigil never needs.
OPTIONAL = ("rich", "better_exceptions", "colorama", "greenlet", "twisted")


def import_lean() -> None:
    """Import structlog with the optional packages out of its sight (unless a program
    that embeds vigil imported it already: then it is too late, and harmless)."""
    if "structlog" in sys.modules:
        return
    # A None in sys.modules makes an import of that name fail at once, as when it is not
    # installed (the import system's documented way): structlog catches that and goes
    # without. The names are given back as soon as it is in.
    hidden = [name for name in OPTIONAL if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        import structlog  # noqa: F401
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


import_lean()
