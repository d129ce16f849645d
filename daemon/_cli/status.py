"""``vigil status`` and ``vigil logs``: the commands an operator runs when something is
wrong, so they read what the running daemon runs with, and a broken config file on disk
is a warning to them, not a failure."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sqlite3
import sys
from collections.abc import Callable, Generator
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from vigil._agent import control, logs, runtime
from vigil._api.errors import ConfigError
from vigil._cli import logview
from vigil._config import loader as config_mod
from vigil._config.sections import Config, DaemonSettings
from vigil._kit.private import private_dir
from vigil._kit.visible import shown, visible
from vigil._store import database
from vigil._store.records import CheckEntry, HealRecord, ServiceEntry, Snapshot

T = TypeVar("T")


def load(args: argparse.Namespace) -> Config:
    """The config a command names, its errors raised. Outside the daemon, errors (a
    plugin that fails to load) go to stderr as plain lines; the command's own output is
    on stdout."""
    logs.configure_command()
    return config_mod.load(args.config)


def lenient_load(args: argparse.Namespace, consequence: str
                 ) -> tuple[DaemonSettings, Config | None]:
    """The config, or when it is not valid, a warning (not a failure) and its [daemon]
    section as far as it reads: (settings, the whole config or None)."""
    logs.configure_command()
    try:
        cfg = config_mod.load(args.config)
    except ConfigError as exc:
        settings = config_mod.load_daemon(args.config)
        print(f"vigil: warning: {settings.source} is not a valid config ({exc.count}; "
              f"`vigil config validate` lists them); {consequence}", file=sys.stderr)
        return settings, None
    return cfg.daemon, cfg


def running_config(args: argparse.Namespace
                   ) -> tuple[DaemonSettings, Config | None]:
    """The [daemon] settings of the daemon that runs this config, else of the file on
    disk, and the config when it is valid. A broken file is a warning here, not a
    failure: these are the commands an operator needs when something is wrong."""
    settings, cfg = lenient_load(args, "a running daemon keeps the config it last loaded")
    running = runtime.find(settings.source)
    if running:
        settings.state_dir = Path(running["state_dir"])
        settings.log_file = running["log_file"]
    return settings, cfg


def running_settings(args: argparse.Namespace) -> DaemonSettings:
    return running_config(args)[0]


class NoState(Exception):
    """The state database cannot be read; the message says why. `vigil` exits 3."""


def read_database(settings: DaemonSettings,
                  read: Callable[[sqlite3.Connection], T]) -> T:
    """``read(connection)`` on the state database, read-only."""
    try:
        conn = database.connect_readonly(settings.state_dir)
        if conn is None:
            raise NoState(f"no state database in {settings.state_dir} (has the daemon run "
                          "with this config?)")
        with contextlib.closing(conn):
            return read(conn)
    except sqlite3.Error as exc:
        raise NoState(f"cannot read {settings.state_dir / database.DB}: {exc}") from None


def write_database(state_dir: Path, write: Callable[[sqlite3.Connection], T]) -> T:
    """``write(connection)`` on the state database, made if need be; NoState (exit 3)
    when it cannot be written."""
    try:
        private_dir(state_dir)
        conn = database.open_database(state_dir / database.DB)
    except (sqlite3.Error, database.Unreadable, OSError) as exc:
        raise NoState(f"cannot write {state_dir / database.DB}: {exc}") from None
    with contextlib.closing(conn):
        return write(conn)


def tell_daemon(state_dir: Path, command: str) -> str:
    """Ask the running daemon to look at what a command wrote; who will act on it, in
    words."""
    try:
        control.request(state_dir, {"command": command}, lambda _e: None)
    except control.Unreachable:
        return "the daemon when it starts"
    return "the running daemon"


def cmd_status(args: argparse.Namespace) -> int:
    settings = running_settings(args)
    path = settings.state_dir / database.DB
    live = ask_daemon(settings.state_dir)
    try:
        state = live if live is not None else database.read_state_at(settings.state_dir)
        if live is not None:
            _add_uptime(settings.state_dir, live)
    except (sqlite3.Error, OSError, ValueError) as exc:
        print(f"vigil: cannot read {path}: {exc}", file=sys.stderr)
        return 3
    running = live is not None or (
        state is not None and runtime.daemon_alive(state.get("daemon", {})))
    source = "daemon" if live is not None else "database"
    if args.json:
        print(json.dumps({"running": running, "source": source, "state_file": str(path),
                          **(state or {})}, indent=2, default=str))
        return 0 if running else 3
    if state is None:
        print(f"vigil is not running: no state in {settings.state_dir}")
        return 3
    info = state.get("daemon", {})
    if live is not None:
        print(f"vigil is running (pid {info.get('pid')}, since {info.get('started')}, "
              f"config {info.get('config')})")
    elif running:
        # Its control socket did not answer (see control.unavailable in its log).
        print(f"vigil is running (pid {info.get('pid')}) but does not answer on its control "
              f"socket; as it last wrote its state, {info.get('updated', 'at an unknown time')}")
    elif info.get("updated"):
        print(f"vigil is not running; as it last wrote its state, {info['updated']}")
    else:
        print("vigil is not running; from the state database")
    print(render(state), end="")
    return 0 if running else 3


def ask_daemon(state_dir: Path) -> Snapshot | None:
    """What the running daemon sees now, over its control socket; None when none
    answers."""
    try:
        answer = control.request(state_dir, {"command": "status"}, lambda _e: None)
    except (control.Unreachable, OSError, ValueError):
        return None
    state: Snapshot | None = answer.get("state") if answer.get("ok") else None
    return state


def _add_uptime(state_dir: Path, state: Snapshot) -> None:
    """Each check's uptime over 24 hours, from the history (the daemon keeps none in
    memory)."""
    conn = database.connect_readonly(state_dir)
    if conn is None:
        return
    with contextlib.closing(conn):
        uptimes = database.uptime_24h(conn, list(state["checks"]))
    for name, entry in state["checks"].items():
        entry["uptime_24h"] = uptimes.get(name)


def user_scope(args: argparse.Namespace) -> bool:
    """--user or --system as given; else the user's own service unless run as root."""
    return args.user if args.user is not None else os.geteuid() != 0


def cmd_logs(args: argparse.Namespace) -> int:
    from vigil.service._install import UNIT, LaunchdInstaller

    log_file = running_settings(args).log_file
    user = user_scope(args)
    if log_file != "-":
        path = Path(log_file)
    elif sys.platform == "darwin":
        path = LaunchdInstaller.log_dir(user) / "vigil.log"  # the plist's StandardOutPath
    elif shutil.which("journalctl"):
        # Filters need the whole journal to find the last N lines that match.
        backlog = None if args.check or args.level else args.lines
        return _show(logview.journal(UNIT, user, backlog, args.follow), args)
    else:
        print("vigil: this config logs to stdout (log_file = \"-\") and there is no "
              "journalctl here to read it back; set [daemon] log_file to a path",
              file=sys.stderr)
        return 1
    if not path.exists():
        print(f"vigil: no log yet at {path}", file=sys.stderr)
        return 1
    return _show(logview.file_lines(path, args.follow), args)


def _show(source: Generator[str, None, None], args: argparse.Namespace) -> int:
    # `timeout`, `systemctl stop` and friends send SIGTERM: end as after Ctrl-C, so that
    # the journalctl being followed is stopped too.
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        with contextlib.closing(source):
            logview.show(source, sys.stdout, tail=args.lines, check=args.check,
                         level=args.level, raw=args.json)
    except logview.JournalError as exc:
        print(f"vigil: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


def render(state: Snapshot) -> str:
    """``vigil status`` as text: a table of the checks, and one of the services."""
    text = _table(_check_rows(state.get("checks", {})))
    if services := state.get("services"):
        text += "\n" + _table(_service_rows(services))
    return text


def _check_rows(checks: dict[str, CheckEntry]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [("CHECK", "STATE", "STATUS", "AGE", "UP 24H", "SERVICE",
                                    "SUMMARY")]
    now = datetime.now(UTC)
    # .get throughout: the rows may have been saved by an older vigil.
    for name, entry in sorted(checks.items()):
        last = entry.get("last")
        age = "-"
        if last:
            age = f"{(now - datetime.fromisoformat(last['at'])).total_seconds():.0f}s"
        state = entry.get("state", "?") if entry.get("enabled", True) else "DISABLED"
        up = entry.get("uptime_24h")
        rows.append((name, state, last["status"] if last else "-", age,
                     "-" if up is None else f"{up * 100:.2f}%",
                     entry.get("service") or "-", shown(last["summary"] if last else "")))
    return rows


def _service_rows(services: dict[str, ServiceEntry]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [("SERVICE", "MANAGER", "HEALS", "HEALING", "WATCHED", "PORT",
                                    "LAST HEAL")]
    for name, entry in sorted(services.items()):
        last: HealRecord = entry.get("last") or {}
        state = "GAVE UP" if entry.get("given_up") else ("yes" if entry.get("healing") else "-")
        outcome = last.get("outcome", "-").removeprefix("heal.")
        if last.get("reason") and outcome != "succeeded":
            outcome += f": {last['reason']}"
        port = (entry.get("manager_state") or {}).get("port")
        rows.append((name, entry.get("describe", entry.get("manager", "?")),
                     f"{len(entry.get('history', []))} of {entry.get('restarts', '?')}", state,
                     "yes" if entry.get("watching") else "no (polled)", str(port or "-"),
                     shown(outcome)))
    return rows


def _table(rows: list[tuple[str, ...]]) -> str:
    """Columns padded to fit; the last one runs free. Every cell shown as a terminal
    may print it (a check's name comes from the config, its summary from the check)."""
    rows = [tuple(visible(cell) for cell in row) for row in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False))
                   + "  " + row[-1] + "\n" for row in rows)
