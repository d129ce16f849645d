"""The ``vigil`` command's arguments: each command, its options and their help."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from vigil._cli import logview
from vigil._kit.durations import parse_duration


def _config_option(default: Any) -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("-c", "--config", metavar="FILE", default=default,
                        help="config file (else $VIGIL_CONFIG, ./config.toml, the platform "
                             "config folder, the packaged defaults)")
    return parent


def _command(sub: Any, name: str, **keys: Any) -> argparse.ArgumentParser:
    """A subcommand whose own --help starts with what it does."""
    keys.setdefault("description", keys["help"][0].upper() + keys["help"][1:] + ".")
    parser: argparse.ArgumentParser = sub.add_parser(name, **keys)
    return parser


def parser() -> argparse.ArgumentParser:
    # `-c` works before and after the command. A subcommand's own copy must not write its
    # default over a `-c` given before the command: hence SUPPRESS there.
    common = _config_option(argparse.SUPPRESS)
    # Which vigil service: `service` installs it, `logs` reads what it wrote to stdout.
    scoped = argparse.ArgumentParser(add_help=False)
    scope = scoped.add_mutually_exclusive_group()
    scope.add_argument("--user", dest="user", action="store_true", default=None,
                       help="the user unit / LaunchAgent (default when not root)")
    scope.add_argument("--system", dest="user", action="store_false",
                       help="the system unit / LaunchDaemon (default for root)")
    parser = argparse.ArgumentParser(
        prog="vigil", parents=[_config_option(None)],
        description="A self-healing health-check agent.")
    parser.add_argument("-V", "--version", action="version", version=f"vigil {_version()}",
                        help="print vigil's version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _config_commands(sub, common)
    _state_commands(sub, common)
    _host_commands(sub, common, scoped)
    _export_command(sub, common)
    return parser


AS_JSON = "print JSON instead of text"


def _config_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """What works from the config alone: run, check, config, plugins, init."""
    _command(sub, "run", parents=[common], help="run the daemon in the foreground")
    p = _command(sub, "check", parents=[common],
                       help="run one check once; Nagios output and exit code")
    p.add_argument("name", help="the check's name, as in [checks.NAME]")
    p.add_argument("--json", action="store_true", help=AS_JSON)
    p.add_argument("--heal", action="store_true",
                   help="when the check fails and guards a service, heal it and check again")
    p.add_argument("--update", action="store_true",
                   help="take what the check compares against from things as they are now "
                        "(the docs check's manifest)")
    p.add_argument("--force", action="store_true",
                   help="run a check that loads its service (a load test) even though it "
                        "ran less than its min_interval ago")
    p = _command(sub, "config", parents=[common], help="work with the config")
    p.add_argument("action", choices=["validate"],
                   help="validate: exit 0 when valid, else 1 listing every error")
    p = _command(sub, "plugins", parents=[common], help="list plugins and their check types")
    p.add_argument("--json", action="store_true", help=AS_JSON)
    p = _command(sub, "plugin", parents=[common],
                 help="write a new plugin package, ready to install and test")
    p.add_argument("action", choices=["new"], help="new: write the package")
    p.add_argument("name", help="the plugin's name: its check type, manager or sink type "
                                "(module vigil_NAME, package vigil-NAME)")
    p.add_argument("--check", action="store_true", help="with a check type (the default)")
    p.add_argument("--manager", action="store_true", help="with a service manager")
    p.add_argument("--sink", action="store_true", help="with an alert sink")
    p.add_argument("--dir", metavar="FOLDER", help="where to write it (default: vigil-NAME)")
    p = _command(sub, "init", parents=[common], help="write a starter config")
    p.add_argument("path", nargs="?", help="where to write it (default: -c FILE, or "
                                           "config.toml)")
    p.add_argument("--force", action="store_true",
                   help="overwrite an existing file (the old one is kept as FILE.bak, or "
                        "FILE.bak.1, .2... when that is taken)")
    p.add_argument("--detect", action="store_true",
                   help="look for PostgreSQL, Redis and MCP servers here and configure them")


def _state_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """What reads or changes the daemon's state: status, history, alerts, silence."""
    p = _command(sub, "status", parents=[common], help="what the running daemon sees")
    p.add_argument("--json", action="store_true", help=AS_JSON)
    p = _command(sub, "history", parents=[common],
                       help="one check's results, state changes and uptime")
    p.add_argument("check", help="the check's name")
    p.add_argument("--since", type=_duration, default=None, metavar="DURATION",
                   help="how far back (default 1h, 30d with --anomalies; results older "
                        "than the raw window come as rollups)")
    p.add_argument("--anomalies", action="store_true",
                   help="list the check's anomalies (a series with a baseline) instead")
    p.add_argument("--json", action="store_true", help=AS_JSON)
    p = _command(sub, "slo", parents=[common],
                 help="each objective's SLI, error budget left, burn rates and status "
                      "(exit 0 ok, 1 ticket, 2 page)")
    p.add_argument("name", nargs="?", help="one objective (default: all)")
    p.add_argument("--json", action="store_true", help=AS_JSON)
    p = _command(sub, "anomalies", parents=[common],
                 help="the anomaly detector's verdict on a CSV of timestamp,value rows (try "
                      "it before turning it on)")
    p.add_argument("file", help="the CSV file")
    p.add_argument("--json", action="store_true", help=AS_JSON)
    p = _command(sub, "alerts", parents=[common],
                       help="the open alerts, where they were sent, and the silences")
    p.add_argument("--json", action="store_true", help=AS_JSON)
    p = _command(sub, "silence", parents=[common],
                       help="hold back a check's alerts for a while (kept across restarts)")
    p.add_argument("check", help="a check's name, or a glob: 'db*'")
    p.add_argument("--for", dest="for_s", type=_duration, default=3600.0,
                   metavar="DURATION", help="how long (default 1h)")
    p.add_argument("--reason", default="", help="why, for `vigil alerts` and the log")
    p.add_argument("--remove", action="store_true", help="end the silence now")
    _operator_commands(sub, common)


def _operator_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """What an operator runs around a change: maintenance, the gate, a deploy, a heal."""
    p = _command(sub, "maintenance", parents=[common],
                 help="hold healing and alerts back while a service or checks are worked on")
    p.add_argument("action", choices=["start", "end", "list"],
                   help="start or end a window, or list those in effect")
    p.add_argument("targets", nargs="*", metavar="TARGET",
                   help="a service's name, or a glob of check names ('db*')")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--for", dest="for_s", type=_duration, metavar="DURATION",
                        help="how long (required for start, unless --until-end)")
    length.add_argument("--until-end", action="store_true",
                        help="until `vigil maintenance end`")
    p.add_argument("--reason", default="", help="why, for `vigil status` and the log")
    p.add_argument("--json", action="store_true", help=AS_JSON)
    p = _command(sub, "wait", parents=[common],
                 help="wait until checks pass, steadily: the deploy gate (exit 0, 1 at the "
                      "timeout, 3 when nothing matches)")
    p.add_argument("targets", nargs="*", metavar="TARGET",
                   help="a service (its checks), or a glob of check names; default all")
    p.add_argument("--timeout", type=_duration, default=300.0, metavar="DURATION",
                   help="give up after this long (default 5m)")
    p.add_argument("--stable", type=_duration, default=10.0, metavar="DURATION",
                   help="how long each must pass in a row (default 10s)")
    p.add_argument("--json", action="store_true", help=AS_JSON)
    p = _command(sub, "deploy", parents=[common],
                 help="run a change under maintenance, then wait until healthy; roll back "
                      "when not")
    p.add_argument("services", nargs="+", metavar="SERVICE", help="the services it changes")
    p.add_argument("--timeout", type=_duration, default=300.0, metavar="DURATION",
                   help="for the command, and again for the wait (default 5m)")
    p.add_argument("--stable", type=_duration, default=10.0, metavar="DURATION",
                   help="how long each check must pass in a row (default 10s)")
    p.add_argument("--rollback", metavar="COMMAND",
                   help="run when the command fails or the services are not healthy in time "
                        "(split as a shell would split it, never run by one)")
    p.epilog = "The command that deploys follows --: vigil deploy app -- ./release.sh v2"
    p = _command(sub, "heal", parents=[common],
                       help="heal a service now and reset its restart budget")
    p.add_argument("service", help="the service's name, as in [services.NAME]")


def _host_commands(sub: Any, common: argparse.ArgumentParser,
                   scoped: argparse.ArgumentParser) -> None:
    """vigil as the host runs it: installing the service, reading its log."""
    p = _command(sub, "service", parents=[common, scoped],
                       help="install vigil itself as a service")
    p.add_argument("action", choices=["install", "uninstall", "status"],
                   help="install (and start), uninstall (stop and remove), or status")
    p.add_argument("--manager", choices=["systemd", "launchd"],
                   default="launchd" if sys.platform == "darwin" else "systemd",
                   help="which service manager runs vigil (default: this platform's)")
    p.add_argument("--watchdog", type=_duration, default=30.0, metavar="DURATION",
                   help="systemd WatchdogSec (default 30s)")
    p = _command(sub, "logs", parents=[common, scoped],
                       help="read the daemon's log (its file, the journal, or launchd's file)",
                       description="At the default level (info) the log holds state changes, "
                       "heals, errors, failing results (warning), results whose status "
                       "changed, and a daemon.summary every 5 minutes; a healthy check's "
                       "unchanged result is a debug line ([daemon] log_results = \"all\" "
                       "logs every result). Every result is in `vigil history` either way.")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    p.add_argument("-n", "--lines", type=int, default=50, metavar="N",
                   help="start with the last N lines that match (default 50)")
    p.add_argument("--check", metavar="NAME", help="only this check's events")
    p.add_argument("--level", choices=list(logview.LEVELS), help="this level and above")
    p.add_argument("--json", action="store_true", help="the raw JSON lines")


def _export_command(sub: Any, common: argparse.ArgumentParser) -> None:
    p = _command(sub, "export", parents=[common],
                       help="what Prometheus needs to watch many agents: rules, config")
    p.add_argument("engine", choices=["prometheus"], help="the monitoring system")
    p.add_argument("what", choices=["rules", "config"],
                   help="rules: alerting rules on vigil's metrics; config: a scrape config "
                        "that loads them")
    p.add_argument("--target", action="append", metavar="HOST:PORT", type=_target,
                   help="an agent to scrape (repeatable; default: this config's http)")
    p.add_argument("--rules", default="vigil-rules.yml", metavar="FILE",
                   help="the rules file the config loads (default vigil-rules.yml)")
    p.add_argument("--token-file", metavar="FILE",
                   help="the agents' http_token, for the scrape's bearer token")
    p.add_argument("--interval", type=_duration, default=15.0, metavar="DURATION",
                   help="scrape and rule evaluation interval (default 15s)")
    p.add_argument("--for", dest="for_s", type=_duration, default=60.0,
                   metavar="DURATION", help="how long a rule must hold to fire (default 1m)")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("vigil-daemon")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _target(text: str) -> str:
    """An agent's address as Prometheus scrapes it: HOST:PORT."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not HOST:PORT (like web1:8787, or [::1]:8787)")
    return text


def _duration(text: str) -> float:
    """A duration argument, with the config's own words when it is wrong."""
    try:
        return float(parse_duration(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"bad duration {text!r} (use 250ms, 10s, 5m, 1h...)") from None
