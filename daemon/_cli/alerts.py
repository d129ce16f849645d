"""``vigil alerts`` (the open alerts and the silences, from the state database) and
``vigil silence`` (which writes a silence there, for the daemon to honour)."""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
import time
from datetime import UTC, datetime

from vigil._alerts import outbox
from vigil._api.alert import Silence
from vigil._cli.status import (
    read_database,
    running_config,
    running_settings,
    tell_daemon,
    write_database,
)
from vigil._kit.durations import format_duration
from vigil._kit.visible import shown


def _when(at: float | None) -> str:
    return "-" if at is None else datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def cmd_alerts(args: argparse.Namespace) -> int:
    now = time.time()
    rows, silences = read_database(running_settings(args),
                                   lambda conn: outbox.listing(conn, now))
    if args.json:
        print(json.dumps(outbox.as_json(rows, silences), indent=2))
        return 0
    if not rows:
        print("no open alerts")
    for row in rows:
        alert = row.alert
        delivery = ("pending" if row.pending else "delivered") + (
            f", {row.attempts} failed: {row.error}" if row.attempts else "")
        if row.pending and any(s.covers(row.check, now) for s in silences):
            delivery = "silenced"
        print(f"{row.sink}  {row.check}  {row.status.upper()} since {_when(alert.starts_at)}"
              f"  ({alert.reason}; {shown(delivery)}; last sent {_when(row.sent)})")
        if alert.healing:
            print(f"    healing: {shown(alert.healing)}")
    for entry in silences:
        print(f"silenced: {entry.pattern} until {_when(entry.until)}"
              + (f" ({entry.reason})" if entry.reason else ""))
    return 0


def cmd_silence(args: argparse.Namespace) -> int:
    settings, cfg = running_config(args)
    pattern = args.check
    if cfg is not None and not args.remove and not any(
            fnmatch.fnmatchcase(name, pattern) for name in cfg.checks):
        print(f"vigil: no check matches {pattern!r} (checks: {', '.join(sorted(cfg.checks))})",
              file=sys.stderr)
        return 1
    now = time.time()
    if args.remove:
        if not write_database(settings.state_dir, lambda c: outbox.unsilence(c, pattern)):
            print(f"vigil: no silence for {pattern!r}", file=sys.stderr)
            return 1
    else:
        write_database(settings.state_dir, lambda c: outbox.silence(
            c, Silence(pattern, now + args.for_s, args.reason, now)))
    news = tell_daemon(settings.state_dir, "silences")
    if args.remove:
        print(f"{pattern}: silence removed; {news} sends what it held back")
    else:
        print(f"{pattern}: silenced for {format_duration(args.for_s)}, until "
              f"{_when(now + args.for_s)}; {news} holds back its alerts")
    return 0
