"""vigil: a self-healing health-check agent.

The public API for plugin authors lives here, and only here::

    from vigil import hookimpl, Check, Result, Status
"""

from vigil._alert import Alert, AlertSink, Silence, SinkError, iso
from vigil._atomic import replace_file
from vigil._check import Check, Result, Status
from vigil._durations import Duration, format_duration, parse_duration
from vigil._errors import ConfigError, require_module
from vigil._httppost import post as http_post
from vigil._httppost import request as http_request
from vigil._manager import Action, ServiceManager
from vigil._perfdata import split_plugin_output
from vigil._pidwatch import watch_pid
from vigil._ports import describe_ports, listeners_named, parse_ports, port_holders
from vigil._proc import CommandResult, kill_process_group, run_command
from vigil._redact import redact
from vigil._tail import FileTail
from vigil._thresholds import StartGrace, above, worst
from vigil._unitwatch import watch_unit
from vigil._words import plural
from vigil.hookspecs import hookimpl

# Everything a plugin may use: the built-in plugins use nothing else (a test holds them
# to it), and the modules behind these names (``vigil._*``) are internal.
__all__ = [
    "Action",
    "Alert",
    "AlertSink",
    "Check",
    "CommandResult",
    "ConfigError",
    "Duration",
    "FileTail",
    "Result",
    "ServiceManager",
    "Silence",
    "SinkError",
    "StartGrace",
    "Status",
    "above",
    "describe_ports",
    "format_duration",
    "hookimpl",
    "http_post",
    "http_request",
    "iso",
    "kill_process_group",
    "listeners_named",
    "parse_duration",
    "parse_ports",
    "plural",
    "port_holders",
    "redact",
    "replace_file",
    "require_module",
    "run_command",
    "split_plugin_output",
    "watch_pid",
    "watch_unit",
    "worst",
]
