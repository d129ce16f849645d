"""vigil: a self-healing health-check agent.

The public API for plugin authors lives here::

    from daemon import hookimpl, Check, Result, Status
"""

from daemon.check import Check, Result, Status
from daemon.durations import Duration, parse_duration
from daemon.errors import ConfigError, require_module
from daemon.hookspecs import hookimpl
from daemon.manager import Action, ServiceManager
from daemon.redact import redact

__all__ = [
    "Action",
    "Check",
    "ConfigError",
    "Duration",
    "Result",
    "ServiceManager",
    "Status",
    "hookimpl",
    "parse_duration",
    "redact",
    "require_module",
]
