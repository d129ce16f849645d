"""``vigil anomalies FILE``: the daemon's anomaly detector, with its defaults, over a CSV
of ``timestamp,value`` rows (a header line allowed; ISO 8601 or ``YYYY-MM-DD HH:MM:SS``
times, UTC unless they say otherwise; any regular step): the anomalous windows, each
from its first anomalous point to its last, with the highest score in it."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from vigil._baseline.detector import Detector


class BadRow(ValueError):
    pass


def read_series(path: Path) -> list[tuple[str, float, float]]:
    """(time as written, time.time(), value) of each row; BadRow naming the line."""
    rows: list[tuple[str, float, float]] = []
    with path.open(newline="", encoding="utf-8") as lines:
        for number, row in enumerate(csv.reader(lines), 1):
            if not row or not "".join(row).strip():
                continue
            if len(row) != 2:
                raise BadRow(f"{path}:{number}: expected timestamp,value, got {row!r}")
            written, value = row[0].strip(), row[1].strip()
            try:
                at = datetime.fromisoformat(written)
                number_value = float(value)
            except ValueError:
                if number == 1 and not rows:
                    continue  # a header line
                raise BadRow(f"{path}:{number}: expected an ISO 8601 time and a number, got "
                             f"{written!r}, {value!r}") from None
            if at.tzinfo is None:
                at = at.replace(tzinfo=UTC)
            rows.append((written, at.timestamp(), number_value))
    return rows


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
    except (BadRow, UnicodeDecodeError) as exc:
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
