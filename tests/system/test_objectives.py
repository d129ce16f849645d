"""Objectives in a real daemon: a real HTTP server that goes down burns an objective's
error budget, the page reaches a webhook sink and a real Alertmanager, and resolves when
the server is back. Over a history with slow passing runs and runs under maintenance,
/metrics, /api/v1/slos and `vigil slo` give the same figures, and those are the runs
counted by hand: a slow run no good for latency, maintenance left out. An objective
pages only once its windows hold enough data (not on a new daemon's first failed runs),
and opens no burn alert while its checks are under maintenance."""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import (
    FIXTURES,
    Receiver,
    alertmanager,
    call,
    free_port,
    listening,
    run_times,
    run_vigil,
    wait_until,
    write_history,
)
from vigil._config.loader import load
from vigil._slo.objectives import Objectives
from vigil._store import database, history
from vigil._store.history import Retention


@contextmanager
def web_server(port: int) -> Iterator[None]:
    """Python's own HTTP server on ``port``, stopped when the block ends."""
    server = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1",
                               str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        server.terminate()
        server.wait(10)


def pages(bodies: list[dict[str, Any]], slo: str = "web_availability") -> list[str]:
    return [a["status"] for body in bodies for a in body["alerts"]
            if a["labels"].get("severity") == "page" and a["labels"].get("slo") == slo]


def alerts(receiver: Receiver, path: str, reason: str) -> list[dict[str, Any]]:
    return [a for body in receiver.at(path) for a in body["alerts"]
            if a["labels"]["reason"] == reason]


def slo_report(http: int, name: str) -> dict[str, Any]:
    """The objective as /api/v1/slos last counted it."""
    status, _, body = call(http, "/api/v1/slos")
    assert status == 200, body
    return next(s for s in json.loads(body)["slos"] if s["name"] == name)


def history_of_c0(state: Path, failing_for: float) -> None:
    """Two hours of check c0 once a second, failing for the last ``failing_for``
    seconds: a daemon that watched it all along, its windows full."""
    now = time.time()
    write_history(state, 1, run_times(1, 2 / 24, now),
                  lambda n, at: 2 if at >= now - failing_for else 0, now).close()


def test_a_burning_objective_pages_through_alertmanager_and_resolves(
        write_config, daemon, receiver, tmp_path) -> None:
    port, http = free_port(), free_port()
    # 94% over 30 days: a page needs more than 86.4% of the runs failing over the last
    # hour and 5 minutes (14.4x the 6% budget): c0 has been down for 55 minutes of the
    # two hours the history holds (too little for the 6h window: that page waits). It
    # resolves once under 86.4% of the last 5 minutes' runs fail.
    history_of_c0(tmp_path / "state", 55 * 60)
    with alertmanager(tmp_path, receiver.url("/am")) as am:
        config = write_config(f"""
            [daemon]
            state_dir = "state"
            slo_interval = "1s"
            http = "127.0.0.1:{http}"
            [checks.c0]
            type = "http"
            url = "http://127.0.0.1:{port}/"
            interval = "1s"
            [slos.web_availability]
            check = "c0"
            objective = "94%"
            [slos.web_latency]
            check = "c0"
            objective = "90%"
            sli = "latency"
            threshold = "2500ms"
            [alerts.team]
            type = "alertmanager"
            url = "http://127.0.0.1:{am}"
            on = ["burn"]
            [alerts.direct]
            type = "webhook"
            url = "{receiver.url('/direct')}"
            on = ["burn"]
        """)
        d = daemon(config).start()
        wait_until(lambda: pages(receiver.at("/am")), 30, "Alertmanager to route the page")
        wait_until(lambda: pages(receiver.at("/direct")), 10, "the webhook sink's page")
        alert = next(a for body in receiver.at("/am") for a in body["alerts"]
                     if a["labels"]["severity"] == "page"
                     and a["labels"]["slo"] == "web_availability")
        assert {k: alert["labels"][k] for k in ("alertname", "slo", "reason")} == {
            "alertname": "VigilErrorBudgetBurn", "slo": "web_availability", "reason": "burn"}
        assert "web_availability is burning its error budget" in alert["annotations"]["summary"]
        assert alert["annotations"]["budget_remaining"].endswith("% left")
        assert "1h " in alert["annotations"]["burn_rates"]
        [burning] = d.wait_for("slo.burning", slo="web_availability")
        assert burning["status"] == "page" and burning["burn_rate"]["5m"] > 14.4

        done = run_vigil("slo", "--json", "-c", str(config))
        assert done.returncode == 2, done.stderr
        with urllib.request.urlopen(f"http://127.0.0.1:{http}/metrics", timeout=5) as got:
            text = got.read().decode()
        assert 'vigil_slo_objective{slo="web_availability"} 0.94' in text
        assert 'vigil_slo_burn_rate{slo="web_availability",window="5m"}' in text
        # A refused connection is quick, but no run within 2.5 s that failed counts.
        assert 'vigil_check_runs_within_total{check="c0",le="2.5"} 0.0' in text
        with urllib.request.urlopen(f"http://127.0.0.1:{http}/api/v1/slos", timeout=5) as got:
            api = {s["name"]: s for s in json.load(got)["slos"]}
        with urllib.request.urlopen(f"http://127.0.0.1:{http}/status", timeout=5) as got:
            page = got.read().decode()
        assert 'id="slo-web_availability"' in page and 'class="status sl-page"' in page
        assert "<dt>Objectives</dt><dd>web_availability, web_latency</dd>" in page
        assert api["web_availability"]["status"] == "page"
        assert "page 6h/30m" in api["web_availability"]["held"]
        # A failed run is no good for latency either, however quick: the runs within
        # 2.5 s that count are the passing ones.
        assert api["web_latency"]["good"] == api["web_availability"]["good"]
        assert api["web_latency"]["total"] == api["web_availability"]["total"]

        with web_server(port):
            wait_until(lambda: "resolved" in pages(receiver.at("/am")), 90,
                       "Alertmanager to route the page's resolution")
            wait_until(lambda: "resolved" in pages(receiver.at("/direct")), 10,
                       "the webhook sink's resolution")
        assert pages(receiver.at("/direct")) == ["firing", "resolved"]
        assert d.events("alert.resolved", sink="direct", reason="burn")


#: The history of the test below, one run of c0 a second, in minutes before it was
#: written: passing over [-110, -66) and [-24, -7), failing over [-54, -36), the first
#: half of that, [-54, -45), under maintenance. Every fourth passing run took 3 s, the
#: others 5 ms. No run lies within five minutes of where a window (5m ... 3d, 30d) begins
#: while the test runs: each count stays the same from one reading to the next.
PASSING, FAILING, HELD = ((-110, -66), (-24, -7)), ((-54, -36),), ((-54, -45),)


def runs_over(now: float, spans: tuple[tuple[int, int], ...]) -> list[float]:
    return [now + start * 60 + k for start, end in spans for k in range((end - start) * 60)]


def metric_samples(http: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{http}/metrics", timeout=5) as got:
        text = got.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples
            if s.name.startswith("vigil_slo_")}


def test_metrics_the_api_and_vigil_slo_give_the_runs_counted_by_hand(
        write_config, daemon, tmp_path) -> None:
    now, http = time.time(), free_port()
    passing, failing = runs_over(now, PASSING), runs_over(now, FAILING)
    held, slow, bad = set(runs_over(now, HELD)), set(passing[::4]), set(failing)
    times = sorted(passing + failing)
    write_history(tmp_path / "state", 1, times, lambda n, at: 2 if at in bad else 0, now,
                  duration_of=lambda i: 3000.0 if times[i] in slow else 5.0,
                  maintenance_of=lambda at: at in held).close()
    config = write_config(f"""
        [daemon]
        state_dir = "state"
        slo_interval = "1s"
        http = "127.0.0.1:{http}"
        [checks.c0]
        type = "tcp"
        port = {free_port()}
        interval = "1h"
        [slos.up]
        check = "c0"
        objective = "94%"
        [slos.fast]
        check = "c0"
        objective = "90%"
        sli = "latency"
        threshold = "2500ms"
    """)

    def by_hand(seconds: float, sli: str) -> tuple[int, int]:
        """(good, total) over the last ``seconds``: the history's runs outside
        maintenance, good when they passed (within 2.5 s for latency), and the daemon's
        own first run of c0, which fails (its port is closed)."""
        counted = [at for at in times if at >= now - seconds and at not in held]
        good = [at for at in counted if at not in bad and (sli == "up" or at not in slow)]
        return len(good), len(counted) + 1

    d = daemon(config).start()
    d.wait_for("check.result", check="c0")
    wait_until(lambda: slo_report(http, "up")["total"] == by_hand(30 * 86400, "up")[1]
               and slo_report(http, "fast")["total"] == by_hand(30 * 86400, "fast")[1],
               20, "the objectives counted over the history and the daemon's run")
    api = {name: slo_report(http, name) for name in ("up", "fast")}
    samples = metric_samples(http)
    done = run_vigil("slo", "--json", "-c", str(config))
    text = run_vigil("slo", "-c", str(config)).stdout
    told = {r["name"]: r for r in json.loads(done.stdout)["slos"]}
    statuses = ("ok", "ticket", "page")
    assert done.returncode == max(statuses.index(r["status"]) for r in api.values())

    for name, objective in (("up", 0.94), ("fast", 0.90)):
        report = api[name]
        good, total = by_hand(30 * 86400, name)
        assert (report["good"], report["total"]) == (good, total), (name, report)
        assert report["sli"] == pytest.approx(good / total, rel=1e-12)
        budget = 1 - objective
        for window, seconds in (("5m", 300), ("30m", 1800), ("1h", 3600), ("2h", 7200),
                                ("6h", 21600), ("1d", 86400), ("3d", 259200)):
            in_good, in_total = by_hand(seconds, name)
            assert report["burn_rate"][window] == pytest.approx(
                (in_total - in_good) / in_total / budget, rel=1e-12), (name, window)
        # The same figures, exactly, from /metrics and from `vigil slo` (--json, and
        # its words).
        label = (("slo", name),)
        assert samples[("vigil_slo_objective", label)] == report["objective"] == objective
        assert samples[("vigil_slo_sli", label)] == report["sli"]
        assert samples[("vigil_slo_error_budget_remaining", label)] == \
            report["budget_remaining"]
        assert {window: samples[("vigil_slo_burn_rate", (("slo", name), ("window", window)))]
                for window in report["burn_rate"]} == report["burn_rate"]
        assert told[name] == report
        assert f"SLI {report['sli'] * 100:.3f}% ({good}/{total})" in text, text
    # A slow run counts against latency only; a run under maintenance counts nowhere.
    assert api["fast"]["good"] == api["up"]["good"] - len(slow) > 0
    assert api["up"]["total"] == len(times) - len(held) + 1
    assert d.stop() == 0


def test_exported_slo_rules_page_in_promtool_where_vigil_pages(write_config, tmp_path) -> None:
    """Two hours of one run a second, all passing, then an hour with half of them CRIT:
    promtool's Prometheus pages (and opens a ticket) at the end, and not before; vigil,
    counting the same runs from its history, pages too."""
    promtool = shutil.which("promtool")
    assert promtool, "install the Debian package prometheus (it has promtool)"
    config = write_config("""
        [checks.c0]
        type = "tcp"
        port = 9
        [slos.db]
        check = "c0"
        objective = "99.9%"
    """)
    exported = run_vigil("export", "prometheus", "rules", "-c", str(config))
    assert exported.returncode == 0, exported.stderr
    rules = tmp_path / "rules.yml"
    rules.write_text(exported.stdout)
    checked = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True,
                             text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    def series(status: str, values: str) -> dict[str, str]:
        return {"series": f'vigil_check_runs_total{{check="c0",status="{status}",'
                          f'instance="agent"}}', "values": values}

    def burn(severity: str) -> dict[str, Any]:
        return {"exp_labels": {"slo": "db", "severity": severity, "instance": "agent"},
                "exp_annotations": {
                    "summary": "db is burning its error budget on agent",
                    "description": "The objective is 99.9% over 30d; `vigil slo db` there "
                                   "shows the burn rates."}}

    test = {"rule_files": [str(rules)], "evaluation_interval": "1m", "tests": [{
        "interval": "1m",
        "input_series": [series("OK", "0+60x120 7200+30x60"),
                         series("CRIT", "0+0x120 0+30x60"),
                         series("WARN", "0+0x180"), series("UNKNOWN", "0+0x180")],
        "alert_rule_test": [
            {"eval_time": "2h", "alertname": "VigilErrorBudgetBurn", "exp_alerts": []},
            {"eval_time": "3h", "alertname": "VigilErrorBudgetBurn",
             "exp_alerts": [burn("page"), burn("ticket")]}]}]}
    tests = tmp_path / "tests.yml"
    tests.write_text(json.dumps(test))  # JSON is YAML
    tested = subprocess.run([promtool, "test", "rules", str(tests)], capture_output=True,
                            text=True, timeout=60)
    assert tested.returncode == 0, tested.stdout + tested.stderr

    # The same runs, through vigil's own history.
    now = 1_700_000_000 // 3600 * 3600
    times = run_times(1, 3 / 24, now)
    conn = write_history(tmp_path / "state", 1, times,
                         lambda n, at: 2 if at >= now - 3600 and n % 2 else 0, now)
    [report] = Objectives(load(str(config)).slos, Retention(3600, 2 * 86400, 30 * 86400)
                          ).evaluate(conn, now)
    assert report.status == "page"
    assert [f"{c.severity} {c.long}/{c.short}" for c in report.firing] == [
        "page 1h/5m", "page 6h/30m", "ticket 1d/2h", "ticket 3d/6h"]


def test_vigil_slo_without_objectives_says_so_and_json_gives_an_empty_list(
        write_config) -> None:
    config = write_config('[daemon]\nstate_dir = "state"\n[checks.db]\ntype = "tcp"\n'
                          'port = 9\n')
    done = run_vigil("slo", "--json", "-c", str(config))
    assert (done.returncode, json.loads(done.stdout)) == (0, {"slos": []}), done.stderr
    text = run_vigil("slo", "-c", str(config))
    assert text.returncode == 0 and text.stdout.startswith("no objectives in "), text.stderr


def test_a_new_daemon_pages_only_once_its_windows_hold_enough_data(
        write_config, daemon, receiver) -> None:
    """The check fails from its first run: a burn rate over a few runs means nothing
    yet. No page, no slo.burning or slo.exhausted, and the budget is not spent; `vigil
    slo`, --json, the API and the page say why (too little data). The sentinel: a
    check alert that opens later, decided after the objective was counted."""
    http, sentinel = free_port(), free_port()
    with listening(sentinel):
        config = write_config(f"""
            [daemon]
            state_dir = "state"
            slo_interval = "1s"
            http = "127.0.0.1:{http}"
            [checks.web]
            type = "tcp"
            port = {free_port()}
            interval = "500ms"
            [checks.beat]
            type = "tcp"
            port = {sentinel}
            interval = "300ms"
            fall = 1
            [slos.web]
            check = "web"
            objective = "99.6%"
            [alerts.hook]
            type = "webhook"
            url = "{receiver.url('/hook')}"
            on = ["burn", "failing"]
        """)
        d = daemon(config).start()
        wait_until(lambda: slo_report(http, "web")["total"] >= 2, 20,
                   "the objective counted over the first failed runs")
        report = slo_report(http, "web")
    assert report["good"] == 0 and report["status"] == "ok" and report["firing"] == []
    assert "page 1h/5m" in report["held"]
    assert report["too_little_data"].endswith(" of the 1h window's ~7,200 runs")
    assert report["expected_runs"]["1h"] == 7200 and report["runs"]["1h"] < 3600
    assert report["budget_remaining"] > 0.99
    wait_until(lambda: alerts(receiver, "/hook", "failing"), 20, "the sentinel's alert")
    assert not alerts(receiver, "/hook", "burn"), "no page on a new daemon's first runs"
    assert not d.events("slo.burning") and not d.events("slo.exhausted")

    text = run_vigil("slo", "-c", str(config))
    assert text.returncode == 0, text.stderr
    assert "\n    page: burning over 14.4x over 1h and 5m, held back: too little data" \
        in text.stdout
    assert "\n    too little data: " in text.stdout and "% left" in text.stdout, text.stdout
    [found] = json.loads(run_vigil("slo", "--json", "-c", str(config)).stdout)["slos"]
    assert found["too_little_data"] and "page 1h/5m" in found["held"]
    status, _, page = call(http, "/status")
    assert status == 200 and b'<p class="data">too little data: ' in page
    assert b"held back: page 1h/5m" in page


def test_no_burn_alert_opens_while_the_objectives_checks_are_under_maintenance(
        write_config, daemon, receiver, tmp_path) -> None:
    """The history pages (20 minutes down: 99.9% over 3 days spent 4.6 times over); the
    check is under maintenance, so no burn alert opens until the maintenance ends. The
    sentinel: a check alert that opens after the objective was counted paging."""
    http, sentinel = free_port(), free_port()
    history_of_c0(tmp_path / "state", 20 * 60)
    with listening(sentinel):
        config = write_config(f"""
            [daemon]
            state_dir = "state"
            slo_interval = "1s"
            http = "127.0.0.1:{http}"
            [checks.c0]
            type = "tcp"
            port = {free_port()}
            interval = "1s"
            [checks.beat]
            type = "tcp"
            port = {sentinel}
            interval = "300ms"
            fall = 1
            [slos.db]
            check = "c0"
            objective = "99.9%"
            window = "3d"
            [alerts.hook]
            type = "webhook"
            url = "{receiver.url('/hook')}"
            on = ["burn", "failing"]
        """)
        started = run_vigil("maintenance", "start", "c0", "--for", "1h", "-c", str(config))
        assert started.returncode == 0, started.stderr
        d = daemon(config).start()
        wait_until(lambda: slo_report(http, "db")["status"] == "page", 20,
                   "the objective counted paging")
    wait_until(lambda: alerts(receiver, "/hook", "failing"), 20, "the sentinel's alert")
    assert not alerts(receiver, "/hook", "burn"), "no burn alert under maintenance"
    text = run_vigil("slo", "db", "-c", str(config))
    assert text.returncode == 2 and "\n    budget spent 4.6x over" in text.stdout, text.stdout

    assert run_vigil("maintenance", "end", "c0", "-c", str(config)).returncode == 0
    wait_until(lambda: alerts(receiver, "/hook", "burn"), 20, "the page, after maintenance")
    [page] = [a for a in alerts(receiver, "/hook", "burn") if a["labels"]["severity"] == "page"]
    assert page["annotations"]["summary"].endswith("; budget spent 4.6x over (on "
                                                   f"{page['labels']['host']})")
    assert page["annotations"]["budget_remaining"] == "spent 4.6x over"
    assert d.events("slo.exhausted", slo="db")


def test_an_objectives_window_and_latency_threshold_that_cannot_be_counted_are_errors(
        write_config) -> None:
    """A window under 3 days (the slowest burn alert looks back that far) or past the
    history kept, and a latency threshold off the history's ladder: each a config error
    at its key's line. The limits themselves (3d, history_keep) and a step of the
    ladder are fine."""
    config = write_config("""
        [daemon]
        state_dir = "state"
        history_keep = "20d"
        [checks.c0]
        type = "tcp"
        port = 9
        [slos.short]
        check = "c0"
        objective = "99%"
        window = "2d"
        [slos.long]
        check = "c0"
        objective = "99%"
        window = "21d"
        [slos.off_ladder]
        check = "c0"
        objective = "99%"
        window = "3d"
        sli = "latency"
        threshold = "120ms"
        [slos.at_the_limits]
        check = "c0"
        objective = "99%"
        window = "20d"
        sli = "latency"
        threshold = "150ms"
    """)
    lines = config.read_text().splitlines()
    short, long, off = (lines.index(text) + 1 for text in (
        'window = "2d"', 'window = "21d"', 'threshold = "120ms"'))
    done = run_vigil("config", "validate", "-c", str(config))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    ladder = "1, 2, 5, 10, 20, 25, 50, 75, 100, 150, 200, 250, 300, 400, 500, 750, 1000"
    for expected in (
            f"{config}:{short}: slos.short.window: must be at least 3d: the slowest burn "
            "alert looks back that far",
            f"{config}:{long}: slos.long.window: 21d is longer than [daemon] history_keep "
            "(20d): the history would not reach back that far",
            f"{config}:{off}: slos.off_ladder.threshold: must be on the history's latency "
            f"ladder (ms): {ladder}, "):
        assert expected in done.stderr, done.stderr
    assert "3 errors" in done.stderr and "at_the_limits" not in done.stderr, done.stderr
    refused = run_vigil("run", "-c", str(config), timeout=30)
    assert refused.returncode == 1 and "slos.short.window" in refused.stderr


def test_runs_and_events_under_maintenance_are_out_of_every_sli(
        write_config, daemon, tmp_path, monkeypatch) -> None:
    """Under a window, c0 fails and the events check reads failed and slow events; then
    c0 passes, the window ends, and good events come. Every kind of objective (runs,
    minutes, runs within a latency, events) counts only what came outside the window:
    all good, as many as the history says came outside it, from the raw results and
    from their rollups alike."""
    monkeypatch.setenv("PYTHONPATH", FIXTURES)
    flag, events = tmp_path / "flag", tmp_path / "events.jsonl"
    flag.write_text("CRIT")
    events.write_text("")
    config = write_config(f"""
        [daemon]
        state_dir = "state"
        plugins = ["misbehaving"]
        [checks.c0]
        type = "fixed"
        status_file = "{flag}"
        interval = "200ms"
        [checks.c_events]
        type = "events"
        path = "{events}"
        ok_field = "ok"
        latency_field = "latency_ms"
        interval = "200ms"
        [slos.runs]
        check = "c0"
        objective = "99%"
        [slos.minutes]
        check = "c0"
        objective = "99%"
        budgeting = "timeslices"
        [slos.quick]
        check = "c0"
        objective = "99%"
        sli = "latency"
        threshold = "1s"
        [slos.calls]
        check = "c_events"
        objective = "99%"
        sli = "events"
        threshold = "100ms"
    """)
    opened = run_vigil("maintenance", "start", "c*", "--until-end", "-c", str(config))
    assert opened.returncode == 0, opened.stderr
    d = daemon(config).start()
    d.wait_for("check.result", check="c0", status="CRIT", count=5)
    d.wait_for("check.result", check="c_events")  # it has opened the file

    def append(*lines: dict[str, Any]) -> None:
        with events.open("a") as f:
            f.write("".join(json.dumps(line) + "\n" for line in lines))

    def read_events(count: int) -> None:
        wait_until(lambda: any(r["metrics"].get("events") == count
                               for r in d.events("check.result", check="c_events")), 10,
                   f"{count} events read")

    append(*[{"ok": False, "latency_ms": 10}] * 3, *[{"ok": True, "latency_ms": 500}] * 2)
    read_events(5)
    flag.write_text("OK")
    d.wait_for("check.result", check="c0", status="OK")
    ended = run_vigil("maintenance", "end", "c*", "-c", str(config))
    assert ended.returncode == 0, ended.stderr
    d.wait_for("maintenance.ended", target="c*", why="ended")
    append(*[{"ok": True, "latency_ms": 10}] * 4)
    read_events(9)
    after = len(d.events("check.result", check="c0"))
    d.wait_for("check.result", check="c0", count=after + 5)
    assert d.stop() == 0

    done = run_vigil("history", "c0", "--json", "-c", str(config))
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)["results"]
    held = [r["status"] for r in results if r["maintenance"]]
    outside = [r["status"] for r in results if not r["maintenance"]]
    assert held.count("CRIT") >= 5 and set(outside) == {"OK"} and len(outside) >= 5
    counted = run_vigil("slo", "--json", "-c", str(config))
    assert counted.returncode == 0, counted.stdout + counted.stderr
    found = {s["name"]: (s["good"], s["total"]) for s in json.loads(counted.stdout)["slos"]}
    assert found["runs"] == found["quick"] == (len(outside), len(outside)), found
    assert found["calls"] == (4, 4), found
    good, total = found["minutes"]
    assert good == total >= 1, found

    # Once the writer rolls them up into 5-minute buckets (at a time past their end), the
    # objectives count the same runs from the rollups.
    monkeypatch.syspath_prepend(FIXTURES)  # the config's plugin, loaded here
    settings = load(str(config))
    later = time.time() + 600
    with contextlib.closing(sqlite3.connect(tmp_path / "state" / database.DB)) as conn:
        history.roll_up(conn, later)
        conn.commit()
        assert (history.rolled(conn, 300) or 0) > time.time(), "every result rolled up"
        retention = settings.daemon.retention()
        assert retention is not None
        rolled = {r.name: (r.good, r.total) for r in
                  Objectives(settings.slos, retention).evaluate(conn, later)}
    assert rolled == found, (rolled, found)
