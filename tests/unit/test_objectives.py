"""Objectives in-process, on histories written through the store and rolled up by the
history's own code: the SLI, the budget left and every burn rate equal a plain recount
of the raw rows over the same window, and the workbook's page and ticket conditions
fire where its table says."""

from __future__ import annotations

import itertools
import json
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import run_times, write_history
from vigil._config.sections import SloSpec
from vigil._kit.durations import Duration
from vigil._slo.burn import CONDITIONS, WINDOWS, status
from vigil._slo.objectives import Objectives, Report, burndown
from vigil._store import tally
from vigil._store.history import Retention
from vigil._web import slopanel

DAY = 86400
#: An hour boundary: every window starts on a bucket's edge, so the recount is exact.
NOW = 1_700_000_000 // 3600 * 3600
KEEP = Retention(results=3600, five_min=2 * DAY, hourly=30 * DAY)


def slo(**keys: object) -> SloSpec:
    spec = SloSpec(name="s", objective="99.9%", covers=["c0"], target=0.999)
    for key, value in keys.items():
        setattr(spec, key, value)
    return spec


def every(seconds: float, days: float, until: float = NOW) -> list[float]:
    return run_times(seconds, days, until)


def write(tmp_path: Path, checks: int, times: list[float], status_of: Callable[[int, float], int],
          duration_of: Callable[[int], float] = lambda i: 5.0,
          counts_of: Callable[[int], dict[str, int] | None] = lambda i: None,
          now: float = NOW) -> sqlite3.Connection:
    return write_history(tmp_path, checks, times, status_of, now, duration_of, counts_of)


def recount(conn: sqlite3.Connection, since: float, good: str) -> tuple[int, int]:
    return conn.execute(f"SELECT sum({good}), count(*) FROM results WHERE at >= ? AND at < ? "
                        "AND maint = 0", (since * 1000, NOW * 1000)).fetchone()


def report(conn: sqlite3.Connection, spec: SloSpec) -> Report:
    [found] = Objectives({"s": spec}, KEEP).evaluate(conn, NOW)
    return found


def test_a_month_with_a_40_minute_outage_recounts_exactly(tmp_path: Path) -> None:
    outage = (NOW - 10 * DAY, NOW - 10 * DAY + 2400)
    conn = write(tmp_path, 1, every(60, 30), lambda i, at: 2 if outage[0] <= at < outage[1] else 0)
    found = report(conn, slo())
    good, total = recount(conn, NOW - 30 * DAY, "status <= 1")
    assert (found.good, found.total) == (good, total) == (43200 - 40, 43200)
    assert found.sli == pytest.approx(1 - 40 / 43200)
    # 43.2 minutes of budget, 40 spent.
    assert found.budget_remaining == pytest.approx(1 - 40 / 43.2)
    assert found.burn_rate == {name: 0.0 for name in WINDOWS}
    assert found.status == "ok"


@pytest.mark.parametrize(("rate", "expected", "firing"), [
    (0.03, "page", ["page 1h/5m", "page 6h/30m", "ticket 1d/2h", "ticket 3d/6h"]),
    (0.01, "page", ["page 6h/30m", "ticket 1d/2h", "ticket 3d/6h"]),
    (0.004, "ticket", ["ticket 1d/2h", "ticket 3d/6h"]),
    (0.0015, "ticket", ["ticket 3d/6h"]),
    (0.0005, "ok", []),
])
def test_a_steady_error_rate_burns_and_fires_as_the_workbook_says(
        tmp_path: Path, rate: float, expected: str, firing: list[str]) -> None:
    """Errors spread evenly (each window holds its share, give or take one) over three
    days of five checks, every 20 s in the last six hours and every 2 minutes before:
    burn = rate / 0.1%."""
    times = every(120, 2.75, NOW - 6 * 3600) + every(20, 0.25)
    conn = write(tmp_path, 5, times, lambda i, at: 2 if int((i + 1) * rate) > int(i * rate)
                 else 0)
    found = report(conn, slo(covers=[f"c{c}" for c in range(5)]))
    for name, seconds in WINDOWS.items():
        good, total = recount(conn, NOW - seconds, "status <= 1")
        assert found.burn_rate[name] == pytest.approx((total - good) / total / 0.001)
    assert found.status == expected
    assert found.as_json()["firing"] == firing


def test_a_latency_regression_counts_runs_over_the_threshold(tmp_path: Path) -> None:
    """Runs take 40 ms, then 180 ms for the last two hours: at 100 ms they are bad."""
    slow_from = (3 * DAY - 2 * 3600) // 30
    conn = write(tmp_path, 1, every(30, 3), lambda i, at: 0,
                 lambda i: 180.0 if i >= slow_from else 40.0)
    found = report(conn, slo(sli="latency", threshold=Duration(0.1)))
    for name, seconds in WINDOWS.items():
        good, total = recount(conn, NOW - seconds, "duration_us <= 100000")
        assert found.burn_rate[name] == pytest.approx((total - good) / total / 0.001), name
    good, total = recount(conn, NOW - 30 * DAY, "duration_us <= 100000")
    assert (found.good, found.total) == (good, total) == (8640 - 240, 8640)
    assert found.status == "page"


def test_a_failed_run_is_never_good_for_latency_however_quick(tmp_path: Path) -> None:
    """A refused connection fails in 5 ms: under the threshold, and bad all the same,
    in the raw results and in the rollups alike."""
    conn = write(tmp_path, 1, every(30, 3), lambda i, at: 2 if i % 10 == 0 else 0)
    found = report(conn, slo(sli="latency", threshold=Duration(0.1)))
    good, total = recount(conn, NOW - 30 * DAY, "status <= 1 AND duration_us <= 100000")
    assert (found.good, found.total) == (good, total) == (8640 - 864, 8640)
    for name, seconds in WINDOWS.items():
        good, total = recount(conn, NOW - seconds, "status <= 1")
        assert found.burn_rate[name] == pytest.approx((total - good) / total / 0.001), name


def test_timeslices_count_minutes_with_a_failing_run(tmp_path: Path) -> None:
    """One failing run in each of 30 minutes: 30 bad minutes, however many runs pass."""
    conn = write(tmp_path, 1, every(10, 3), lambda i, at: 2 if i % 6 == 0 and i < 180 else 0)
    found = report(conn, slo(budgeting="timeslices"))
    assert (found.good, found.total) == (3 * 1440 - 30, 3 * 1440)
    occurrences = report(conn, slo())
    assert occurrences.total - occurrences.good == 30 and occurrences.total == 3 * 8640


@pytest.mark.parametrize("window_days", [30, 28, 7])
def test_the_factors_scale_with_the_window(window_days: int) -> None:
    window = window_days * DAY
    factors = [round(c.factor(window), 3) for c in CONDITIONS]
    assert factors == [round(f * window_days / 30, 3) for f in (14.4, 6, 3, 1)]
    calm = {name: 0.0 for name in WINDOWS}
    assert status(calm, window) == ("ok", [], [])
    # Over the long window but not the short one: it has stopped; no alert.
    assert status({**calm, "1h": 100.0}, window) == ("ok", [], [])
    # Over everywhere, but the last hour holds too little data: its page is held back.
    verdict, firing, held = status({name: 100.0 for name in WINDOWS}, window,
                                   frozenset({"1h"}))
    assert (verdict, held) == ("page", [CONDITIONS[0]]) and firing == list(CONDITIONS[1:])


def test_an_events_objective_counts_a_groups_good_events_under_the_threshold(
        tmp_path: Path) -> None:
    """Each run saw 10 events of group "a" (9 good: 6 within 100 ms) and 5 of "b" (all
    bad): the group's share, and the share under the threshold, recount exactly."""
    counts = {"total": 15, "good": 9, "good_d50": 2, "good_d100": 4, "good_d150": 3,
              "total/a": 10, "good/a": 9, "good_d50/a": 2, "good_d100/a": 4,
              "good_d150/a": 3, "total/b": 5}
    conn = write(tmp_path, 1, every(60, 3), lambda i, at: 0, counts_of=lambda i: counts)
    runs = 3 * 1440
    assert (report(conn, slo(sli="events")).good, report(conn, slo(sli="events")).total) == (
        9 * runs, 15 * runs)
    grouped = report(conn, slo(sli="events", group="a", threshold=Duration(0.1)))
    assert (grouped.good, grouped.total) == (6 * runs, 10 * runs)
    assert grouped.burn_rate["5m"] == pytest.approx(0.4 / 0.001)


def test_vigil_slo_reports_each_objective_and_exits_with_the_worst(tmp_path: Path) -> None:
    """c0 has failed for the last half hour (a page), c1 never (ok)."""
    now = time.time()  # the CLI counts a moment later: its 5m window holds the last runs
    write(tmp_path, 2, every(60, 3, now),
          lambda n, at: 2 if n % 2 == 0 and at >= now - 1800 else 0, now=now)
    config = tmp_path / "vigil.toml"
    config.write_text(f"""[daemon]\nstate_dir = "{tmp_path}"\nhttp = ""\n
[checks.c0]\ntype = "tcp"\nhost = "127.0.0.1"\nport = 9\ninterval = "1m"\n
[checks.c1]\ntype = "tcp"\nhost = "127.0.0.1"\nport = 9\ninterval = "1m"\n
[slos.db]\nobjective = "99.9%"\ncheck = "c0"\n
[slos.cache]\nobjective = "99%"\ncheck = "c1"\nsli = "latency"\nthreshold = "100ms"\n""")

    def vigil(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "vigil", "slo", "-c", str(config), *args],
                              capture_output=True, text=True, timeout=60)

    done = vigil("--json")
    assert done.returncode == 2, done.stderr
    found = {s["name"]: s for s in json.loads(done.stdout)["slos"]}
    assert found["db"]["status"] == "page" and found["cache"]["status"] == "ok"
    assert found["db"]["objective"] == 0.999 and found["db"]["burn_rate"]["1h"] > 14.4
    assert found["db"]["good"] + 30 == found["db"]["total"] == 3 * 1440
    assert found["db"]["budget_remaining"] < 1.0
    assert set(found["db"]["burn_rate"]) == {"5m", "30m", "1h", "2h", "6h", "1d", "3d"}
    assert found["cache"]["sli"] == 1.0 and found["cache"]["budget_remaining"] == 1.0
    text = vigil("db")
    assert text.returncode == 2 and text.stdout.startswith("db: PAGE  objective 99.9% over 30d")
    assert "page: burning over 14.4x over 1h and 5m" in text.stdout
    assert vigil("cache").returncode == 0
    missing = vigil("nope")
    assert missing.returncode == 64 and "objectives: cache, db" in missing.stderr


def test_the_burn_down_falls_from_the_whole_budget_to_what_is_left(tmp_path: Path) -> None:
    outage = (NOW - 10 * DAY, NOW - 10 * DAY + 2400)
    conn = write(tmp_path, 1, every(60, 30), lambda i, at: 2 if outage[0] <= at < outage[1]
                 else 0)
    found = report(conn, slo())
    points = burndown(conn, found, NOW)
    lefts = [left for _, left in points]
    assert lefts[0] == 1.0 and lefts == sorted(lefts, reverse=True)
    assert lefts[-1] == pytest.approx(found.budget_remaining)
    # It falls at the outage, and only there.
    fell = [at for (at, left), (_, before) in zip(points[1:], points, strict=False)
            if left < before]
    assert fell and all(outage[0] - 3600 <= at < outage[1] for at in fell)
    page = slopanel.render([found], {"s": points}, NOW)
    assert 'id="slo-s"' in page and "error budget: 7.4% left" in page
    assert 'width="7.4"' in page  # the gauge
    drawn = re.search(r'class="chart burndown".*?points="([^"]*)"', page, re.S)
    assert drawn is not None and len(drawn.group(1).split()) > 10
    assert slopanel.feeds([found]) == {"c0": ["s"]}
    assert slopanel.render([], {}, NOW) == ""


@pytest.mark.parametrize("offset", [0, 1, 299, 301, 3599, 7777, 86399])
@pytest.mark.parametrize("seconds", [*list(WINDOWS.values()), 30 * DAY])
def test_a_windows_parts_tile_it_from_its_first_whole_bucket(offset: int, seconds: int) -> None:
    """Raw results after the last rollup and at a short window's start, whole buckets
    between (cut at hours and days so that they are counted once): no gap, no overlap."""
    now = NOW + offset
    marks = ((now - 10) // 300 * 300, (now - 10) // 3600 * 3600)
    since = now - seconds
    parts = sorted(tally.segments(since, now, marks, KEEP), key=lambda p: p[1])
    ends = [(start, end) for _, start, end in parts]
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ends)), parts
    assert ends[-1][1] == now
    first = parts[0]
    if since >= now - KEEP.results or first[0] == "raw":
        assert first[1] == since
    else:  # from the first whole bucket of the tier it starts in
        assert since <= first[1] < since + int(first[0])
    for source, start, end in parts:
        if isinstance(source, int):
            assert start % source == 0 and end % source == 0
            chunk = tally.CHUNK[source]
            assert start // chunk == (end - 1) // chunk, "one chunk at most"


def test_the_events_check_counts_each_runs_new_events_for_events_objectives(
        tmp_path: Path) -> None:
    """What was in the file before the first run is not news; what came after is, by
    group and latency slot, the good ones alone in the slots."""
    from vigil.testing import make_check, run_check

    path = tmp_path / "validations.jsonl"
    path.write_text(json.dumps({"ts": time.time(), "signature": "QA", "ok": False}) + "\n")
    check = make_check("events", {"path": str(path), "group_by": "signature",
                                  "ok_field": "ok", "latency_field": "latency_ms"})
    assert run_check(check).counts == {}
    with path.open("a") as events:
        for ok, latency, signature in [(True, 40, "QA"), (True, 120, "QA"), (False, 30, "QA"),
                                       (True, 80, "Sum")]:
            events.write(json.dumps({"ts": time.time(), "signature": signature, "ok": ok,
                                     "latency_ms": latency}) + "\n")
    assert run_check(check).counts == {
        "total": 4, "good": 3, "good_d50": 1, "good_d150": 1, "good_d100": 1,
        "total/QA": 3, "good/QA": 2, "good_d50/QA": 1, "good_d150/QA": 1,
        "total/Sum": 1, "good/Sum": 1, "good_d100/Sum": 1}
    assert run_check(check).counts == {}


def test_a_change_of_status_is_logged_and_published(tmp_path: Path) -> None:
    """Failing for the last half hour of three days: burning (a page) and the budget
    spent; the same history counted again says nothing new; a recovery says so."""
    from structlog.testing import capture_logs

    from vigil._engine.events import EventHub
    from vigil._slo.watch import SloWatch

    write(tmp_path, 1, every(60, 3), lambda n, at: 2 if at >= NOW - 1800 else 0)
    hub, heard = EventHub(), []
    hub.subscribe(lambda event, fields: heard.append((event, fields["status"])))
    watch = SloWatch(tmp_path, hub)
    watch._objectives = Objectives({"s": slo()}, KEEP)
    with capture_logs() as logs:
        watch.count(NOW)
        watch.count(NOW)
        watch.count(NOW + 6 * 3600)  # no run since: nothing burns over the short windows
    watch.close()
    assert [(e["event"], e.get("status")) for e in logs] == [
        ("slo.burning", "page"), ("slo.exhausted", "page"), ("slo.recovered", "ok")]
    assert heard == [("slo.changed", "page"), ("slo.changed", "ok")]
