"""vigil: a self-healing health-check agent.

The public API for plugin authors lives here, and only here::

    from vigil import hookimpl, Check, Result, Status
"""

# First: structlog must be imported without rich and greenlet, which it would import
# whenever they are installed (about 6 MB the daemon never uses).
import vigil._kit.structlog_lean  # noqa: F401  # isort: split
from vigil._api.alert import Alert, AlertSink, Silence, SinkError, iso
from vigil._api.check import Check, Result, Status
from vigil._api.errors import ConfigError, require_module
from vigil._api.httppost import post as http_post
from vigil._api.httppost import request as http_request
from vigil._api.ladder import LATENCY_LADDER_MS, latency_slot
from vigil._api.logger import get_logger
from vigil._api.manager import Action, ServiceManager
from vigil._api.thresholds import StartGrace, above, worst
from vigil._kit.atomic import replace_file
from vigil._kit.durations import Duration, format_duration, parse_duration
from vigil._kit.perfdata import split_plugin_output
from vigil._kit.pidwatch import watch_pid
from vigil._kit.ports import describe_ports, listeners_named, parse_ports, port_holders
from vigil._kit.proc import CommandResult, kill_process_group, run_command
from vigil._kit.redact import redact
from vigil._kit.tail import FileTail
from vigil._kit.unitwatch import watch_unit
from vigil._kit.words import plural
from vigil.hookspecs import Detected, RegisterCheck, RegisterManager, RegisterSink, hookimpl

# Everything a plugin may use: the built-in plugins use nothing else (a test holds them
# to it), and the modules behind these names (``vigil._*``) are internal.
__all__ = [
    "LATENCY_LADDER_MS",
    "Action",
    "Alert",
    "AlertSink",
    "Check",
    "CommandResult",
    "ConfigError",
    "Detected",
    "Duration",
    "FileTail",
    "RegisterCheck",
    "RegisterManager",
    "RegisterSink",
    "Result",
    "ServiceManager",
    "Silence",
    "SinkError",
    "StartGrace",
    "Status",
    "above",
    "describe_ports",
    "format_duration",
    "get_logger",
    "hookimpl",
    "http_post",
    "http_request",
    "iso",
    "kill_process_group",
    "latency_slot",
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
