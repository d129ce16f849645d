"""The ``vigil`` command."""

from __future__ import annotations

import argparse
import errno
import importlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vigil._agent import logs
from vigil._api.check import Result, Status
from vigil._api.errors import ConfigError
from vigil._cli import floor
from vigil._cli.parser import parser
from vigil._cli.status import NoState, lenient_load, load, user_scope
from vigil._config import loader as config_mod
from vigil._config.sections import PACKAGED, CheckSpec, Config
from vigil._engine.gate import paced
from vigil._engine.runner import Runner
from vigil._kit import paths
from vigil._kit.perfdata import format_perfdata
from vigil._kit.private import private_dir
from vigil._kit.redact import redact
from vigil._kit.visible import visible
from vigil._kit.words import plural

EXIT_INVALID_CONFIG = 1

#: Each command's function and the module that holds it, imported when the command
#: runs: `vigil run` carries none of the other commands' modules (its memory is measured).
COMMANDS = {
    "run": ("main", "cmd_run"), "check": ("main", "cmd_check"),
    "config": ("main", "cmd_validate"), "plugins": ("main", "cmd_plugins"),
    "service": ("main", "cmd_service"), "export": ("main", "cmd_export"),
    "init": ("init", "cmd_init"), "status": ("status", "cmd_status"),
    "logs": ("status", "cmd_logs"), "history": ("history", "cmd_history"),
    "alerts": ("alerts", "cmd_alerts"), "silence": ("alerts", "cmd_silence"),
    "heal": ("heal", "cmd_heal"), "plugin": ("scaffold", "cmd_plugin"),
    "maintenance": ("maintenance", "cmd_maintenance"), "wait": ("wait", "cmd_wait"),
    "deploy": ("deploy", "cmd_deploy"), "slo": ("slo", "cmd_slo"),
    "anomalies": ("anomalies", "cmd_anomalies"),
}


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    # `vigil deploy app -- ./release.sh --flag`: what follows -- is the deploy's argv,
    # options and all, never vigil's.
    cut = words.index("--") if "--" in words and "deploy" in words else len(words)
    args = _parse(words[:cut])
    args.argv = words[cut + 1:]
    module, function = COMMANDS[args.command]
    handler: Callable[[argparse.Namespace], int] = getattr(
        importlib.import_module(f"vigil._cli.{module}"), function)
    try:
        return handler(args)
    except ConfigError as exc:
        _print_issues(exc)
        return EXIT_INVALID_CONFIG
    except NoState as exc:
        print(f"vigil: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader left (`vigil logs | head`): done, not a failure to tell. What is
        # still buffered goes nowhere, so that the exit's flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def cmd_export(args: argparse.Namespace) -> int:
    from vigil._cli import export

    cfg = load(args)
    address = cfg.daemon.http_address()
    target = f"{address[0]}:{address[1]}" if address and not args.target else None
    return export.cmd_export(args, target, cfg.slos, bool(cfg.daemon.http_token))


def _print_issues(exc: ConfigError) -> None:
    print(f"vigil: invalid config ({exc.count}):", file=sys.stderr)
    for issue in exc.issues:
        print(f"  {issue}", file=sys.stderr)


def cmd_run(args: argparse.Namespace) -> int:
    from vigil._agent.agent import Agent

    # Until the config names the log's place, what is logged is kept (a plugin that
    # fails to load while the config is read), then written there.
    logs.hold()
    try:
        cfg = config_mod.load(args.config)
    except ConfigError:
        logs.configure("info", stream=sys.stderr)
        raise
    if (problem := _open_log(cfg)) is not None:
        logs.configure("info", stream=sys.stderr)
        print(f"vigil: {problem}", file=sys.stderr)
        return EXIT_INVALID_CONFIG
    try:
        return Agent(cfg, args.config).run()
    except OSError as exc:
        print(f"vigil: {exc}", file=sys.stderr)
        return 1


def _parse(words: list[str]) -> argparse.Namespace:
    """The command line. Targets may follow an option (`maintenance start --for 1m db`):
    argparse gives up a list of them that does not come first after a fixed word."""
    cli = parser()
    args, extra = cli.parse_known_args(words)
    if extra:
        if isinstance(getattr(args, "targets", None), list) and not any(
                word.startswith("-") for word in extra):
            args.targets += extra
        else:
            cli.parse_args(words)  # says what it did not recognise, and exits 2
    return args


def _open_log(cfg: Config) -> str | None:
    """The state folder made (a log inside it, in a folder of its own too), then the log
    opened; what stands in the way, in words."""
    daemon = cfg.daemon
    try:
        private_dir(daemon.state_dir, daemon.group_read)
    except OSError as exc:
        return f"cannot use state_dir {daemon.state_dir}: {exc.strerror or exc}"
    try:
        folder = Path(daemon.log_file).parent
        if daemon.log_file != "-" and folder.is_relative_to(daemon.state_dir):
            private_dir(folder, daemon.group_read)
        logs.configure(daemon.log_level, daemon.log_file, group=daemon.group_read)
    except OSError as exc:
        why = ("it is a symlink, which vigil does not follow" if exc.errno == errno.ELOOP
               else exc.strerror or str(exc))
        return f"cannot open log file {daemon.log_file}: {why}"
    return None


def cmd_validate(args: argparse.Namespace) -> int:
    cfg = load(args)
    print(f"{cfg.source}: valid ({plural(len(cfg.checks), 'check')}, "
          f"{plural(len(cfg.services), 'service')})")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    # Speaks the Nagios plugin language all the way: a check that cannot run is UNKNOWN.
    try:
        cfg = load(args)
    except ConfigError as exc:
        return _emit_check(args, args.name,
                           Result(Status.UNKNOWN, f"invalid config: {exc.issues[0]}"))
    spec = cfg.checks.get(args.name)
    if spec is None:
        known = ", ".join(sorted(cfg.checks)) or "none"
        return _emit_check(args, args.name, Result(
            Status.UNKNOWN, f"no check named {args.name!r} in {cfg.source} (known: {known})"))
    if args.update:
        return _update(spec.check)
    if spec.floor and not args.force and (held := _paced(cfg, spec)) is not None:
        return _emit_check(args, spec.name, Result(Status.UNKNOWN, f"not run: {held}"))
    outcome = Runner().run(spec.check, spec.timeout)
    if spec.floor:
        floor.note(cfg, spec.name, outcome)
    if args.heal and spec.service and not outcome.result.status.passing:
        if outcome.result.healable:
            from vigil._cli.heal import heal

            heal(cfg, spec.service, sys.stderr)  # stdout keeps its one Nagios line
            outcome = Runner().run(spec.check, spec.timeout)
        else:
            print(f"not healing {spec.service}: a restart would not help", file=sys.stderr)
    spec.check.close()
    return _emit_check(args, spec.name, outcome.result, outcome.duration_ms)


def _paced(cfg: Config, spec: CheckSpec) -> str | None:
    """Why a check that loads its service does not run now: its last run, by whoever
    made it, was less than its floor ago."""
    last = floor.last_run(spec, floor.saved(cfg)[1])
    if last is None or (wait := floor.began(last) + spec.floor - time.monotonic()) <= 0:
        return None
    return f"{paced(spec.floor, time.time() + wait)}; --force runs it now"


def _update(check: Any) -> int:
    update = getattr(check, "update", None)
    if update is None:
        print(f"vigil: a {type(check).__name__} check has nothing to update (--update is for "
              "checks that compare against a saved reference, like docs)", file=sys.stderr)
        return 2
    try:
        print(update())
    except OSError as exc:
        print(f"vigil: cannot update: {exc}", file=sys.stderr)
        return 1
    return 0


def _emit_check(args: argparse.Namespace, name: str, result: Result,
                duration_ms: float = 0.0) -> int:
    summary = redact(result.summary)
    status = result.status
    if args.json:
        print(json.dumps({"check": name, "status": status.name, "code": int(status),
                          "summary": summary, "metrics": result.metrics,
                          "details": result.details, "perfdata": result.perfdata or None,
                          "duration_ms": round(duration_ms, 2)}, default=str))
    else:
        perf = result.perfdata or format_perfdata(result.metrics)
        line = f"{name} {status.name} - {summary}" + (f" | {perf}" if perf else "")
        print(visible(line))
    return int(status)


def cmd_plugins(args: argparse.Namespace) -> int:
    from vigil._config.plugins import Plugins

    settings, cfg = lenient_load(args, "the plugins below are those it names that load")
    plugins = cfg.plugins if cfg else Plugins(settings.plugins)
    infos = list(plugins.infos.values())
    if args.json:
        print(json.dumps([vars(i) for i in infos], indent=2))
        return 0
    width = max((len(i.name) for i in infos), default=0) + 1
    origins = max((len(i.origin) for i in infos), default=0)
    for info in infos:
        offers = [f"check types: {', '.join(info.check_types)}"] if info.check_types else []
        if info.service_managers:
            offers.append(f"service managers: {', '.join(info.service_managers)}")
        if info.alert_sinks:
            offers.append(f"alert sinks: {', '.join(info.alert_sinks)}")
        line = f"{info.name:<{width}} {info.origin:<{origins}} {'; '.join(offers) or '-'}"
        print(line + (f"\n  FAILED: {info.error}" if info.error else ""))
    return 0


def cmd_service(args: argparse.Namespace) -> int:
    from vigil.service._install import LaunchdInstaller, SystemdInstaller

    user = user_scope(args)
    source = load(args).source  # never install a daemon that would refuse its own config
    if source == PACKAGED:
        target = paths.config_dir() / "config.toml"
        print(f"vigil: no config file found; write one first: vigil init {target}",
              file=sys.stderr)
        return 1
    config = str(Path(source).resolve())
    installer: Any = (SystemdInstaller(user, config, watchdog=args.watchdog)
                      if args.manager == "systemd" else LaunchdInstaller(user, config))
    report = getattr(installer, args.action)()
    print("\n".join(report.lines))
    if args.action == "status":
        return 0 if report.ok else 3
    return 0 if report.ok else 1




if __name__ == "__main__":
    sys.exit(main())
