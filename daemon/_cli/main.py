"""The ``vigil`` command."""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sqlite3
import sys
from pathlib import Path
from typing import Any, TextIO

from vigil._agent import logs, runtime
from vigil._api.check import Result, Status
from vigil._api.errors import ConfigError
from vigil._cli import logview
from vigil._cli.alerts import cmd_alerts, cmd_silence
from vigil._cli.history import cmd_history
from vigil._cli.status import NoState, cmd_logs, cmd_status, lenient_load, user_scope
from vigil._config import loader as config_mod
from vigil._config.sections import PACKAGED, Config
from vigil._engine.runner import Runner
from vigil._kit import paths
from vigil._kit.durations import parse_duration
from vigil._kit.perfdata import format_perfdata
from vigil._kit.redact import redact
from vigil._kit.words import plural

EXIT_INVALID_CONFIG = 1


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


def _parser() -> argparse.ArgumentParser:
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
    as_json = "print JSON instead of text"

    _command(sub, "run", parents=[common], help="run the daemon in the foreground")
    p = _command(sub, "check", parents=[common],
                       help="run one check once; Nagios output and exit code")
    p.add_argument("name", help="the check's name, as in [checks.NAME]")
    p.add_argument("--json", action="store_true", help=as_json)
    p.add_argument("--heal", action="store_true",
                   help="when the check fails and guards a service, heal it and check again")
    p.add_argument("--update", action="store_true",
                   help="take what the check compares against from things as they are now "
                        "(the docs check's manifest)")
    p = _command(sub, "config", parents=[common], help="work with the config")
    p.add_argument("action", choices=["validate"],
                   help="validate: exit 0 when valid, else 1 listing every error")
    p = _command(sub, "plugins", parents=[common], help="list plugins and their check types")
    p.add_argument("--json", action="store_true", help=as_json)
    p = _command(sub, "init", parents=[common], help="write a starter config")
    p.add_argument("path", nargs="?", help="where to write it (default: -c FILE, or "
                                           "config.toml)")
    p.add_argument("--force", action="store_true",
                   help="overwrite an existing file (the old one is kept as FILE.bak, or "
                        "FILE.bak.1, .2... when that is taken)")
    p.add_argument("--detect", action="store_true",
                   help="look for PostgreSQL, Redis and MCP servers here and configure them")
    p = _command(sub, "status", parents=[common], help="what the running daemon sees")
    p.add_argument("--json", action="store_true", help=as_json)
    p = _command(sub, "history", parents=[common],
                       help="one check's results, state changes and uptime")
    p.add_argument("check", help="the check's name")
    p.add_argument("--since", type=_duration, default=3600.0, metavar="DURATION",
                   help="how far back (default 1h; results older than the raw window "
                        "come as rollups)")
    p.add_argument("--json", action="store_true", help=as_json)
    p = _command(sub, "alerts", parents=[common],
                       help="the open alerts, where they were sent, and the silences")
    p.add_argument("--json", action="store_true", help=as_json)
    p = _command(sub, "silence", parents=[common],
                       help="hold back a check's alerts for a while (kept across restarts)")
    p.add_argument("check", help="a check's name, or a glob: 'db*'")
    p.add_argument("--for", dest="for_s", type=_duration, default=3600.0,
                   metavar="DURATION", help="how long (default 1h)")
    p.add_argument("--reason", default="", help="why, for `vigil alerts` and the log")
    p.add_argument("--remove", action="store_true", help="end the silence now")
    p = _command(sub, "heal", parents=[common],
                       help="heal a service now and reset its restart budget")
    p.add_argument("service", help="the service's name, as in [services.NAME]")
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
    p = _command(sub, "export", parents=[common],
                       help="what Prometheus needs to watch many agents: rules, config")
    p.add_argument("engine", choices=["prometheus"], help="the monitoring system")
    p.add_argument("what", choices=["rules", "config"],
                   help="rules: alerting rules on vigil's metrics; config: a scrape config "
                        "that loads them")
    p.add_argument("--target", action="append", metavar="HOST:PORT",
                   help="an agent to scrape (repeatable; default: this config's http)")
    p.add_argument("--rules", default="vigil-rules.yml", metavar="FILE",
                   help="the rules file the config loads (default vigil-rules.yml)")
    p.add_argument("--token-file", metavar="FILE",
                   help="the agents' http_token, for the scrape's bearer token")
    p.add_argument("--interval", type=_duration, default=15.0, metavar="DURATION",
                   help="scrape and rule evaluation interval (default 15s)")
    p.add_argument("--for", dest="for_s", type=_duration, default=60.0,
                   metavar="DURATION", help="how long a rule must hold to fire (default 1m)")
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("vigil-daemon")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _duration(text: str) -> float:
    """A duration argument, with the config's own words when it is wrong."""
    try:
        return float(parse_duration(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"bad duration {text!r} (use 250ms, 10s, 5m, 1h...)") from None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler = {"run": cmd_run, "check": cmd_check, "config": cmd_validate,
               "plugins": cmd_plugins, "init": cmd_init, "status": cmd_status,
               "history": cmd_history, "alerts": cmd_alerts, "silence": cmd_silence,
               "logs": cmd_logs, "heal": cmd_heal, "service": cmd_service,
               "export": cmd_export}[args.command]
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


def cmd_export(args: argparse.Namespace) -> int:
    from vigil._cli import export

    target = None
    if args.what == "config" and not args.target:
        address = _load(args).daemon.http_address()
        target = f"{address[0]}:{address[1]}" if address else None
    return export.cmd_export(args, target)


def _load(args: argparse.Namespace) -> Config:
    # Outside the daemon, errors (a plugin that fails to load) go to stderr as plain
    # lines; the command's own output is on stdout.
    logs.configure_command()
    return config_mod.load(args.config)


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
    try:
        logs.configure(cfg.daemon.log_level, cfg.daemon.log_file)
    except OSError as exc:
        logs.configure("info", stream=sys.stderr)
        print(f"vigil: cannot open log file {cfg.daemon.log_file}: {exc.strerror}",
              file=sys.stderr)
        return EXIT_INVALID_CONFIG
    try:
        return Agent(cfg, args.config).run()
    except OSError as exc:
        print(f"vigil: {exc}", file=sys.stderr)
        return 1


def cmd_validate(args: argparse.Namespace) -> int:
    cfg = _load(args)
    print(f"{cfg.source}: valid ({plural(len(cfg.checks), 'check')}, "
          f"{plural(len(cfg.services), 'service')})")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    # Speaks the Nagios plugin language all the way: a check that cannot run is UNKNOWN.
    try:
        cfg = _load(args)
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
    outcome = Runner().run(spec.check, spec.timeout)
    if args.heal and spec.service and not outcome.result.status.passing:
        if outcome.result.healable:
            _heal(cfg, spec.service, sys.stderr)  # stdout keeps its one Nagios line
            outcome = Runner().run(spec.check, spec.timeout)
        else:
            print(f"not healing {spec.service}: a restart would not help", file=sys.stderr)
    spec.check.close()
    return _emit_check(args, spec.name, outcome.result, outcome.duration_ms)


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
        print(f"{name} {status.name} - {summary}" + (f" | {perf}" if perf else ""))
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
    for info in infos:
        offers = [f"check types: {', '.join(info.check_types)}"] if info.check_types else []
        if info.service_managers:
            offers.append(f"service managers: {', '.join(info.service_managers)}")
        if info.alert_sinks:
            offers.append(f"alert sinks: {', '.join(info.alert_sinks)}")
        line = f"{info.name:<{width}} {info.origin:<32} {'; '.join(offers) or '-'}"
        print(line + (f"\n  FAILED: {info.error}" if info.error else ""))
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    path = Path(args.path or args.config or "config.toml")
    if path.exists() and not args.force:
        print(f"vigil: {path} exists; pass --force to replace it (the old file is kept "
              f"as {_backup_name(path)})", file=sys.stderr)
        return 1
    if path.exists():
        backup = _backup_name(path)
        shutil.copy2(path, backup)
        print(f"kept the old {path} as {backup}")
    path.parent.mkdir(parents=True, exist_ok=True)
    text = config_mod.packaged_text()
    if args.detect:
        from vigil._cli.detect import detect
        from vigil._config.plugins import Plugins

        logs.configure_command()
        findings = detect(Plugins())
        for found in findings.items:
            print(f"found {found.name}: {found.note}")
        if not findings.items:
            print("found nothing to configure beyond the system check")
        else:
            text += "\n" + findings.toml()
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}; check it with: vigil config validate -c {path}")
    return 0


def _backup_name(path: Path) -> Path:
    """FILE.bak, or the first free FILE.bak.N: an earlier backup is never overwritten."""
    candidate, n = path.with_name(f"{path.name}.bak"), 0
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}.bak.{n}")
    return candidate


def cmd_heal(args: argparse.Namespace) -> int:
    cfg = _load(args)
    if args.service not in cfg.services:
        known = ", ".join(cfg.services) or "none declared"
        print(f"vigil: no service named {args.service!r} (known: {known})", file=sys.stderr)
        return 2
    answer = _heal(cfg, args.service)
    if "error" in answer:
        print(f"vigil: {answer['error']}", file=sys.stderr)
        return 2
    if not answer.get("ok"):
        why = answer.get("reason", answer.get("outcome"))
        print(f"vigil: heal of {args.service} did not succeed: {why}",
              file=sys.stderr)
        return 2
    return 0


def _heal(cfg: Config, service: str, out: TextIO = sys.stdout) -> dict[str, Any]:
    """Heal through the running daemon, or directly when none runs, showing progress."""
    from vigil._agent import control
    from vigil._cli import oneshot

    show = _progress_printer(out)
    try:
        return control.request(cfg.daemon.state_dir, {"command": "heal", "service": service},
                               lambda event: show(event.pop("event", "?"), **event))
    except control.Unreachable as exc:
        running = runtime.find(cfg.source) or _daemon_of(cfg)
        if running:
            # Never heal beside a running daemon: two healers of one service race.
            return {"ok": False, "error": f"a daemon runs this config (PID {running['pid']}) "
                    f"but does not answer on its control socket ({exc}); not healing beside "
                    "it"}
        print(f"no daemon runs (none answers on {cfg.daemon.state_dir / control.SOCKET}): "
              f"healing {service} directly", file=sys.stderr)
    # The progress lines say what the heal's log lines would: not both.
    logging.getLogger("vigil.heal").setLevel(logging.CRITICAL)
    return oneshot.heal(cfg, service, show)


def _daemon_of(cfg: Config) -> dict[str, Any] | None:
    """The daemon that writes this config's state database, if it still runs."""
    from vigil._agent.runtime import daemon_alive
    from vigil._store import database

    try:
        state = database.read_state_at(cfg.daemon.state_dir)
    except (sqlite3.Error, OSError, ValueError):
        return None
    info = (state or {}).get("daemon", {})
    return info if daemon_alive(info) else None


def _progress_printer(out: TextIO) -> Any:
    live = out.isatty()

    def show(event: str, **fields: Any) -> None:
        service = fields.get("service", "")
        if event == "heal.waiting":
            line = (f"waiting for {service}: {fields['elapsed_s']:.0f}s of "
                    f"{fields['timeout_s']:g}s")
            # On a terminal, one line that counts up; in a pipe, one line per step.
            out.write(f"\r\033[K{line}" if live else f"{line}\n")
            out.flush()
            return
        detail = fields.get("action") or ""
        reason = fields.get("reason", "")
        if event == "heal.succeeded":
            reason = f"check passes after {fields['recovery_s']:.1f}s"
        elif event == "heal.failed" and (said := str(fields.get("output") or "").strip()):
            reason = f"{reason}: {said.splitlines()[-1][:200]}"  # the command's last words
        text = f"{event} {service} {detail} {redact(str(reason))}".rstrip()
        out.write(f"\r\033[K{text}\n" if live else f"{text}\n")
        out.flush()

    return show


def cmd_service(args: argparse.Namespace) -> int:
    from vigil.service._install import LaunchdInstaller, SystemdInstaller

    user = user_scope(args)
    source = _load(args).source  # never install a daemon that would refuse its own config
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
