"""The anomaly detector and `vigil anomalies`: a value is scored against what came
before it alone, with the seasonality the data has; a CSV is read as an operator writes
it, and its mistakes are named by line."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from vigil._baseline.detector import WARMUP, Detector

T0 = 1_767_225_600  # a Thursday, midnight UTC
STEP = 300


def daily(index: int, rng: random.Random) -> float:
    hour = (index * STEP / 3600) % 24
    return 20 * (1 + math.exp(-((hour - 14) / 4) ** 2)) * math.exp(rng.gauss(0, 0.1))


def test_nothing_is_scored_while_warming_up_and_a_spike_is_found() -> None:
    rng, detector = random.Random(1), Detector()
    verdicts = [detector.feed(T0 + i * STEP, daily(i, rng)) for i in range(3 * 288)]
    assert verdicts[:WARMUP] == [None] * WARMUP and all(verdicts[WARMUP:])
    spike = detector.feed(T0 + 3 * 86400, 5 * daily(3 * 288, rng))
    assert spike is not None and spike.anomalous and spike.score > 10
    assert spike.low < spike.usual < spike.high and spike.season == "day"


def test_the_daily_cycle_is_learnt_so_the_afternoon_peak_is_no_anomaly() -> None:
    """Twice as slow at 2 p.m. as at night, every day: after two days the peak is usual,
    and a night as slow as an afternoon is not."""
    rng, detector = random.Random(2), Detector()
    for i in range(4 * 288):
        detector.feed(T0 + i * STEP, daily(i, rng))
    peak = detector.feed(T0 + 4 * 86400 + 14 * 3600, 40)
    night = detector.feed(T0 + 4 * 86400 + 14 * 3600 + 12 * 3600, 40)
    assert peak is not None and not peak.anomalous
    assert night is not None and night.anomalous


def test_the_week_is_used_once_a_slot_was_seen_a_week_before() -> None:
    detector = Detector()
    for i in range(8 * 288):
        detector.feed(T0 + i * STEP, 20.0)
    found = detector.feed(T0 + 8 * 86400, 20.0)
    assert found is not None and found.season == "week"


def csv_file(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "series.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def anomalies(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vigil", "anomalies", *args],
                          capture_output=True, text=True, timeout=60)


def planted(written: Any = None) -> tuple[list[str], list[datetime]]:
    """Three days of a daily cycle with three windows six times slower (700-702): the
    rows (a header first) and their times. ``written(index, time)`` writes a time; by
    default the rows alternate between ISO 8601 and a space."""
    rng = random.Random(3)
    stamps = [datetime.fromtimestamp(T0 + i * STEP, UTC) for i in range(3 * 288)]
    values = [daily(i, rng) for i in range(len(stamps))]
    for i in (700, 701, 702):
        values[i] *= 6
    write = written or (lambda i, t: t.isoformat() if i % 2 else t.strftime("%Y-%m-%d %H:%M:%S"))
    return ["timestamp,value"] + [f"{write(i, t)},{v:.3f}" for i, (t, v) in enumerate(
        zip(stamps, values, strict=True))], stamps


def windows_of(rows: list[str], found: dict[str, Any]) -> list[tuple[int, int]]:
    """Each anomalous window as (first, last) indexes of the planted series."""
    index = {row.split(",")[0]: i - 1 for i, row in enumerate(rows)}
    return [(index[w["start"]], index[w["end"]]) for w in found["anomalies"]]


def test_vigil_anomalies_lists_the_windows_with_the_times_as_written(tmp_path: Path) -> None:
    rows, stamps = planted()
    done = anomalies(str(csv_file(tmp_path, rows)), "--json")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["points"] == len(stamps)
    windows = windows_of(rows, found)
    # The three slow windows, from the first to the last, times as written: the rows
    # alternate between ISO 8601 and a space, and a window names them as they are.
    assert (700, 702) in windows, windows
    [window] = [w for w in found["anomalies"] if w["start"] == rows[701].split(",")[0]]
    assert window["start"] == stamps[700].strftime("%Y-%m-%d %H:%M:%S")
    assert window["score"] > 10
    # Before two days the daily cycle is not known (its afternoons may be news); after,
    # only the planted windows are.
    assert [(a, b) for a, b in windows if a >= 2 * 288] == [(700, 702)], windows
    text = anomalies(str(csv_file(tmp_path, rows)))
    assert text.stdout.startswith(f"{len(stamps)} points, ")


def test_a_newest_first_file_is_read_in_time_order(tmp_path: Path) -> None:
    """An `ORDER BY at DESC` export (the README's own query): the same windows as the
    file in time order, each starting before it ends."""
    rows, _ = planted()
    ordered = json.loads(anomalies(str(csv_file(tmp_path, rows)), "--json").stdout)
    newest_first = anomalies(str(csv_file(tmp_path, [rows[0], *reversed(rows[1:])])),
                             "--json")
    assert newest_first.returncode == 0, newest_first.stderr
    assert json.loads(newest_first.stdout) == ordered
    assert all(a <= b for a, b in windows_of(rows, ordered))


def test_unix_times_are_read_from_the_first_row_in_seconds_or_milliseconds(
        tmp_path: Path) -> None:
    rows, _ = planted()
    expected = windows_of(rows, json.loads(anomalies(str(csv_file(tmp_path, rows)),
                                                     "--json").stdout))
    for scale in (1, 1000):
        unix, _ = planted(lambda i, t, scale=scale: str(int(t.timestamp() * scale)))
        done = anomalies(str(csv_file(tmp_path, unix[1:])), "--json")  # no header
        assert done.returncode == 0, done.stderr
        found = json.loads(done.stdout)
        assert found["points"] == len(unix) - 1, "the first row is a row, not a header"
        assert windows_of(unix, found) == expected


def test_vigil_anomalies_names_a_bad_line_and_a_missing_file(tmp_path: Path) -> None:
    bad = anomalies(str(csv_file(tmp_path, ["timestamp,value", "2026-01-01 00:00:00,1",
                                            "2026-01-01 00:05:00,fast"])))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "series.csv:3: expected an ISO 8601 or Unix time and a number" in bad.stderr
    missing = anomalies(str(tmp_path / "nope.csv"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    for rows, line in [([], None), (["timestamp,value", ""], None),
                       (["2026-01-01 00:00:00,3", "2026-01-01 00:05:00,0"], 2),
                       (["timestamp,value", "2026-01-01 00:00:00,-2"], 2),
                       (["2026-01-01 00:00:00,nan"], 1), (["2026-01-01 00:00:00,inf"], 1)]:
        done = anomalies(str(csv_file(tmp_path, rows)))
        where = "series.csv:" if line is None else f"series.csv:{line}: "
        assert done.returncode == 2 and where in done.stderr, (rows, done)
        assert ("no timestamp,value rows" if line is None else "above zero") in done.stderr
        assert "Traceback" not in done.stderr and not done.stdout


def test_vigil_anomalies_takes_the_largest_floats(tmp_path: Path) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [f"{(start + timedelta(minutes=5 * i)).isoformat()},1e300" for i in range(300)]
    done = anomalies(str(csv_file(tmp_path, rows)), "--json")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert json.loads(done.stdout)["points"] == 300


def watched_check(tmp_path: Path, anomaly: str = "info") -> Any:
    from vigil._config.loader import parse

    config = parse(str(tmp_path / "vigil.toml"), f"""
[daemon]
state_dir = "{tmp_path}"
baseline_window = "10s"
[checks.web]
type = "tcp"
host = "127.0.0.1"
port = 9
baseline = ["duration", "latency_ms"]
anomaly = "{anomaly}"
anomaly_for = "30s"
""")
    return config.checks["web"]


def test_a_check_s_windows_are_scored_when_they_close_and_warn_once_it_lasts(
        tmp_path: Path) -> None:
    from structlog.testing import capture_logs

    from vigil._api.check import Result, Status
    from vigil._baseline.watch import Baselines
    from vigil._engine.runner import Outcome

    spec = watched_check(tmp_path, "warn")
    baselines = Baselines(tmp_path)
    baselines.window = 10.0
    baselines._checks = {}
    baselines.install({"web": spec}, 10.0)
    rng, now = random.Random(4), float(T0)
    #: When each event was logged (the clock the windows are closed at).
    logged_at: dict[int, float] = {}

    def run(duration: float, status: Status = Status.OK) -> tuple[float, Outcome]:
        nonlocal now
        now += 2.5
        found = baselines.observe(spec, Outcome(Result(status, "up", {"latency_ms": duration}),
                                                duration), now, held=False)
        baselines.close_windows(now)
        logged_at.update((i, now) for i in range(len(logged_at), len(logs)))
        return now, found

    with capture_logs() as logs:
        for _ in range(4 * 40):
            run(50 * math.exp(rng.gauss(0, 0.05)))
        assert not [e for e in logs if e["event"] == "check.anomaly"]
        slow = [run(250.0) for _ in range(24)]  # a minute: anomalous, WARN after 30 s
        ended = [outcome for _, outcome in (run(50.0) for _ in range(24))]
        _, failed = run(900.0, Status.CRIT)  # a failing run is not a window's value
    baselines.close()
    anomalies = [e for e in logs if e["event"] == "check.anomaly"]
    assert {e["series"] for e in anomalies} == {"duration", "latency_ms"}
    first = anomalies[0]
    assert first["value"] > 150 and 40 < first["usual"] < 60 and first["score"] >= 5.5
    assert [e["series"] for e in logs if e["event"] == "check.anomaly_ended"]
    # The anomaly began as the first slow window closed, and lasted the slow minute: the
    # runs say WARN from the first one 30 s (anomaly_for) after it began, and not before.
    began = logged_at[logs.index(first)]
    ended_at = min(logged_at[i] for i, e in enumerate(logs) if e["event"] ==
                   "check.anomaly_ended")
    assert slow[0][0] < began < slow[-1][0] - 30 and ended_at > slow[-1][0]
    statuses = [o.result.status for _, o in slow]
    assert statuses == [Status.WARN if at - began >= 30 else Status.OK for at, _ in slow], \
        [(at - began, s.name) for (at, _), s in zip(slow, statuses, strict=True)]
    slow_outcomes = [o for _, o in slow]
    assert "(anomalous: duration 250, usually" in slow_outcomes[-1].result.summary
    assert ended[-1].result.status is Status.OK and failed.result.status is Status.CRIT
    snapshot = baselines.snapshot()["web"]
    assert set(snapshot) == {"duration", "latency_ms"}
    last = snapshot["duration"].last
    assert last is not None and not last.anomalous and not snapshot["duration"].learning


def test_a_rising_trend_is_forecast_to_pass_its_threshold_and_warns() -> None:
    """Latency climbing 10 ms an hour from 40 ms, against a 100 ms threshold: passing it
    is forecast about six hours ahead, the result says so, and the forecast shrinks as
    it comes closer."""
    from vigil._api.check import Result, Status
    from vigil._baseline.watch import Baselines
    from vigil._config.loader import parse
    from vigil._engine.runner import Outcome

    spec = parse("<test>", """
[daemon]
state_dir = "/nonexistent"
[checks.web]
type = "tcp"
host = "127.0.0.1"
port = 9
baseline = ["latency_ms"]
forecast = "12h"
forecast_window = "3h"
""").checks["web"]
    baselines = Baselines(Path("/nonexistent"))
    baselines.install({"web": spec}, 300.0)
    baselines._stop.set()
    from structlog.testing import capture_logs

    now, seen = float(T0), []
    with capture_logs() as logs:
        for step in range(36 * 12):  # a day and a half flat at 40 ms, then the climb
            now += 300
            climb = max(0.0, (step - 30 * 12) / 12) * 10
            outcome = baselines.observe(spec, Outcome(Result(
                Status.OK, "up", {"latency_ms": 40 + climb},
                thresholds={"latency_ms": 100.0}), 1.0), now, held=False)
            baselines.close_windows(now + 1)
            seen.append((climb, baselines.forecasts().get("web", {}).get("latency_ms"),
                         outcome))
    flat = [f for climb, f, _ in seen if climb == 0]
    assert all(f is None for f in flat[-12:]), "a flat series passes nothing"
    climbing = [(climb, f, o) for climb, f, o in seen if climb >= 20]
    for climb, passes_in, outcome in climbing:
        # A line through log values (a trend in proportion, as latency grows) runs a
        # little ahead of the straight climb: within a half of its answer.
        expected = (100 - 40 - climb) / 10 * 3600
        assert passes_in is not None and abs(passes_in - expected) <= expected / 2 + 600, \
            (climb, passes_in, expected)
        assert outcome.result.status is Status.WARN
        assert "(latency_ms will pass 100 in about" in outcome.result.summary
    forecasts = [f for _, f, _ in climbing if f is not None]
    assert forecasts[-1] < forecasts[0] / 2, "closer as it comes"
    # As /metrics says it: in seconds, within what the climb gives as above; the windows
    # learnt are those that closed (each fed but the last, still open), so none is
    # learning; anomalous as the log last said (an anomaly begun and not ended).
    from prometheus_client.parser import text_string_to_metric_families

    from vigil._web import metrics

    _, body = metrics.render({}, {}, {}, [], baselines.snapshot(), baselines.forecasts(), "")
    samples = {s.name: s.value for family in text_string_to_metric_families(body.decode())
               for s in family.samples
               if s.labels == {"check": "web", "series": "latency_ms"}}
    last_climb = climbing[-1][0]
    expected = (100 - 40 - last_climb) / 10 * 3600
    assert abs(samples["vigil_check_forecast_seconds"] - expected) <= expected / 2 + 600, \
        (samples, expected)
    assert samples["vigil_check_baseline_windows"] == 36 * 12 - 1
    assert samples["vigil_check_baseline_learning"] == 0
    said = [e["event"] for e in logs if e["event"] in ("check.anomaly", "check.anomaly_ended")]
    assert samples["vigil_check_anomalous"] == (1.0 if said[-1:] == ["check.anomaly"] else 0.0)


def test_the_metrics_a_check_type_declares_are_those_its_runs_carry(tmp_path: Path) -> None:
    """What a baseline may name (``Check.metrics``) is what the runs of the built-in types
    that run here without a server really carry: a declaration that drifts from the code
    would refuse a config that names a real metric."""
    import fnmatch
    import http.server
    import os
    import threading

    from vigil.testing import make_check, run_check

    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    pidfile = tmp_path / "me.pid"
    pidfile.write_text(str(os.getpid()))
    backlog = tmp_path / "backlog.md"
    backlog.write_text("| id | title | status | started |\n|---|---|---|---|\n"
                       "| 1 | a | in progress | 2026-01-01 |\n")
    try:
        runs: list[tuple[str, dict[str, Any]]] = [
            ("tcp", {"port": port}), ("http", {"url": f"http://127.0.0.1:{port}/"}),
            ("system", {"disks": ["/", str(tmp_path)]}),
            ("process", {"match": "pytest"}), ("process", {"pidfile": str(pidfile)}),
            ("backlog", {"path": str(backlog)})]
        for kind, options in runs:
            check = make_check(kind, options)
            declared = type(check).metrics
            carried = run_check(check).metrics
            assert declared is not None and carried, kind
            assert [m for m in carried if not any(
                fnmatch.fnmatchcase(m, p) for p in declared)] == [], kind
    finally:
        server.shutdown()
        server.server_close()
