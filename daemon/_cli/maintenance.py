"""``vigil maintenance start|end|list``: maintenance windows, written to the state
database (with or without a daemon running) for the daemon to honour, as silences are;
and the config's scheduled windows, listed and ended early."""

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
    tell_daemon,
    write_database,
)
from vigil._engine import maintenance as scheduled
from vigil._kit.durations import format_duration
from vigil._kit.visible import shown
from vigil._store import maintenance
from vigil._store.maintenance import Window


def _at(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _when(at: float | None) -> str:
    return "until ended" if at is None else "until " + _at(at)


def cmd_maintenance(args: argparse.Namespace) -> int:
    if args.action == "list":
        return _list(args)
    if not args.targets:
        print(f"vigil: name what to {args.action} maintenance of: a service, or a check "
              "glob ('db*')" + (", or a scheduled window" if args.action == "end" else ""),
              file=sys.stderr)
        return 2
    if args.action == "end":
        return _end(args)
    if args.for_s is None and not args.until_end:
        print("vigil: say how long: --for 30m, or --until-end for a window that lasts "
              "until `vigil maintenance end`", file=sys.stderr)
        return 2
    if args.for_s is not None and args.for_s <= 0:
        print(f"vigil: --for must be longer than 0s, got {format_duration(args.for_s)}",
              file=sys.stderr)
        return 2
    settings, cfg = running_config(args)
    if cfg is not None:
        unknown = [t for t in args.targets if t not in cfg.services
                   and not any(fnmatch.fnmatchcase(name, t) for name in cfg.checks)]
        if unknown:
            print(f"vigil: {', '.join(map(repr, unknown))}: neither a service nor a glob "
                  f"matching a check (services: {', '.join(sorted(cfg.services)) or 'none'})",
                  file=sys.stderr)
            return 2
    now = time.time()
    until = None if args.until_end else now + args.for_s
    targets: list[str] = args.targets

    def change(conn: sqlite3.Connection) -> None:
        for target in targets:
            maintenance.start(conn, Window(target, until, args.reason, now,
                                           "vigil maintenance"))

    write_database(settings.state_dir, change)
    news = tell_daemon(settings.state_dir, "maintenance")
    length = "" if until is None else f" for {format_duration(args.for_s)},"
    for target in args.targets:
        print(f"{target}: maintenance{length} {_when(until)}; {news} neither heals nor "
              "alerts for it")
    return 0


def _end(args: argparse.Namespace) -> int:
    """End the windows on the targets, and the scheduled windows of those names in
    force; each target that names nothing in force is an error, said and not claimed."""
    settings, cfg = running_config(args)
    schedules = cfg.schedules if cfg is not None else {}
    targets: list[str] = args.targets
    now = time.time()

    def change(conn: sqlite3.Connection
               ) -> tuple[list[str], list[scheduled.Scheduled], list[str]]:
        """The targets that named nothing in force, the scheduled windows after, and the
        globs of the windows in force."""
        missing = [t for t in targets if not scheduled.end(conn, t, schedules, now)]
        return (missing, scheduled.listing(schedules.values(),
                                           maintenance.schedule_ends(conn), now),
                [w.target for w in maintenance.windows(conn) if w.open(now)])

    missing, plans, globs = write_database(settings.state_dir, change)
    news = tell_daemon(settings.state_dir, "maintenance") if len(missing) < len(targets) \
        else ""
    for target in targets:
        if target not in missing:
            print(f"{target}: maintenance ended; {news} judges its checks afresh")
            continue
        # A service a scheduled window holds is ended by that window's name.
        holding = "".join(f"; the scheduled window {s['name']!r} holds it: `vigil "
                          f"maintenance end {s['name']}` ends it"
                          for s in plans if s["since"] is not None and scheduled.names(s, target))
        # Likewise a check that a window on a glob holds: ended by that glob.
        holding += "".join(f"; the window on {glob!r} holds it: `vigil maintenance end "
                           f"'{glob}'` ends it" for glob in globs
                           if glob != target and fnmatch.fnmatchcase(target, glob))
        print(f"vigil: no maintenance of {target!r} in force{holding}", file=sys.stderr)
    return 1 if missing else 0


def _list(args: argparse.Namespace) -> int:
    settings, cfg = running_config(args)
    now = time.time()
    stored, ends = read_database(settings, lambda conn: (
        maintenance.windows(conn), maintenance.schedule_ends(conn)))
    targets: list[str] = args.targets
    current = [w for w in stored if w.open(now) and (not targets or any(
        fnmatch.fnmatchcase(w.target, t) or fnmatch.fnmatchcase(t, w.target)
        for t in targets))]
    plans = [s for s in scheduled.listing(cfg.schedules.values() if cfg else [], ends, now)
             if not targets or any(scheduled.names(s, t) for t in targets)]
    if args.json:
        print(json.dumps({"maintenance": [vars(w) for w in current], "scheduled": plans},
                         indent=2))
        return 0
    if not current and not any(s["since"] is not None for s in plans):
        print("no maintenance in force" + (f" on {', '.join(targets)}" if targets else ""))
    for w in current:
        reason = f"  ({w.reason})" if w.reason else ""
        print(shown(f"{w.target}  {_when(w.until)}  by {w.by}{reason}"))
    for s in plans:
        covers = ", ".join([*s["services"], *s["checks"]])
        state = ("not in force" if s["since"] is None or s["until"] is None
                 else f"in force since {_at(s['since'])} {_when(s['until'])}")
        upcoming = "never again" if s["next_start"] is None else _at(s["next_start"])
        print(f"scheduled {s['name']} ({covers})  {state}; next {upcoming}"
              + (f"  ({s['reason']})" if s["reason"] else ""))
    return 0
