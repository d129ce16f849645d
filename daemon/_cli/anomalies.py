"""``vigil anomalies FILE``: the daemon's anomaly detector, with its defaults, over a CSV
of ``timestamp,value`` rows (a header line allowed; ISO 8601 or ``YYYY-MM-DD HH:MM:SS``
times, UTC unless they say otherwise, or Unix times; any regular step; in any order, for
they are sorted by time): the anomalous windows, each from its first anomalous point to
its last, with the highest score in it. The values must be above zero: the detector
compares ratios (log space)."""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from datetime import UTC, datetime
from pathlib import Path

from vigil._baseline.detector import Detector

#: A Unix time this large is in milliseconds (as vigil's state database keeps them):
#: in seconds it would be past the year 5000.
MILLISECONDS_FROM = 1e11


class BadRow(ValueError):
    pass


def read_series(path: Path) -> list[tuple[str, float, float]]:
    """(time as written, time.time(), value) of each row, oldest first; BadRow naming
    the file and line."""
    rows: list[tuple[str, float, float]] = []
    first = True
    with path.open(newline="", encoding="utf-8") as lines:
        for number, row in enumerate(csv.reader(lines), 1):
            if not row or not "".join(row).strip():
                continue
            if len(row) != 2:
                raise BadRow(f"{path}:{number}: expected timestamp,value, got {row!r}")
            written, text = row[0].strip(), row[1].strip()
            value, at = _number(text), _time(written)
            if first and value is None:
                first = False
                continue  # a header line: its value is no number
            first = False
            if at is None or value is None:
                raise BadRow(f"{path}:{number}: expected an ISO 8601 or Unix time and a "
                             f"number, got {written!r}, {text!r}")
            if not value > 0 or math.isinf(value):
                raise BadRow(f"{path}:{number}: {text!r} is not a number above zero: the "
                             "detector compares ratios, in log space (a count that may be "
                             "zero: add 1 to each)")
            rows.append((written, at, value))
    if not rows:
        raise BadRow(f"{path}: no timestamp,value rows in it")
    # Newest first (an `ORDER BY at DESC` export) or shuffled: the detector reads a series
    # from its start.
    rows.sort(key=lambda row: row[1])
    return rows


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _time(written: str) -> float | None:
    """time.time() of a timestamp: ISO 8601 (UTC unless it says), or Unix seconds or
    milliseconds."""
    unix = _number(written)
    if unix is not None and math.isfinite(unix):
        return unix / 1000 if abs(unix) >= MILLISECONDS_FROM else unix
    try:
        at = datetime.fromisoformat(written)
    except ValueError:
        return None
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


def detect(rows: list[tuple[str, float, float]]) -> list[dict[str, object]]:
    """The anomalous windows of a series, as ``--json`` lists them."""
    detector = Detector()
    found: list[dict[str, object]] = []
    last_anomalous = False
    for written, at, value in rows:
        verdict = detector.feed(at, value)
        if verdict is None or not verdict.anomalous:
            last_anomalous = False
            continue
        if last_anomalous:
            found[-1]["end"] = written
            found[-1]["score"] = max(float(str(found[-1]["score"])), verdict.score)
        else:
            found.append({"start": written, "end": written, "score": verdict.score})
        last_anomalous = True
    return found


def cmd_anomalies(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        rows = read_series(path)
    except OSError as exc:
        print(f"vigil: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except UnicodeDecodeError as exc:
        print(f"vigil: {path}: not UTF-8 text ({exc.reason} at byte {exc.start})",
              file=sys.stderr)
        return 2
    except csv.Error as exc:
        print(f"vigil: {path}: not CSV: {exc}", file=sys.stderr)
        return 2
    except BadRow as exc:
        print(f"vigil: {exc}", file=sys.stderr)
        return 2
    found = detect(rows)
    if args.json:
        print(json.dumps({"points": len(rows), "anomalies": found}, indent=2))
        return 0
    print(f"{len(rows)} points, {len(found)} anomalous window{'s' * (len(found) != 1)}")
    for window in found:
        print(f"  {window['start']} .. {window['end']}  score {window['score']}")
    return 0
