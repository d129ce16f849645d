"""A smoke test of the anomaly detector on a labelled set this benchmark makes itself,
beside two windowed Gaussians (the previous day's mean ± 3 standard deviations) in the
same run: one on the raw values, one on their logarithms.

    .venv/bin/python -m tests.benchmarks.anomalies [--seed 28] [--keep FOLDER]

Not evidence of how good the detector is: the data is of our own making, with exactly
the shape vigil's model assumes (a daily and weekly cycle, multiplicative noise), so a
detector built on that assumption is bound to look good on it, and so is any baseline
that shares it (the Gaussian on logarithms). It tells that the detector runs end to end
and still finds what it was built to find; a benchmark on public labelled data (issue
on anomaly detection on real data) is to replace it.

Each series is four weeks of a response time every 5 minutes (about 20 ms, a daily cycle
of business hours and quiet nights, quieter weekends, multiplicative noise), with the
anomalies of one kind put in where the labels say: spikes, level shifts, slow drifts,
changed variance, and a short rise to 5x at each time of day. vigil's detector runs as
an operator runs it, `vigil anomalies FILE --json` on each series' CSV.

Scored by event: an alarm is a run of anomalous windows (gaps of one window joined); a
labelled anomaly is found when an alarm overlaps it (or begins within 30 minutes of its
end); an alarm that overlaps no label is a false alarm. The first two days, when the
detectors are still learning, are left out of every count.

Target (issue 28, a smoke test on synthetic data, not evidence): vigil finds more of
the labelled anomalies and raises fewer false alarms than each windowed Gaussian, on
raw values and on their logarithms (the anchor at its best on this data)."""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import subprocess
import sys
import tempfile
from collections import deque
from datetime import UTC, datetime
from pathlib import Path

from tests.benchmarks import announce, verdict

STEP = 300
START = 1_767_225_600  # 2026-01-01 00:00 UTC, a Thursday
POINTS = 28 * 288
SETTLED = 2 * 288
LATE = 1800 // STEP
Label = tuple[int, int]  # first and last point


def usual(index: int) -> float:
    at = datetime.fromtimestamp(START + index * STEP, UTC)
    hour = at.hour + at.minute / 60
    busy = math.exp(-((hour - 14) / 4) ** 2)  # business hours, peaking at 2 p.m.
    weekend = 0.5 if at.weekday() >= 5 else 1.0
    return 20 * (1 + 1.5 * busy * weekend)


def series(kind: str, rng: random.Random) -> tuple[list[float], list[Label]]:
    values = [usual(i) * math.exp(rng.gauss(0, 0.12)) for i in range(POINTS)]
    labels: list[Label] = []
    if kind == "spikes":
        for i in rng.sample(range(3 * 288, POINTS), 10):
            values[i] *= rng.uniform(3, 6)
            labels.append((i, i))
    elif kind == "level_shift":
        for day, factor in ((9, 2.0), (16, 0.4), (23, 1.8)):
            at = day * 288 + rng.randrange(288)
            for i in range(at, POINTS):
                values[i] *= factor
            labels.append((at, at + 24))
    elif kind == "drift":
        for day in (6, 15, 22):
            at, length = day * 288, 2 * 288
            for i in range(at, POINTS):
                values[i] *= 1 + 1.5 * min(1.0, (i - at) / length)
            labels.append((at + length // 3, at + length))
    elif kind == "variance":
        for day in (7, 14, 21):
            at = day * 288 + rng.randrange(288)
            for i in range(at, at + 72):
                values[i] *= math.exp(rng.gauss(0, 0.6))
            labels.append((at, at + 72))
    elif kind == "short_rises":
        for day, hour in ((5, 3), (9, 8), (12, 14), (17, 20), (20, 1), (24, 11)):
            at = day * 288 + hour * 12
            for i in (at, at + 1):
                values[i] *= 5
            labels.append((at, at + 1))
    return values, labels


def gaussian(values: list[float], window: int = 288, k: float = 3.0) -> list[bool]:
    """The classic: anomalous outside the previous ``window`` points' mean ± k sd."""
    flags: list[bool] = []
    seen: deque[float] = deque(maxlen=window)
    for value in values:
        if len(seen) >= 24:
            mean, sd = statistics.fmean(seen), statistics.pstdev(seen)
            flags.append(abs(value - mean) > k * max(sd, 1e-9))
        else:
            flags.append(False)
        seen.append(value)
    return flags


def vigil_flags(values: list[float], folder: Path, kind: str) -> list[bool]:
    path = folder / f"{kind}.csv"
    stamps = [datetime.fromtimestamp(START + i * STEP, UTC).strftime("%Y-%m-%d %H:%M:%S")
              for i in range(len(values))]
    path.write_text("timestamp,value\n" + "".join(f"{t},{v:.3f}\n"
                                                  for t, v in zip(stamps, values, strict=True)))
    done = subprocess.run([sys.executable, "-m", "vigil", "anomalies", str(path), "--json"],
                          capture_output=True, text=True, timeout=300, check=True)
    found = json.loads(done.stdout)
    assert found["points"] == len(values)
    index = {t: i for i, t in enumerate(stamps)}
    flags = [False] * len(values)
    for window in found["anomalies"]:
        for i in range(index[window["start"]], index[window["end"]] + 1):
            flags[i] = True
    return flags


def alarms(flags: list[bool]) -> list[Label]:
    runs: list[Label] = []
    for i, flagged in enumerate(flags):
        if not flagged or i < SETTLED:
            continue
        if runs and i - runs[-1][1] <= 2:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


def judge(flags: list[bool], labels: list[Label]) -> tuple[int, int]:
    """(labelled anomalies found, false alarms)."""
    raised = alarms(flags)
    found = sum(any(a <= end + LATE and b >= start for a, b in raised) for start, end in labels)
    false = sum(not any(a <= end + LATE and b >= start for start, end in labels)
                for a, b in raised)
    return found, false


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=28)
    parser.add_argument("--keep", help="write the CSVs and labels into this folder")
    args = parser.parse_args()
    announce(__doc__)
    rng = random.Random(args.seed)
    folder = Path(args.keep or tempfile.mkdtemp(prefix="vigil-anomalies-"))
    folder.mkdir(parents=True, exist_ok=True)
    weeks = (POINTS - SETTLED) * STEP / (7 * 86400)
    detectors = ("vigil", "gaussian", "log gaussian")
    totals = {name: [0, 0] for name in detectors}
    labelled = 0
    print(f"{'series':<12} {'labels':>6}" + "".join(f"  {name + ' found':>18} {'false/wk':>8}"
                                                     for name in detectors))
    for kind in ("spikes", "level_shift", "drift", "variance", "short_rises", "plain"):
        values, labels = series(kind, rng)
        (folder / f"{kind}.labels.json").write_text(json.dumps(labels))
        scores = {"vigil": judge(vigil_flags(values, folder, kind), labels),
                  "gaussian": judge(gaussian(values), labels),
                  "log gaussian": judge(gaussian([math.log(v) for v in values]), labels)}
        labelled += len(labels)
        for name, (found, false) in scores.items():
            totals[name][0] += found
            totals[name][1] += false
        print(f"{kind:<12} {len(labels):>6}" + "".join(
            f"  {found:>18} {false / weeks:>8.1f}" for found, false in scores.values()))
    print(f"{'all':<12} {labelled:>6}" + "".join(
        f"  {found:>18} {false / weeks:>8.1f}" for found, false in totals.values()))
    found_v, false_v = totals["vigil"]
    return verdict([
        (found_v > totals[name][0] and false_v < totals[name][1],
         f"vigil {found_v}/{labelled} found, {false_v / weeks:.1f} false alarms a week; "
         f"windowed {name} {totals[name][0]}/{labelled}, {totals[name][1] / weeks:.1f} a "
         "week (target: more found and fewer false alarms)")
        for name in detectors[1:]])


if __name__ == "__main__":
    raise SystemExit(main())
