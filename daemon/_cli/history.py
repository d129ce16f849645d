"""``vigil history CHECK``: one check's results, state changes and uptime, from the state
database (every result for the recent window, rollups before it)."""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from datetime import UTC, datetime

from vigil._baseline.detector import WARMUP
from vigil._cli.status import read_database, running_settings
from vigil._config.sections import DaemonSettings
from vigil._kit.visible import shown
from vigil._store import database, history
from vigil._store.records import AnomalyRow, CheckHistory


def cmd_history(args: argparse.Namespace) -> int:
    settings = running_settings(args)
    if args.anomalies:
        return _anomalies(args, settings)
    found = read_database(settings, lambda conn: database.history_of(
        conn, args.check, time.time() - (3600.0 if args.since is None else args.since)))
    if found is None:
        print(f"vigil: no history of a check named {args.check!r} in "
              f"{settings.state_dir / database.DB} (is `history = false`, or has it not run "
              "yet?)", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(found, indent=2))
    else:
        print(_render(found), end="")
    return 0


def _anomalies(args: argparse.Namespace, settings: DaemonSettings) -> int:
    """``--anomalies``: the check's anomalies since ``--since`` (30 days unless given),
    after what its baselines have learnt (or that it has none)."""
    since = time.time() - (30 * 86400 if args.since is None else args.since)

    def read(conn: sqlite3.Connection
             ) -> tuple[list[AnomalyRow], dict[str, dict[str, int]] | None] | None:
        check_id = history.check_id(conn, args.check)
        if check_id is None:
            return None
        return history.anomalies(conn, check_id, since), history.baselines(conn)

    found = read_database(settings, read)
    if found is None:
        print(f"vigil: no history of a check named {args.check!r} in "
              f"{settings.state_dir / database.DB}", file=sys.stderr)
        return 1
    rows, watched = found
    # None: no daemon has said what it watches (an older one); else this check's series.
    learnt = None if watched is None else watched.get(args.check, {})
    if args.json:
        baseline = None if not learnt else {
            series: {"windows": windows, "learning": windows < WARMUP}
            for series, windows in learnt.items()}
        print(json.dumps({"check": args.check, "baseline": baseline, "warmup": WARMUP,
                          "anomalies": rows}, indent=2))
        return 0
    if learnt == {}:
        print(f"{args.check}: no baseline: the daemon watches none of its series "
              f"(set baseline = [\"duration\"] in [checks.{args.check}])")
    for series, windows in sorted((learnt or {}).items()):
        if windows < WARMUP:
            print(f"{args.check}: {series} learning: {windows} of {WARMUP} windows (no "
                  "anomaly is found before)")
    print(f"{args.check}: {len(rows)} anomal{'ies' if len(rows) != 1 else 'y'} since "
          f"{_when(since)} UTC")
    for row in rows:
        end = "ongoing" if row["end"] is None else _when(row["end"])
        print(f"  {_when(row['start'])} .. {end}  {row['series']}: {row['value']:.4g}, "
              f"usually {row['usual']:.4g} (score {row['score']:g})")
    return 0


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _render(found: CheckHistory) -> str:
    ups = ", ".join(f"{'-' if up is None else f'{up * 100:.2f}%'} over {label}"
                    for label, up in found["uptime"].items())
    lines = [f"{found['check']}: up {ups}", f"since {_when(found['since'])} UTC:"]
    # One time line: buckets, results and state changes in the order they happened.
    events: list[tuple[float, str]] = []
    for row in found["rollups"]:
        counts = ", ".join(f"{row[s]} {s}" for s in history.STATUSES if row[s])
        events.append((row["start"], f"{_when(row['start'])}  +{row['step'] // 60}m  "
                       f"{row['runs']} runs: {counts}; {row['dur_avg_ms']:.1f} ms avg "
                       f"({row['dur_min_ms']:.1f}-{row['dur_max_ms']:.1f})"))
    for result in found["results"]:
        held = "(maintenance) " if result["maintenance"] else ""
        events.append((result["at"], f"{_when(result['at'])}  {result['status']:<7} "
                       f"{result['duration_ms']:>8.1f} ms  {held}{result['summary'] or ''}"))
    for change in found["transitions"]:
        events.append((change["at"], f"{_when(change['at'])}  state {change['from']} -> "
                       f"{change['to']}  ({change['status']}: {change['summary']})"))
    lines += [text for _, text in sorted(events, key=lambda e: e[0])]
    if len(lines) == 2:
        lines.append("  (nothing in this window)")
    return "\n".join(shown(line) for line in lines) + "\n"
