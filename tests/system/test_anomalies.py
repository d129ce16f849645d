"""Baselines in a real daemon: an HTTP server whose answers take five times as long for
a while, after a baseline learnt from the history already in the state database: the
anomaly is logged, flagged on /metrics and on the page, and cleared once it is over."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import random
import re
import sys
import time
import urllib.request

from tests.helpers import (
    FIXTURES,
    event_time,
    free_port,
    listening,
    run_times,
    run_vigil,
    slow_http,
    wait_until,
    write_history,
)
from vigil import Status
from vigil.testing import run_check

#: The server's usual delay (s), and the check's usual duration around it (ms).
DELAY, USUAL_MS = 0.04, 42.0


def metric(http: int, name: str) -> float | None:
    with urllib.request.urlopen(f"http://127.0.0.1:{http}/metrics", timeout=5) as got:
        for line in got.read().decode().splitlines():
            if line.startswith(name):
                return float(line.split()[-1])
    return None


def test_five_times_slower_is_an_anomaly_until_it_is_over(write_config, daemon,
                                                           tmp_path) -> None:
    port, http = free_port(), free_port()
    now = time.time()
    rng = random.Random(28)
    # Three days of the usual, as the daemon would have kept them (c0 is the check).
    write_history(tmp_path / "state", 1, run_times(300, 3, now), lambda n, at: 0, now,
                  lambda i: USUAL_MS * math.exp(rng.gauss(0, 0.08))).close()
    config = write_config(f"""
        [daemon]
        state_dir = "state"
        http = "127.0.0.1:{http}"
        baseline_window = "10s"
        [checks.c0]
        type = "http"
        url = "http://127.0.0.1:{port}/"
        interval = "1s"
        baseline = ["duration"]
    """)
    flagged = 'vigil_check_anomalous{check="c0",series="duration"}'
    with slow_http(port, DELAY) as switch:
        d = daemon(config).start()
        d.wait_for("check.result", count=25, check="c0", timeout=40)  # two windows or so
        assert not d.events("check.anomaly")
        assert metric(http, flagged) == 0.0

        switch["delay"] = DELAY * 5
        [found] = d.wait_for("check.anomaly", check="c0", series="duration", timeout=40)
        assert found["value"] > 1.5 * USUAL_MS and 30 < found["usual"] < 60  # may be half slow
        assert found["score"] >= 5.5 and found["season"] == "day"
        assert metric(http, flagged) == 1.0
        with urllib.request.urlopen(f"http://127.0.0.1:{http}/status", timeout=5) as got:
            page = got.read().decode()
        assert "Unusual duration: score" in page and 'data-high="' in page

        switch["delay"] = DELAY
        [ended] = d.wait_for("check.anomaly_ended", check="c0", series="duration",
                             timeout=60)
        assert ended["value"] < 2 * USUAL_MS
        assert metric(http, flagged) == 0.0
        # The page's data marks the windows the anomaly spanned (its script shades
        # the results inside it on the chart).
        def marked() -> list[list[int | None]]:
            with urllib.request.urlopen(f"http://127.0.0.1:{http}/status", timeout=5) as got:
                page = got.read().decode()
            data = page.split('id="vigil-data" type="application/json">')[1]
            return json.loads(data.split("</script>")[0])["checks"]["c0"]["a"]

        # Saved by the store's writer within a second or so.
        wait_until(lambda: [span[1] is not None for span in marked()] == [True], 10,
                   "the ended anomaly on the page")
        [[start, end]] = marked()
        assert start is not None and end is not None and start < end
        assert d.stop() == 0

    listed = run_vigil("history", "c0", "--anomalies", "--json", "-c", str(config))
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)["anomalies"]
    assert row["series"] == "duration" and row["end"] is not None
    assert row["start"] <= row["end"] and row["score"] >= 5.5 and 30 < row["usual"] < 60
    text = run_vigil("history", "c0", "--anomalies", "-c", str(config)).stdout
    assert text.startswith("c0: 1 anomaly since") and "duration: " in text


def page_of(http: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{http}/status", timeout=5) as got:
        return str(got.read().decode())


def test_a_new_baseline_says_it_is_learning_and_a_check_without_one_says_so(
        write_config, daemon) -> None:
    """No history: the baseline learns its first 24 windows before it scores one, and
    /metrics, the page and `vigil history --anomalies` say how far it is."""
    http = free_port()
    config = write_config(f"""
        [daemon]
        state_dir = "state"
        http = "127.0.0.1:{http}"
        baseline_window = "10s"
        [checks.c0]
        type = "tcp"
        port = {http}
        interval = "1s"
        baseline = ["duration", "latency_ms"]
        [checks.c1]
        type = "tcp"
        port = {http}
        interval = "1s"
    """)
    d = daemon(config).start()
    windows = 'vigil_check_baseline_windows{check="c0",series="duration"}'
    wait_until(lambda: (metric(http, windows) or 0) >= 1, 30, "a window learnt")
    assert metric(http, 'vigil_check_baseline_learning{check="c0",series="latency_ms"}') == 1.0
    assert metric(http, 'vigil_check_anomaly_score{check="c0"') is None  # nothing scored
    assert metric(http, 'vigil_check_baseline_windows{check="c1"') is None
    assert re.search(r"Learning what is usual for duration: [1-9] of 24 windows", page_of(http))

    def said() -> str:
        return run_vigil("history", "c0", "--anomalies", "-c", str(config)).stdout

    wait_until(lambda: re.search(r"c0: duration learning: [1-9] of 24 windows", said()),
               10, "the windows learnt in the state database")
    listed = json.loads(run_vigil("history", "c0", "--anomalies", "--json", "-c",
                                  str(config)).stdout)
    assert listed["warmup"] == 24 and set(listed["baseline"]) == {"duration", "latency_ms"}
    assert listed["baseline"]["duration"]["learning"] is True
    assert listed["baseline"]["duration"]["windows"] >= 1

    plain = run_vigil("history", "c1", "--anomalies", "-c", str(config))
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.startswith("c1: no baseline: "), plain.stdout
    assert json.loads(run_vigil("history", "c1", "--anomalies", "--json", "-c",
                                str(config)).stdout)["baseline"] is None
    assert d.stop() == 0


def test_a_baseline_watches_only_series_the_check_has(write_config, daemon) -> None:
    """A series its check type does not carry is a config error at its line; one from
    [defaults] is watched where it is carried; a type that cannot say (exec) is told at
    its first passing run."""
    http = free_port()
    bad = write_config(f"""
        [daemon]
        state_dir = "state"
        [checks.web]
        type = "http"
        url = "http://127.0.0.1:{http}/"
        baseline = ["duration", "nosuchmetric"]
    """, name="bad.toml")
    done = run_vigil("config", "validate", "-c", str(bad))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert (f"{bad}:9: checks.web.baseline: no series 'nosuchmetric' in a http check (its "
            "series: duration, latency_ms, status_code)") in done.stderr, done.stderr
    refused = run_vigil("run", "-c", str(bad), timeout=30)
    assert refused.returncode == 1 and "checks.web.baseline" in refused.stderr
    nowhere = write_config("""
        [daemon]
        state_dir = "state"
        [defaults]
        baseline = ["latency_ms", "nosuch"]
        [checks.host]
        type = "system"
        [checks.port]
        type = "tcp"
        port = 9
    """, name="nowhere.toml")
    done = run_vigil("config", "validate", "-c", str(nowhere))
    assert done.returncode == 1
    assert f"{nowhere}:7: defaults.baseline: no check has a series 'nosuch'" in done.stderr
    assert "'latency_ms'" not in done.stderr, "latency_ms is a tcp check's, at least"

    config = write_config(f"""
        [daemon]
        state_dir = "state"
        http = "127.0.0.1:{http}"
        [defaults]
        baseline = ["latency_ms"]
        [checks.port]
        type = "tcp"
        port = {http}
        interval = "1s"
        [checks.host]
        type = "system"
        interval = "1s"
        [checks.script]
        type = "exec"
        command = ["{sys.executable}", "-c", "print('fine | lat=3ms')"]
        interval = "1s"
        baseline = ["lat_ms", "latency"]
    """)
    d = daemon(config).start()
    [skipped] = d.wait_for("baseline.skipped", check="script", timeout=20)
    assert skipped["series"] == "latency" and skipped["metrics"] == ["lat_ms"]
    with urllib.request.urlopen(f"http://127.0.0.1:{http}/metrics", timeout=5) as got:
        exported = got.read().decode()
    watched = set(re.findall(r'vigil_check_baseline_windows\{check="(\w+)",series="(\w+)"\}',
                             exported))
    assert watched == {("port", "latency_ms"), ("script", "lat_ms"),
                       ("script", "latency")}
    d.wait_for("check.result", count=3, check="script")
    assert len(d.events("baseline.skipped")) == 1, "said once"
    assert d.stop() == 0


def test_anomaly_settings_in_defaults_make_a_warn_that_never_heals_nor_alerts(
        write_config, daemon, receiver, tmp_path, monkeypatch) -> None:
    """`baseline`, `anomaly = "warn"` and `anomaly_for` in [defaults]: both checks are
    watched; c0 (guarding a service, alerting at once when FAILING) turns WARN once its
    anomaly has lasted anomaly_for, not before; c1, which sets `anomaly = "info"` itself,
    stays OK. The WARN heals nothing and alerts nobody: the sentinel's alert, sent after
    the WARNs, is the only one."""
    monkeypatch.setenv("PYTHONPATH", FIXTURES)
    port, sentinel = free_port(), free_port()
    now = time.time()
    rng = random.Random(35)
    write_history(tmp_path / "state", 2, run_times(300, 3, now), lambda n, at: 0, now,
                  lambda i: USUAL_MS * math.exp(rng.gauss(0, 0.08))).close()
    flag = tmp_path / "flag"
    flag.write_text("OK")
    checks = "".join(f"""
        [checks.{name}]
        type = "http"
        url = "http://127.0.0.1:{port}/"
        interval = "1s"
        fall = 1
        {own}
    """ for name, own in (("c0", 'service = "web"'), ("c1", 'anomaly = "info"')))
    config = write_config(f"""
        [daemon]
        state_dir = "state"
        plugins = ["misbehaving"]
        baseline_window = "10s"
        [defaults]
        baseline = ["duration"]
        anomaly = "warn"
        anomaly_for = "5s"
        [services.web]
        manager = "flag"
        status_file = "{flag}"
        {checks}
        [checks.beat]
        type = "tcp"
        port = {sentinel}
        interval = "300ms"
        fall = 1
        [alerts.hook]
        type = "webhook"
        url = "{receiver.url('/hook')}"
        after_heal = false
    """)
    with slow_http(port, DELAY) as switch, contextlib.ExitStack() as beat:
        beat.enter_context(listening(sentinel))
        d = daemon(config).start()
        d.wait_for("check.result", count=25, check="c0", timeout=40)
        switch["delay"] = DELAY * 5
        began = {name: d.wait_for("check.anomaly", check=name, series="duration",
                                  timeout=40)[0] for name in ("c0", "c1")}
        assert began["c0"]["level_set"] == "warn" and began["c1"]["level_set"] == "info"
        warned = d.wait_for("check.result", check="c0", status="WARN", count=3, timeout=20)
        assert "(anomalous: duration " in warned[0]["summary"]
        waited = event_time(warned[0]) - event_time(began["c0"])
        assert waited >= 5, f"WARN {waited:.1f}s after the anomaly began, not anomaly_for"
        since = event_time(began["c1"])
        assert {r["status"] for r in d.events("check.result", check="c1")
                if event_time(r) >= since} == {"OK"}, "anomaly = 'info' on c1 itself"
        beat.close()
        wait_until(lambda: receiver.at("/hook"), 20, "the sentinel's alert")
        # Stopped while the server still answers: its end would fail c0 for real.
        assert d.stop() == 0
    alerted = {a["labels"]["check"] for body in receiver.at("/hook") for a in body["alerts"]}
    assert alerted == {"beat"}
    assert not d.events("heal.started") and not d.events("heal.skipped")
    assert not d.events("check.state_changed", check="c0", to="FAILING")


def test_forecasts_use_the_thresholds_of_the_built_in_check_types(tmp_path) -> None:
    """A forecast warns when a series' trend will pass the threshold its check type
    gives: tcp and http their warn_ms, else crit_ms; load its p95_warn, else p95_crit;
    none without one. Each check runs for real against a real server, which gives its
    threshold; the climb (hours of it) is fed to the baselines a window at a time, each
    window's value that run's with the series' figure of the climb."""
    from vigil._baseline.watch import Baselines
    from vigil._config.loader import parse
    from vigil._engine.runner import Outcome

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    load = f'type = "load"\nurl = "{url}"\nrequests = 2\nallow_frequent = true\n' \
           'baseline = ["latency_p95_ms"]\n'
    # name: (its options, and the threshold its forecast must pass)
    cases = {"tcp_warn": (f'type = "tcp"\nport = {port}\nwarn_ms = 50\ncrit_ms = 500\n', 50),
             "tcp_crit": (f'type = "tcp"\nport = {port}\ncrit_ms = 80\n', 80),
             "tcp_none": (f'type = "tcp"\nport = {port}\n', None),
             "http_warn": (f'type = "http"\nurl = "{url}"\nwarn_ms = 200\ncrit_ms = 900\n', 200),
             "http_default": (f'type = "http"\nurl = "{url}"\n', 1000),
             "load_warn": (load + 'p95_warn = "150ms"\np95_crit = "1s"\n', 150),
             "load_crit": (load + 'p95_crit = "300ms"\n', 300)}
    config = parse(str(tmp_path / "vigil.toml"), f"""
[daemon]
state_dir = "{tmp_path}"
[defaults]
baseline = ["latency_ms"]
forecast = "2h"
forecast_window = "1h"
""" + "".join(f"[checks.{name}]\n{body}" for name, (body, _) in cases.items()))
    with slow_http(port, 0.0):
        results = {name: run_check(spec.check) for name, spec in config.checks.items()}
    assert {r.status for r in results.values()} == {Status.OK}, results

    baselines = Baselines(tmp_path)
    baselines.install(config.checks, 10.0)
    baselines._stop.set()  # its thread closes windows on the wall clock: these are T0's
    now, said = float(1_767_225_600), {}
    for step in range(80):  # flat at 20 (ms) for 40 windows, then 2% more each window
        now += 10
        value = 20 * 1.02 ** max(0, step - 40)
        for name, spec in config.checks.items():
            [series] = spec.baseline
            result = results[name]
            fed = dataclasses.replace(result, metrics={**result.metrics, series: value})
            said[name] = baselines.observe(spec, Outcome(fed, value), now, held=False)
        baselines.close_windows(now + 1)
    forecasts = baselines.forecasts()
    for name, (_, threshold) in cases.items():
        outcome = said[name].result
        if threshold is None:
            assert name not in forecasts and outcome.status is Status.OK, outcome
            continue
        assert name in forecasts, (name, forecasts)
        assert outcome.status is Status.WARN, (name, outcome)
        assert f" will pass {threshold} in about " in outcome.summary, (name, outcome.summary)
