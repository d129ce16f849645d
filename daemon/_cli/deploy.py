"""``vigil deploy SERVICE... -- COMMAND...``: maintenance around a change, then the deploy
gate. Opens maintenance on the services (no heal, no alert while the command works),
runs the command (an argv, never a shell; its output streamed), ends the maintenance,
waits until their checks pass steadily (`vigil wait`), and when the command fails or the
wait times out runs ``--rollback`` under maintenance (a failed command's window stays
open through it) and waits again. Each step is a log line, and the
outcome a line of each service's history (the status page shows it)."""

from __future__ import annotations

import argparse
import contextlib
import shlex
import sqlite3
import subprocess
import sys
import time

import structlog

from vigil._agent import logs
from vigil._cli.status import NoState, load, tell_daemon, write_database
from vigil._cli.wait import Board, gate, matching
from vigil._config.sections import Config
from vigil._kit.durations import format_duration
from vigil._store import database, maintenance

log = structlog.get_logger("vigil.deploy")


def cmd_deploy(args: argparse.Namespace) -> int:
    cfg = load(args)
    unknown = [s for s in args.services if s not in cfg.services]
    if unknown:
        print(f"vigil: no service named {', '.join(map(repr, unknown))} (services: "
              f"{', '.join(sorted(cfg.services)) or 'none'})", file=sys.stderr)
        return 2
    if not args.argv:
        print("vigil: name the command after --: vigil deploy app -- ./release.sh",
              file=sys.stderr)
        return 2
    # Its steps are what the operator (or the pipeline's log) reads: JSON lines, or
    # pretty ones on a terminal.
    logs.configure("info", stream=sys.stderr)
    write_database(cfg.daemon.state_dir, lambda _conn: None)  # before changing anything
    names = matching(cfg, args.services)
    began = time.time()
    log.info("deploy.started", services=args.services, command=shlex.join(args.argv))
    _window(cfg, args.services, "start", began)
    code, failure = _run(args.argv, args.timeout)
    # A failed command is rolled back under the same window: ended in between, the
    # daemon would heal (restart) the broken release while the rollback replaces it.
    held = bool(code and args.rollback)
    if not held:
        _window(cfg, args.services, "end", began)
    log.info("deploy.command_done", exit_code=code, **({"reason": failure} if failure else {}))
    healthy = code == 0 and _healthy(cfg, names, args)
    if healthy:
        took = round(time.time() - began, 1)
        log.info("deploy.healthy", services=args.services, took_s=took)
        _record(cfg, args.services, began, "deploy.healthy", took)
        return 0
    if args.rollback:
        log.warning("deploy.rolling_back", command=args.rollback,
                    reason=failure or "not healthy in time")
        if not held:
            _window(cfg, args.services, "start", began)
        back, failed_back = _run(shlex.split(args.rollback), args.timeout)
        _window(cfg, args.services, "end", began)
        recovered = back == 0 and _healthy(cfg, names, args)
        log.error("deploy.rolled_back", exit_code=back, healthy=recovered,
                  **({"reason": f"the rollback: {failed_back}"} if failed_back else {}))
        _record(cfg, args.services, began, "deploy.rolled_back", None)
        return 1
    log.error("deploy.failed", exit_code=code, reason=failure or "not healthy in time")
    _record(cfg, args.services, began, "deploy.failed", None)
    return 1


def _run(argv: list[str], timeout: float) -> tuple[int, str]:
    """The command, its output streamed to ours: its exit code (124 when it was killed
    at the timeout), and why it failed ("" when it did not)."""
    try:
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    except OSError as exc:
        log.error("deploy.command_failed", error=f"cannot run {argv[0]}: {exc}")
        return 127, f"the command could not run: {exc}"
    try:
        code = child.wait(timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
        return 124, f"the command timed out after {format_duration(timeout)} (--timeout)"
    return code, f"the command failed (exit code {code})" if code else ""


def _healthy(cfg: Config, names: list[str], args: argparse.Namespace) -> bool:
    return bool(gate(cfg, names, args.timeout, args.stable, Board(names, sys.stdout)).get("ok"))


def _window(cfg: Config, services: list[str], action: str, since: float) -> None:
    """Open (until ended) or end the deploy's maintenance of ``services``."""

    def change(conn: sqlite3.Connection) -> None:
        for service in services:
            if action == "start":
                maintenance.start(conn, maintenance.Window(service, None, "deploy", since,
                                                           "vigil deploy"))
            else:
                maintenance.end(conn, service)

    write_database(cfg.daemon.state_dir, change)
    tell_daemon(cfg.daemon.state_dir, "maintenance")


def _record(cfg: Config, services: list[str], began: float, outcome: str,
            took: float | None) -> None:
    """A line of each service's history: what the status page lists with its heals."""
    def insert(conn: sqlite3.Connection) -> None:
        conn.executemany("INSERT INTO heals VALUES (?, ?, ?, ?)", [
            (int(began * 1000), service, outcome, database.compact(
                {"outcome": outcome, "recovery_s": took, "reason": "deploy"}))
            for service in services])

    with contextlib.suppress(NoState, sqlite3.Error):  # the deploy's outcome stands anyway
        write_database(cfg.daemon.state_dir, insert)
