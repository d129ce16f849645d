"""``vigil maintenance start|end|list``: maintenance windows, written to the state
database (with or without a daemon running) for the daemon to honour, as silences are."""

from __future__ import annotations

import argparse
import fnmatch
import json
import sqlite3
import sys
import time
from datetime import UTC, datetime

from vigil._cli.status import (
    read_database,
    running_config,
    running_settings,
    tell_daemon,
    write_database,
)
from vigil._kit.durations import format_duration
from vigil._store import maintenance
from vigil._store.maintenance import Window


def _when(at: float | None) -> str:
    return "until ended" if at is None else "until " + datetime.fromtimestamp(
        at, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def cmd_maintenance(args: argparse.Namespace) -> int:
    if args.action == "list":
        return _list(args)
    if not args.targets:
        print(f"vigil: name what to {args.action} maintenance of: a service, or a check "
              "glob ('db*')", file=sys.stderr)
        return 2
    if args.action == "start" and args.for_s is None and not args.until_end:
        print("vigil: say how long: --for 30m, or --until-end for a window that lasts "
              "until `vigil maintenance end`", file=sys.stderr)
        return 2
    settings, cfg = running_config(args)
    if cfg is not None and args.action == "start":
        unknown = [t for t in args.targets if t not in cfg.services
                   and not any(fnmatch.fnmatchcase(name, t) for name in cfg.checks)]
        if unknown:
            print(f"vigil: {', '.join(map(repr, unknown))}: neither a service nor a glob "
                  f"matching a check (services: {', '.join(sorted(cfg.services)) or 'none'})",
                  file=sys.stderr)
            return 1
    now = time.time()
    until = None if args.action == "end" or args.until_end else now + args.for_s

    targets: list[str] = args.targets

    def change(conn: sqlite3.Connection) -> str | None:
        """The target that had no window to end, if one had not."""
        for target in targets:
            if args.action == "start":
                maintenance.start(conn, Window(target, until, args.reason, now,
                                               "vigil maintenance"))
            elif not maintenance.end(conn, target):
                return target
        return None

    if (missing := write_database(settings.state_dir, change)) is not None:
        print(f"vigil: no maintenance of {missing!r}", file=sys.stderr)
        return 1
    news = tell_daemon(settings.state_dir, "maintenance")
    for target in args.targets:
        if args.action == "start":
            length = "" if until is None else f" for {format_duration(args.for_s)},"
            print(f"{target}: maintenance{length} {_when(until)}; {news} neither heals nor "
                  "alerts for it")
        else:
            print(f"{target}: maintenance ended; {news} judges its checks afresh")
    return 0


def _list(args: argparse.Namespace) -> int:
    now = time.time()
    found = read_database(running_settings(args), maintenance.windows)
    current = [w for w in found if w.open(now)]
    if args.json:
        print(json.dumps({"maintenance": [vars(w) for w in current]}, indent=2))
        return 0
    if not current:
        print("no maintenance")
    for w in current:
        print(f"{w.target}  {_when(w.until)}  by {w.by}" + (f"  ({w.reason})" if w.reason
                                                           else ""))
    return 0
