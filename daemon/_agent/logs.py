"""Logging: structlog for vigil's own events, stdlib logging (APScheduler, libraries)
routed through the same formatter, one JSON object per line."""

from __future__ import annotations

import io
import logging
import logging.handlers
import os
import sys
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, WrappedLogger

from vigil._kit.private import open_append
from vigil._kit.redact import redact_value

# APScheduler logs every job start and finish at INFO; our check.result says it better.
_QUIET = {"apscheduler.executors": logging.WARNING, "apscheduler.scheduler": logging.WARNING}


def _redact(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    return {k: redact_value(v, k) for k, v in event_dict.items()}


def _name_foreign(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    # Records from stdlib loggers keep their logger name, so a reader knows who spoke.
    record = event_dict.get("_record")
    if record is not None and not record.name.startswith("vigil"):
        event_dict.setdefault("logger", record.name)
    return event_dict


def _order(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    # Readers scan the left edge: when, how bad, what; then the fields.
    head = {k: event_dict.pop(k) for k in ("timestamp", "level", "event") if k in event_dict}
    return {**head, **event_dict}


def _tidy(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """For a person at a terminal: a long list is its count, a figure three decimals."""
    return {k: _short(v) for k, v in event_dict.items()}


def _short(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {k: _short(v) for k, v in value.items()}
    if isinstance(value, list) and len(value) > 5:
        return f"{len(value)} items"
    return value


def _sentence(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> str:
    """What a command (not the daemon) says about its own trouble: one plain line."""
    level, event = event_dict.pop("level", "error"), event_dict.pop("event", "")
    event_dict.pop("timestamp", None)
    fields = "; ".join(f"{key}: {value}" for key, value in event_dict.items())
    return f"vigil: {level}: {event}" + (f" ({fields})" if fields else "")


def configure_command() -> None:
    """Logging for the commands that are not the daemon: their output is theirs, and
    what the config's loading says (a plugin that failed) is a plain line on stderr."""
    configure("error", stream=sys.stderr, plain=True)


def hold() -> None:
    """Keep what is logged until :func:`configure` names where it goes: a plugin that
    fails while the config is read is said in the log the config names."""
    _install(logging.handlers.MemoryHandler(10_000, flushLevel=logging.CRITICAL + 1), "info")


class PrivateFileHandler(logging.handlers.WatchedFileHandler):
    """Appends to a file only its owner (and, with ``group``, the owner's group) may
    read, never through a symlink; reopened after logrotate moves it away."""

    def __init__(self, path: str, group: bool = False) -> None:
        self.group = group
        super().__init__(path, encoding="utf-8")

    def _open(self) -> io.TextIOWrapper:
        return os.fdopen(open_append(self.baseFilename, self.group), "a",
                         encoding=self.encoding, errors=self.errors)


def configure(level: str = "info", log_file: str = "-", stream: TextIO | None = None,
              pretty: bool | None = None, plain: bool = False, group: bool = False) -> None:
    """JSON lines to ``log_file`` (``-`` is stdout; a file is 0600, 0640 with ``group``);
    pretty lines on a terminal; with ``plain``, one sentence a line. What :func:`hold`
    kept is written there first."""
    if log_file == "-":
        out = stream or sys.stdout
        handler: logging.Handler = logging.StreamHandler(out)
        if pretty is None:
            pretty = out.isatty()
    else:
        handler = PrivateFileHandler(log_file, group)
        pretty = bool(pretty)
    renderer: list[Any] = [_order, structlog.processors.JSONRenderer()]
    if plain:
        renderer = [_sentence]
    elif pretty:
        renderer = [_tidy, structlog.dev.ConsoleRenderer()]
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_shared(), structlog.stdlib.ExtraAdder()],
        processors=[
            _name_foreign,
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _redact,
            *renderer,
        ],
    ))
    # A closed stdout (a pager that quit) must not print tracebacks from inside logging.
    logging.raiseExceptions = False
    _install(handler, level)


def _install(handler: logging.Handler, level: str) -> None:
    """Make ``handler`` the root's only one, at ``level``; what a held handler kept is
    written to it first."""
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
        if isinstance(old, logging.handlers.MemoryHandler):
            threshold = logging.getLevelName(level.upper())
            for record in old.buffer:
                if record.levelno >= threshold:
                    handler.handle(record)
            old.buffer.clear()
        old.close()
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name, quiet in _QUIET.items():
        logging.getLogger(name).setLevel(max(quiet, root.level))
    _configure_structlog()


def _shared() -> list[Any]:
    return [structlog.contextvars.merge_contextvars, structlog.stdlib.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True)]


def _configure_structlog() -> None:
    structlog.configure(
        # A line below the level is dropped before any work is done on it: a healthy
        # check's result is a debug line, a thousand times a minute.
        processors=[structlog.stdlib.filter_by_level, *_shared(),
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
