"""Keep the daemon's memory from creeping. glibc gives each thread that allocates an
arena of its own (up to eight per core) and keeps what is freed in it: a daemon whose
threads come and go (check workers, one per HTTP request) spreads its heap over many
arenas, each fragmented. ``limit_arenas`` caps them at the start (threads share two,
under the GIL they seldom contend), and ``trim`` hands free pages back now and then.
Elsewhere (musl, macOS) there is nothing to do."""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable

#: mallopt's parameter for the most arenas glibc makes.
M_ARENA_MAX = -8


@functools.cache
def _glibc(name: str) -> Callable[..., int] | None:
    # The process's own symbols, libc's among them: no ctypes.util (a megabyte of
    # imports) to find libc's file.
    try:
        function: Callable[..., int] = getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None
    return function


def limit_arenas(arenas: int = 2) -> bool:
    """Let threads made from now on share ``arenas`` arenas; whether this libc can."""
    mallopt = _glibc("mallopt")
    return mallopt is not None and mallopt(M_ARENA_MAX, arenas) == 1


def trim() -> bool:
    """Return the free pages of every arena; whether this libc can."""
    malloc_trim = _glibc("malloc_trim")
    if malloc_trim is None:
        return False
    malloc_trim(0)
    return True
