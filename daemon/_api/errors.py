"""Errors that reach users: each names where in the config it comes from."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from types import ModuleType


@dataclass(frozen=True)
class ConfigIssue:
    """One mistake in one config file."""

    file: str
    key: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ConfigError(Exception):
    """Raised by a check type for a bad option; by the loader with every issue found.

    A check type raises ``ConfigError("port", "must be between 1 and 65535")``, or
    several at once: ``ConfigError(problems=[("port", "..."), ("host", "...")])``; the
    core adds the file, the full key path (``checks.web.port``) and the line.
    """

    def __init__(self, key: str = "", message: str = "", issues: list[ConfigIssue] | None = None,
                 problems: Iterable[tuple[str, str]] = ()) -> None:
        #: (key, message) for each problem a plugin raised, the first as key and message.
        self.problems = list(problems) or ([(key, message)] if key or message else [])
        self.key, self.message = self.problems[0] if self.problems else (key, message)
        self.issues = issues or []
        super().__init__("\n".join(map(str, self.issues))
                         or "; ".join(f"{k}: {m}" if k else m for k, m in self.problems))

    @property
    def count(self) -> str:
        """``1 error``, ``3 errors``: how many issues, for a headline."""
        return f"{len(self.issues)} error{'s' * (len(self.issues) != 1)}"


def require_module(module: str, requirement: str, key: str = "type") -> ModuleType:
    """Import a check type's library when a check of that type is configured (so that
    vigil's memory grows only by what is used); when it is missing, a config error at
    ``key`` gives the pip requirement that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(key, f"needs {module}: pip install '{requirement}'") from None
