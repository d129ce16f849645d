"""vigil: a self-healing health-check agent.

The public API for plugin authors lives here::

    from vigil import hookimpl, Check, Result, Status
"""

from vigil.check import Check, Result, Status
from vigil.durations import Duration, parse_duration
from vigil.errors import ConfigError, require_module
from vigil.hookspecs import hookimpl
from vigil.manager import Action, ServiceManager
from vigil.redact import redact

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
