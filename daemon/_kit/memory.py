"""Give memory Python freed back to the system. glibc keeps freed blocks in its arenas
(one per thread that allocates, up to eight per core) and returns them only from the
top of each heap, so a daemon whose worker threads come and go holds more and more
pages it no longer uses; ``malloc_trim`` returns every free page. Elsewhere (musl,
macOS), there is nothing to do."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        function: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError, TypeError):
        return None
    return function


def trim() -> bool:
    """Return the free pages of every arena; whether this libc can."""
    function = _malloc_trim()
    if function is None:
        return False
    function(0)
    return True
