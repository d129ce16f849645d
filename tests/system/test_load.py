"""Load probes against real servers: Python's HTTP server with a delay switch, and the
test MCP memory server built with the official SDK. The calls are made `concurrency` at
a time (the servers count them in flight), the figures are right within what the slow
server injects, each kind of error is counted by its name, and the bounds hold: no load
test while its service is healed or under maintenance, and none sooner than its floor."""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tests.helpers import (
    FIXTURES,
    answers,
    call,
    free_port,
    listening,
    run_vigil,
    slow_http,
    wait_until,
)
from vigil import Status
from vigil.testing import make_check, run_check


def test_an_http_load_test_measures_a_slow_server_and_counts_its_failures() -> None:
    port = free_port()
    with slow_http(port, 0.05) as switch:
        check = make_check("load", {"url": f"http://127.0.0.1:{port}/", "requests": 20,
                                    "concurrency": 4, "p95_warn": "1s", "allow_frequent": True},
                           timeout=30)
        switch["gather"] = 4  # the first requests wait for four in flight (a sequential
        found = run_check(check)  # client would leave them waiting alone)
        assert found.status is Status.OK, found.summary
        assert switch["most_in_flight"] == 4, "four at a time, never more"
        m = found.metrics
        assert m["requests"] == 20 and m["success_rate_pct"] == 100
        assert 50 <= m["latency_p50_ms"] <= m["latency_p95_ms"] <= m["latency_p99_ms"]
        assert m["latency_mean_ms"] >= 50
        # Four at a time, each 50 ms at least: at most 80 a second.
        assert 0 < m["requests_per_s"] <= 80
        assert switch["served"] == 20

        switch["fail_every"] = 4  # a quarter fail
        failing = run_check(check)
        assert failing.metrics["success_rate_pct"] == 75
        assert failing.metrics['errors{kind="http_500"}'] == 5
        assert failing.status is Status.CRIT  # under success_crit (90%)
        assert "75.0% succeeded" in failing.summary and "http_500 x5" in failing.summary


def test_vigil_check_gives_a_load_tests_figures_in_their_nagios_units(write_config) -> None:
    """A rate has no unit in perfdata (``s`` would make it a time), the times are in ms,
    the shares in %, and a count by kind keeps its label."""
    port = free_port()
    with slow_http(port, 0.0) as switch:
        switch["fail_every"] = 4
        config = write_config(f"""
            [checks.load]
            type = "load"
            url = "http://127.0.0.1:{port}/"
            requests = 8
            concurrency = 2
            interval = "5m"
        """)
        done = run_vigil("check", "load", "-c", str(config))
    assert done.returncode == 2, done.stdout + done.stderr
    perfdata = done.stdout.strip().partition(" | ")[2]
    items = [re.fullmatch(r"(.+)=[\d.]+([a-zA-Z%]*)", item) for item in perfdata.split()]
    units = {m.group(1): m.group(2) for m in items if m is not None}
    assert len(units) == len(items), perfdata
    assert units == {"requests": "", "success_rate": "%", "requests_per_s": "",
                     "latency_mean": "ms", "latency_p50": "ms", "latency_p95": "ms",
                     "latency_p99": "ms", "'errors{kind=\"http_500\"}'": ""}, perfdata


@contextlib.contextmanager
def mcp_server(port: int, knobs: Path) -> Iterator[Callable[[], dict[str, int]]]:
    """The test MCP memory server on ``port`` (its knobs in that file), once it answers;
    yields what it says of the tool calls it served (GET /calls)."""
    server = subprocess.Popen([sys.executable, str(Path(FIXTURES) / "mcp_memory_server.py"),
                               "--port", str(port), "--knobs", str(knobs)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def calls() -> dict[str, int]:
        status, _, body = call(port, "/calls")
        assert status == 200, body
        return dict(json.loads(body))

    try:
        wait_until(lambda: answers(port), 30, "the MCP server to answer")
        yield calls
    finally:
        server.terminate()
        server.wait(10)


def mcp_load(port: int, timeout: float = 30, **options: Any) -> Any:
    return make_check("load", {
        "mcp_url": f"http://127.0.0.1:{port}/mcp", "tool": "rehydrate_memory",
        "arguments": {"session_id": "s1"}, "allow_frequent": True, **options},
        timeout=timeout)


def test_an_mcp_load_test_calls_the_tool_concurrently_and_times_it(tmp_path: Path) -> None:
    port = free_port()
    knobs = tmp_path / "knobs.json"
    # The first calls wait for three in flight: one session at a time would leave them
    # waiting alone.
    knobs.write_text(json.dumps({"tool_delay_ms": 50, "gather": 3}))
    check = mcp_load(port, requests=12, concurrency=3)
    with mcp_server(port, knobs) as calls:
        found = run_check(check)
        m = found.metrics
        assert found.status is Status.OK, found.summary
        assert m["requests"] == 12 and 50 <= m["latency_p50_ms"] <= m["latency_p99_ms"]
        assert 0 < m["requests_per_s"] <= 3 / 0.05
        assert calls() == {"in_flight": 0, "most_in_flight": 3, "calls": 12}
    down = run_check(check)  # nobody answers now: every call failed, and said why
    assert down.status is Status.CRIT and down.metrics["success_rate_pct"] == 0
    assert down.metrics['errors{kind="refused"}'] == 12, down.metrics


def test_a_load_check_runs_at_most_every_five_minutes_unless_allowed(tmp_path: Path) -> None:
    config = tmp_path / "vigil.toml"
    section = '[checks.load]\ntype = "load"\nurl = "http://127.0.0.1:9/"\ninterval = "1m"\n'
    config.write_text(section)
    done = run_vigil("config", "validate", "-c", str(config))
    assert done.returncode != 0
    assert "vigil.toml:4: checks.load.interval: 1m is more often than a load check may run " \
           "(5m at least: it loads a real service); set allow_frequent = true" in done.stderr
    config.write_text(section + "allow_frequent = true\n")
    assert run_vigil("config", "validate", "-c", str(config)).returncode == 0
    # Its fast interval (after a failure, during a heal) is bounded too.
    config.write_text(section.replace('"1m"', '"5m"') + 'fast_interval = "2s"\n')
    done = run_vigil("config", "validate", "-c", str(config))
    assert "vigil.toml:5: checks.load.fast_interval: 2s is more often than a load check " \
           "may run (5m at least" in done.stderr, done.stderr
    config.write_text(section.replace('"1m"', '"5m"'))
    assert run_vigil("config", "validate", "-c", str(config)).returncode == 0
    config.write_text('[checks.load]\ntype = "load"\nurl = "http://127.0.0.1:9/"\n'
                      'mcp_url = "http://127.0.0.1:9/mcp"\n')
    both = run_vigil("config", "validate", "-c", str(config))
    assert "set url (HTTP) or mcp_url (an MCP server), one of them" in both.stderr


def test_a_load_check_holds_off_while_its_service_is_under_maintenance(
        write_config, daemon) -> None:
    port, sentinel = free_port(), free_port()
    with slow_http(port, 0.0) as switch, listening(sentinel):
        config = write_config(f"""
            [daemon]
            state_dir = "state"
            [services.web]
            manager = "command"
            start = ["{sys.executable}", "-c", "import time; time.sleep(3600)"]
            [checks.load]
            type = "load"
            url = "http://127.0.0.1:{port}/"
            service = "web"
            requests = 2
            concurrency = 1
            interval = "500ms"
            allow_frequent = true
            [checks.beat]
            type = "tcp"
            port = {sentinel}
            interval = "300ms"
        """)
        d = daemon(config).start()
        d.wait_for("check.result", count=2, check="load")
        done = run_vigil("maintenance", "start", "web", "--for", "1h", "-c", str(config))
        assert done.returncode == 0, done.stderr
        d.wait_for("maintenance.started", target="web")
        # One run may have begun before the window: let it end, then count.
        seen = len(d.events("check.result", check="beat"))
        d.wait_for("check.result", count=seen + 3, check="beat")
        served = switch["served"]
        d.wait_for("check.result", count=seen + 10, check="beat")  # 3 s: 6 load runs due
        assert switch["served"] == served, "no load test while its service is worked on"
        waited = run_vigil("wait", "load", "--timeout", "1s", "-c", str(config))
        assert waited.returncode == 1 and switch["served"] == served
        # Its last result stands (OK, but not for --stable's 10 s), and why it waits.
        assert "not healthy after 1s: load OK - " in waited.stderr, waited.stderr
        assert "; it waits: under maintenance until " in waited.stderr
        assert "of --stable 10s)" in waited.stderr, "how long its pass has lasted"
        assert "(by vigil maintenance)" in waited.stderr, waited.stderr
        assert run_vigil("maintenance", "end", "web", "-c", str(config)).returncode == 0
        wait_until(lambda: switch["served"] > served, 10, "the load test to run again")


def test_a_load_check_holds_off_while_its_service_is_healed(write_config, daemon,
                                                           tmp_path: Path,
                                                           monkeypatch) -> None:
    """Its service's other check fails: the heal lasts until the test lets it end, and
    no load test runs meanwhile; once healed, it runs again."""
    monkeypatch.setenv("PYTHONPATH", FIXTURES)
    port, sentinel = free_port(), free_port()
    flag, release = tmp_path / "flag", tmp_path / "release"
    flag.write_text("OK")
    with slow_http(port, 0.0) as switch, listening(sentinel):
        config = write_config(f"""
            [daemon]
            state_dir = "state"
            plugins = ["misbehaving"]
            [services.web]
            manager = "flag"
            status_file = "{flag}"
            hold_file = "{release}"
            start_timeout = "2m"
            [checks.guard]
            type = "fixed"
            status_file = "{flag}"
            service = "web"
            interval = "300ms"
            fall = 1
            [checks.load]
            type = "load"
            url = "http://127.0.0.1:{port}/"
            service = "web"
            requests = 2
            concurrency = 1
            interval = "500ms"
            allow_frequent = true
            [checks.beat]
            type = "tcp"
            port = {sentinel}
            interval = "300ms"
        """)
        d = daemon(config).start()
        d.wait_for("check.result", count=2, check="load")
        flag.write_text("CRIT")
        d.wait_for("heal.started", service="web")
        # One run may have begun before the heal: let it end, then count.
        seen = len(d.events("check.result", check="beat"))
        d.wait_for("check.result", count=seen + 3, check="beat")
        served = switch["served"]
        d.wait_for("check.result", count=seen + 10, check="beat")  # 2 s: 4 load runs due
        assert not d.events("heal.succeeded"), "the heal waits for the test"
        assert switch["served"] == served, "no load test while its service is healed"
        waited = run_vigil("wait", "load", "--timeout", "1s", "-c", str(config))
        assert waited.returncode == 1 and switch["served"] == served
        # Its last result stands until it runs again, and why it waits is said.
        assert "; it waits: its service is being healed" in waited.stderr, waited.stderr
        release.touch()
        d.wait_for("heal.succeeded", service="web")
        wait_until(lambda: switch["served"] > served, 10, "the load test to run again")
        assert d.stop() == 0


def test_a_load_check_runs_no_sooner_than_its_floor_whoever_asks(write_config, daemon) -> None:
    """Failing, it wants its fast interval; SIGUSR1 and `vigil wait` (each second) ask
    for runs: the load test still runs once in five minutes, and `vigil wait` says
    when it will again."""
    port, sentinel = free_port(), free_port()
    with slow_http(port, 0.0) as switch, listening(sentinel):
        switch["fail_every"] = 1
        config = write_config(f"""
            [daemon]
            state_dir = "state"
            [checks.load]
            type = "load"
            url = "http://127.0.0.1:{port}/"
            requests = 2
            concurrency = 1
            interval = "5m"
            [checks.beat]
            type = "tcp"
            port = {sentinel}
            interval = "300ms"
        """)
        d = daemon(config).start()
        d.wait_for("check.result", check="load", status="CRIT")
        for count in (1, 2):
            d.signal(signal.SIGUSR1)
            d.wait_for("daemon.run_all", count=count)
        waited = run_vigil("wait", "load", "--timeout", "3s", "-c", str(config))
        assert waited.returncode == 1
        # Its last result counts until it runs again: CRIT, and when it will.
        assert "not healthy after 3s: load CRIT - " in waited.stderr, waited.stderr
        assert "; it waits: runs at most every 5m (it loads its service): next run at " \
            in waited.stderr, waited.stderr
        seen = len(d.events("check.result", check="beat"))
        d.wait_for("check.result", count=seen + 5, check="beat")
        assert switch["served"] == 2, "one load test of two requests, however often asked"
        assert len(d.events("check.result", check="load")) == 1
        assert d.stop() == 0
        again = daemon(config).start()  # a restart keeps the floor: the last run is saved
        again.wait_for("check.result", count=5, check="beat")
        assert switch["served"] == 2 and not again.events("check.result", check="load")


def test_vigil_wait_without_a_daemon_runs_a_load_check_no_sooner_than_its_floor(
        write_config) -> None:
    port = free_port()
    with slow_http(port, 0.0) as switch:
        config = write_config(f"""
            [daemon]
            state_dir = "state"
            [checks.load]
            type = "load"
            url = "http://127.0.0.1:{port}/"
            requests = 2
            concurrency = 1
            interval = "5m"
        """)
        switch["fail_every"] = 1
        waited = run_vigil("wait", "load", "--timeout", "3s", "-c", str(config))
    assert waited.returncode == 1 and switch["served"] == 2, waited.stdout + waited.stderr
    assert "load CRIT - " in waited.stderr
    assert "; it waits: runs at most every 5m (it loads its service): next run at " \
        in waited.stderr, waited.stderr


def test_a_load_checks_floor_holds_across_commands_and_a_daemon_started_after(
        write_config, daemon) -> None:
    # A daemon's run, vigil check, vigil wait with no daemon, a daemon again: each holds
    # to the floor from the last run, whoever made it; the gate takes the last pass, and
    # --force runs the test at once (and is kept as the last run).
    port = free_port()
    with slow_http(port, 0.0) as switch:
        config = write_config(f"""
            [daemon]
            state_dir = "state"
            [services.web]
            manager = "command"
            start = ["true"]
            [checks.load]
            type = "load"
            url = "http://127.0.0.1:{port}/"
            requests = 2
            concurrency = 1
            interval = "5m"
            service = "web"
        """)
        d = daemon(config).start()
        d.wait_for("check.result", check="load")
        assert d.stop() == 0 and switch["served"] == 2
        again = run_vigil("check", "load", "-c", str(config))
        assert again.returncode == 3 and switch["served"] == 2, again.stdout
        assert "load UNKNOWN - not run: runs at most every 5m" in again.stdout
        assert "--force runs it now" in again.stdout
        forced = run_vigil("check", "load", "--force", "-c", str(config))
        assert forced.returncode == 0 and switch["served"] == 4, forced.stdout
        # The gate takes its last pass: a deploy is not held up for five minutes.
        waited = run_vigil("wait", "web", "--stable", "0s", "--timeout", "10s", "-c",
                           str(config))
        assert waited.returncode == 0 and switch["served"] == 4, waited.stdout + waited.stderr
        later = daemon(config).start()
        later.wait_for("daemon.started")
        later.signal(signal.SIGUSR1)
        later.wait_for("daemon.run_all")
        assert later.stop() == 0
        assert switch["served"] == 4, "the daemon kept the floor of the forced run"


@contextlib.contextmanager
def mcp_server_logging(tmp_path: Path, tool_delay_ms: int) -> Iterator[tuple[int, Path]]:
    """The test MCP memory server on a free port, its tool taking ``tool_delay_ms``:
    (its port, the file where it writes each call of the tool), once it listens."""
    port, calls = free_port(), tmp_path / f"calls-{tool_delay_ms}.jsonl"
    knobs = tmp_path / f"knobs-{tool_delay_ms}.json"
    knobs.write_text(json.dumps({"tool_delay_ms": tool_delay_ms}))
    server = subprocess.Popen([sys.executable, str(Path(FIXTURES) / "mcp_memory_server.py"),
                               "--port", str(port), "--knobs", str(knobs), "--calls",
                               str(calls)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: answers(port), 30, "the MCP server to listen")
        yield port, calls
    finally:
        server.terminate()
        server.wait(10)


def checked(config: Path, name: str) -> tuple[int, dict[str, Any]]:
    """`vigil check NAME --json` (forced: these tests measure, one run after another):
    its exit code and what it printed."""
    done = run_vigil("check", name, "--json", "--force", "-c", str(config))
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def test_an_mcp_load_test_opens_concurrency_sessions_and_calls_in_turn_in_each(
        write_config, tmp_path: Path) -> None:
    """Seven calls, concurrency 3: three MCP sessions (as the server saw them), 3, 2 and
    2 calls each, one after the other in a session, three in flight at once."""
    with mcp_server_logging(tmp_path, 200) as (port, calls):
        config = write_config(f"""
            [checks.load]
            type = "load"
            mcp_url = "http://127.0.0.1:{port}/mcp"
            tool = "rehydrate_memory"
            arguments = {{ session_id = "vigil-probe" }}
            requests = 7
            concurrency = 3
            interval = "5m"
        """)
        code, found = checked(config, "load")
    assert code == 0 and found["metrics"]["success_rate_pct"] == 100, found
    made = [json.loads(line) for line in calls.read_text().splitlines()]
    sessions: dict[str, list[tuple[float, float]]] = {}
    for one in made:
        sessions.setdefault(one["session"], []).append((one["start"], one["end"]))
    assert None not in sessions and sorted(map(len, sessions.values())) == [2, 2, 3], made
    for spans in sessions.values():  # in turn: each call begins once the one before ended
        assert all(later[0] >= earlier[1] for earlier, later in itertools.pairwise(spans))
    spans = [(one["start"], one["end"]) for one in made]
    in_flight = max(sum(start <= at < end for start, end in spans) for at, _ in spans)
    assert in_flight == 3, made


def test_a_load_tests_failures_are_counted_by_their_kind(write_config, tmp_path: Path) -> None:
    """Nobody listening is `refused` (HTTP and MCP alike), a call unanswered within the
    test's time is a `timeout` (and the test still reports, before vigil's own timeout),
    and a tool that answers with an error is a `tool_error`."""
    closed, slow = free_port(), free_port()
    with slow_http(slow, 3.0), mcp_server_logging(tmp_path, 0) as (mcp, _), \
            mcp_server_logging(tmp_path, 3000) as (stuck, _):
        config = write_config(f"""
            [defaults]
            interval = "5m"
            [checks.http_refused]
            type = "load"
            url = "http://127.0.0.1:{closed}/"
            requests = 3
            [checks.mcp_refused]
            type = "load"
            mcp_url = "http://127.0.0.1:{closed}/mcp"
            tool = "rehydrate_memory"
            requests = 3
            [checks.http_timeout]
            type = "load"
            url = "http://127.0.0.1:{slow}/"
            requests = 3
            concurrency = 1
            timeout = "1s"
            [checks.mcp_timeout]
            type = "load"
            mcp_url = "http://127.0.0.1:{stuck}/mcp"
            tool = "rehydrate_memory"
            arguments = {{ session_id = "s" }}
            requests = 3
            concurrency = 1
            timeout = "2s"
            [checks.tool_error]
            type = "load"
            mcp_url = "http://127.0.0.1:{mcp}/mcp"
            tool = "no_such_tool"
            requests = 3
        """)
        for name, kind in (("http_refused", "refused"), ("mcp_refused", "refused"),
                           ("http_timeout", "timeout"), ("mcp_timeout", "timeout"),
                           ("tool_error", "tool_error")):
            code, found = checked(config, name)
            errors = {k: v for k, v in found["metrics"].items() if k.startswith("errors")}
            assert code == 2 and errors == {f'errors{{kind="{kind}"}}': 3.0}, (name, found)
            assert f"errors: {kind} x3" in found["summary"], (name, found)


def test_a_load_tests_p95_is_judged_against_p95_warn_and_p95_crit(write_config) -> None:
    """Every answer takes 100 ms: a p95 over p95_warn is WARN, over p95_crit CRIT, under
    both OK; `vigil check` exits 1, 2 and 0."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with slow_http(port, 0.1):
        config = write_config(f"""
            [defaults]
            interval = "5m"
            [checks.slow]
            type = "load"
            url = "{url}"
            requests = 4
            p95_warn = "50ms"
            p95_crit = "1s"
            [checks.too_slow]
            type = "load"
            url = "{url}"
            requests = 4
            p95_warn = "20ms"
            p95_crit = "80ms"
            [checks.quick_enough]
            type = "load"
            url = "{url}"
            requests = 4
            p95_warn = "1s"
            p95_crit = "2s"
        """)
        for name, code, status in (("slow", 1, "WARN"), ("too_slow", 2, "CRIT"),
                                   ("quick_enough", 0, "OK")):
            got, found = checked(config, name)
            assert (got, found["status"]) == (code, status), (name, found)
            assert found["metrics"]["success_rate_pct"] == 100
            assert 100 <= found["metrics"]["latency_p95_ms"] < 1000, found
