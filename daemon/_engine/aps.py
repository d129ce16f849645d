"""APScheduler's background scheduler, imported without its pool executors.

``apscheduler.schedulers.base`` imports ``apscheduler.executors.pool`` for one line: the
default executor it builds for a scheduler given none. That module imports
``multiprocessing`` and ``concurrent.futures.process``, half a megabyte resident in a
daemon whose bar is 1.10x supervisord's memory, and vigil never takes the default (its
scheduler runs jobs on a ``DebugExecutor``). So while the scheduler module is first
imported, the pool module is a stand-in whose one name loads the real class when called,
and the stand-in is gone again at once: anyone who imports the pool module afterwards (a
plugin with a scheduler of its own) gets the real one."""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

POOL = "apscheduler.executors.pool"


def _thread_pool(*args: Any, **kwargs: Any) -> Any:
    """APScheduler's default executor, for a scheduler built without one."""
    return importlib.import_module(POOL).ThreadPoolExecutor(*args, **kwargs)


def _import_without_pool() -> None:
    if "apscheduler.schedulers.base" in sys.modules or POOL in sys.modules:
        return
    stand_in = types.ModuleType(POOL)
    stand_in.ThreadPoolExecutor = _thread_pool  # type: ignore[attr-defined]
    sys.modules[POOL] = stand_in
    try:
        importlib.import_module("apscheduler.schedulers.base")
    finally:
        if sys.modules.get(POOL) is stand_in:
            del sys.modules[POOL]


_import_without_pool()

from apscheduler.schedulers.background import BackgroundScheduler  # noqa: E402

__all__ = ["BackgroundScheduler"]
