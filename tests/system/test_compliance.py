"""The compliance, DSPy-validation and backlog checks over real files: events appended
by a concurrent writer process (through rotation, truncation and half-written lines),
documentation against its manifest, and a Markdown backlog."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import (
    FIXTURES,
    call,
    event_time,
    free_port,
    listening,
    run_vigil,
    wait_until,
)
from vigil import Result, Status
from vigil._config.options import parse_options
from vigil.plugins.backlog import Backlog, BacklogOptions
from vigil.plugins.events import Events, EventsOptions

WRITER = Path(FIXTURES) / "event_writer.py"


def write_events(path: Path, events: list[dict[str, Any]], pause: float = 0.001) -> None:
    """Append ``events`` to ``path`` from another process, each in two writes."""
    source = path.with_name(path.name + f".source{time.monotonic_ns()}")
    source.write_text("".join(json.dumps(e) + "\n" for e in events))
    done = subprocess.run([sys.executable, str(WRITER), str(path), str(source),
                           "--pause", str(pause)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == str(len(events)), done.stderr


def events_check(path: Path, **options: Any) -> Events:
    opts, errors = parse_options(EventsOptions, {"path": str(path), **options})
    assert not errors, errors
    return Events("events", opts)


def now_iso(ago: float = 0.0) -> str:
    return (datetime.now(UTC) - timedelta(seconds=ago)).isoformat()


def test_events_are_counted_through_half_lines_rotation_and_truncation(tmp_path) -> None:
    path = tmp_path / "events.jsonl"
    path.touch()
    check = events_check(path, window="1h")
    results: list[Result] = []
    stop = threading.Event()

    def keep_checking() -> None:  # reads while the writer writes
        while not stop.is_set():
            results.append(check.run())
            time.sleep(0.01)

    reader = threading.Thread(target=keep_checking)
    reader.start()
    try:
        write_events(path, [{"ts": now_iso(), "n": i} for i in range(100)])
        os.rename(path, tmp_path / "events.jsonl.1")  # logrotate's create mode
        write_events(path, [{"ts": now_iso(), "n": i} for i in range(100, 200)])
        time.sleep(0.1)
        shutil.copy(path, tmp_path / "events.jsonl.2")  # copytruncate
        with open(path, "r+") as f:
            f.truncate(0)
        time.sleep(0.1)
        write_events(path, [{"ts": now_iso(), "n": i} for i in range(200, 250)])
    finally:
        stop.set()
        reader.join()
    final = check.run()
    assert final.metrics["events"] == 250, final.summary
    assert final.metrics["malformed_lines"] == 0, "a half-written line is not malformed"
    assert final.details["rotations"] == 1 and final.details["truncations"] == 1
    assert len(results) > 10, "the reader ran while the writer wrote"
    with open(path, "a") as f:
        f.write("not json\n{\"ts\": 1\n[1, 2]\n")
    garbled = check.run()
    assert garbled.metrics["malformed_lines"] == 3 and garbled.metrics["events"] == 250
    with open(path, "a") as f:
        f.write(json.dumps({"ts": now_iso(), "n": 250}))  # no newline yet
    assert check.run().metrics["events"] == 250
    with open(path, "a") as f:
        f.write("\n")
    assert check.run().metrics["events"] == 251


def test_a_dspy_signature_past_its_slo_is_warn_and_named(tmp_path) -> None:
    path = tmp_path / "validations.jsonl"
    events = []
    for i in range(100):
        events.append({"ts": now_iso(), "signature": "QA", "ok": i % 5 >= 2,
                       "latency_ms": 120 + i, "error": None if i % 5 >= 2 else "parse error"})
        events.append({"ts": now_iso(), "signature": "Summarize", "ok": i % 20 != 0,
                       "latency_ms": 40, "error": None if i % 20 else "timeout"})
    write_events(path, events, pause=0)
    check = events_check(path, group_by="signature", ok_field="ok", latency_field="latency_ms",
                         error_field="error", failure_rate_warn_pct=20,
                         failure_rate_crit_pct=60, latency_p95_warn_ms=500, min_events=10)
    result = check.run()
    assert result.status is Status.WARN, result.summary
    assert "signature QA failure rate 40.0% (over 20%)" in result.summary
    assert "Summarize failure rate" not in result.summary
    # All events' figures lead the summary once, as the README's sample reads.
    assert result.summary.startswith("200 events in 5m, 45 failed (22.5%), p95 ")
    assert "all failure rate" not in result.summary and "all p95" not in result.summary
    assert "'parse error' x40" in result.summary
    assert result.details["errors_by_group"] == {"QA": {"parse error": 40},
                                                 "Summarize": {"timeout": 5}}
    assert result.metrics['failure_rate_pct{signature="QA"}'] == 40.0
    assert result.metrics['failure_rate_pct{signature="Summarize"}'] == 5.0
    assert result.metrics["events"] == 200 and result.metrics["failures"] == 45
    assert 210 <= result.metrics['latency_p95_ms{signature="QA"}'] <= 220
    assert result.metrics['latency_p50_ms{signature="Summarize"}'] == pytest.approx(40, rel=0.02)
    assert not result.healable


def test_a_failure_spike_against_the_baseline_is_warn(tmp_path) -> None:
    path = tmp_path / "validations.jsonl"
    # The hour before the window: 1% of 600 validations failed.
    past = [{"ts": now_iso(ago=360 + i * 5), "ok": i % 100 != 0} for i in range(600)]
    write_events(path, past, pause=0)
    check = events_check(path, ok_field="ok", spike_factor=5, window="5m")
    calm = check.run()
    assert calm.status is Status.OK and calm.metrics["events"] == 0, calm.summary
    write_events(path, [{"ts": now_iso(), "ok": i % 4 != 0} for i in range(40)], pause=0)
    spiked = check.run()
    assert spiked.status is Status.WARN, spiked.summary
    assert "failure spike: 25.0% against 1.0% over the 1h before" in spiked.summary
    loud = events_check(path, ok_field="ok", spike_factor=5, spike_status="CRIT")
    assert loud.run().status is Status.CRIT, "a spike that should alert"
    assert events_check(path, ok_field="ok", spike_factor=50).run().status is Status.OK


def test_a_safety_violation_is_crit_and_never_healed(write_config, daemon, tmp_path) -> None:
    path = tmp_path / "agent-events.jsonl"
    path.touch()
    config = write_config(f"""
        [daemon]
        state_dir = "state"
        [services.agent]
        manager = "command"
        start = ["{sys.executable}", "-c", "import time; time.sleep(60)"]
        [checks.safety]
        type = "events"
        path = "{path}"
        match = {{ kind = "safety_violation" }}
        count_crit = 1
        service = "agent"
        interval = "300ms"
        fall = 1
    """)
    d = daemon(config).start()
    d.wait_for("check.result", check="safety", status="OK")
    write_events(path, [{"ts": now_iso(), "kind": "context_loss"},
                        {"ts": now_iso(), "kind": "safety_violation", "agent": "planner"}])
    failed = d.wait_for("check.state_changed", check="safety", to="FAILING")[0]
    assert failed["status"] == "CRIT"
    assert failed["summary"].startswith("1 event in 5m (CRIT from 1)")
    skipped = d.wait_for("heal.skipped", service="agent")[0]
    assert "a restart would not help" in skipped["reason"]
    # Three more FAILING results, each weighed by the healer: none heals.
    runs = len(d.events("check.result", check="safety"))
    d.wait_for("check.result", count=runs + 3, check="safety", status="CRIT")
    assert not d.events("heal.started"), "a restart does not undo a safety violation"


def test_a_modified_and_a_missing_doc_are_crit_and_named(write_config, tmp_path) -> None:
    docs = tmp_path / "docs"
    (docs / "guide").mkdir(parents=True)
    (docs / "index.md").write_text("# Index\n\n## Usage\n\nSee [setup](guide/setup.md#install)"
                                   " and [usage](#usage).\n")
    (docs / "guide" / "setup.md").write_text("# Setup\n\n## Install\n\n## Usage\n")
    (docs / "guide" / "faq.md").write_text("# FAQ\n\n## Usage\n")
    config = write_config(f"""
        [daemon]
        state_dir = "state"
        [checks.docs]
        type = "docs"
        root = "{docs}"
        require_sections = ["Usage"]
    """)
    no_manifest = run_vigil("check", "docs", "-c", str(config))
    assert no_manifest.returncode == 3 and "--update` writes it" in no_manifest.stdout
    updated = run_vigil("check", "docs", "--update", "-c", str(config))
    assert updated.returncode == 0 and updated.stdout.strip().endswith("SHA256SUMS: 3 files")
    ok = run_vigil("check", "docs", "-c", str(config))
    assert ok.returncode == 0 and "3 files as in the manifest" in ok.stdout, ok.stdout
    config.write_text(config.read_text() + '[checks.port]\ntype = "tcp"\nport = 1\n')
    nothing = run_vigil("check", "port", "--update", "-c", str(config))
    assert nothing.returncode == 2 and "a Tcp check has nothing to update" in nothing.stderr

    (docs / "guide" / "setup.md").write_text("# Setup\n\n## Installing\n\n## Usage\n")
    (docs / "guide" / "faq.md").unlink()
    (docs / "new.md").write_text("# New\n\nSee [gone](old.md).\n")
    bad = run_vigil("check", "docs", "--json", "-c", str(config))
    result = json.loads(bad.stdout)
    assert bad.returncode == 2 and result["status"] == "CRIT"
    assert "1 missing (guide/faq.md)" in result["summary"]
    assert "1 modified (guide/setup.md)" in result["summary"]
    assert "1 not in the manifest (new.md)" in result["summary"]
    assert result["details"]["broken links"] == ["index.md -> guide/setup.md#install",
                                                 "new.md -> old.md"]
    assert result["details"]["missing sections"] == ["new.md: Usage"]


def test_a_markdown_backlog_counts_stale_work_in_progress(tmp_path) -> None:
    day = lambda ago: (datetime.now(UTC).date() - timedelta(days=ago)).isoformat()  # noqa: E731
    backlog = tmp_path / "000_backlog.md"
    backlog.write_text(f"""# Backlog

Some words before the table.

| ID | Title | Status | Started |
|----|-------|--------|---------|
| B-1 | Old migration | in-progress | {day(10)} |
| B-2 | Fresh work | doing | {day(3)} |
| B-3 | Ancient refactor | In-Progress | {day(20)} |
| B-4 | Shipped | done | {day(40)} |
| B-5 | Someday | todo | |

Notes after the table | with a pipe.
""")
    opts, errors = parse_options(BacklogOptions, {"path": str(backlog)})
    assert not errors
    result = Backlog("backlog", opts).run()
    assert result.status is Status.WARN
    assert result.metrics == {"items": 5, "items_in_progress": 3, "items_stale": 2,
                              "avg_days_in_progress": 11.0, "oldest_days": 20}
    assert result.summary.startswith("3 in progress, 2 stale (>= 7 days), average 11 days: "
                                     "B-3 Ancient refactor (20 days), B-1 Old migration")
    crit, _ = parse_options(BacklogOptions, {"path": str(backlog), "stale_crit": 2})
    assert Backlog("backlog", crit).run().status is Status.CRIT
    as_json = tmp_path / "backlog.json"
    as_json.write_text(json.dumps([{"ID": "J-1", "Title": "t", "Status": "doing",
                                    "Started": day(8)}]))
    opts, _ = parse_options(BacklogOptions, {"path": str(as_json)})
    assert Backlog("b", opts).run().metrics["items_stale"] == 1
    as_csv = tmp_path / "backlog.csv"
    as_csv.write_text(f"key,name,state,since\nC-1,a,WIP,{day(9)}\nC-2,b,WIP,{day(1)}\n")
    opts, _ = parse_options(BacklogOptions, {
        "path": str(as_csv), "id_column": "key", "title_column": "name",
        "status_column": "state", "started_column": "since", "in_progress": ["wip"]})
    csv_result = Backlog("b", opts).run()
    assert csv_result.metrics["items_in_progress"] == 2 and csv_result.details["stale"] == [
        "C-1 a"]


def test_an_event_without_a_time_counts_from_when_it_is_read(tmp_path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps({"kind": "before vigil looked"}) + "\n")
    check = events_check(path, window="1m")
    assert check.run().metrics["events"] == 0, "its time is unknown: not counted"
    write_events(path, [{"kind": "now"}, {"kind": "now", "time": 1_000_000_000}])
    assert check.run().metrics["events"] == 1, "the one from 2001 is outside the window"


BACKLOG = """# Backlog

Kept by hand; vigil adds its items below.

| ID | Title | Status | Started | Owner |
|----|-------|--------|---------|-------|
| OPS-7 | Rotate the keys | doing | 2026-11-01 | ana |
| APP-2 | Faster search | todo | | |

## Notes

Trailing text, kept as it is | even with a pipe.
"""


def test_a_remediation_item_is_added_once_across_restarts_and_noted_on_recovery(
        write_config, daemon, receiver, tmp_path) -> None:
    events, backlog = tmp_path / "agent-events.jsonl", tmp_path / "000_backlog.md"
    events.touch()
    backlog.write_text(BACKLOG)
    config = write_config(f"""
        [daemon]
        state_dir = "state"
        [checks.safety]
        type = "events"
        path = "{events}"
        window = "20s"
        match = {{ kind = "safety_violation" }}
        count_crit = 1
        interval = "300ms"
        fall = 1
        [remediation]
        path = "000_backlog.md"
        when = ["crit"]
        [alerts.hook]
        type = "webhook"
        url = "{receiver.url('/')}"
    """)
    d = daemon(config).start()
    d.wait_for("check.result", check="safety", status="OK")
    write_events(events, [{"ts": now_iso(), "kind": "safety_violation", "agent": "planner"}])
    added = d.wait_for("remediation.added")[0]
    assert added["id"] == "OPS-8" and added["subject"] == "check safety"
    written = backlog.read_text()
    assert "| OPS-8 | check `safety` is CRIT | todo |" in written
    assert ("- Acceptance criteria: check `safety` passes for 7 days with 0 safety_violation "
            "events") in written
    assert f"- Where to look: `vigil history safety`, `vigil logs --check safety`, {events}" \
        in written
    for _ in range(2):
        d.stop()
        d = daemon(config).start()
        known = d.wait_for("remediation.known")[0]
        assert known["subject"] == "check safety"
        assert not d.events("remediation.added") and backlog.read_text() == written
    updated = d.wait_for("remediation.updated", timeout=30)[0]
    assert updated["id"] == "OPS-8" and updated["subject"] == "check safety"
    final = backlog.read_text()
    assert final.count("OPS-8") == 2 and "<!-- vigil:remediation" in final
    assert " recovered -->" in final and "- Recovered: " in final
    row = next(line for line in final.splitlines(keepends=True) if line.startswith("| OPS-8"))
    before_block = final.split("\n### OPS-8:")[0]
    assert before_block.replace(row, "", 1) == BACKLOG, "every other byte as it was"
    names = [(a["labels"]["alertname"], a["status"]) for p in receiver.posts
             for a in p["body"]["alerts"]]
    assert names.count(("VigilRemediation", "firing")) == 1, names
    wait_until(lambda: ("VigilRemediation", "resolved") in [
        (a["labels"]["alertname"], a["status"]) for p in receiver.posts
        for a in p["body"]["alerts"]], 10, "the remediation's resolution at the sink")
    remediation = next(a for p in receiver.posts for a in p["body"]["alerts"]
                       if a["labels"]["alertname"] == "VigilRemediation")
    assert remediation["annotations"]["summary"].startswith("OPS-8: check `safety` is CRIT")
    assert "0 safety_violation events" in remediation["annotations"]["acceptance"]


def test_compliance_checks_reach_metrics_and_health_and_readyz_only_when_asked(
        write_config, daemon, tmp_path) -> None:
    events = tmp_path / "agent-events.jsonl"
    write_events(events, [{"ts": now_iso(), "kind": "safety_violation", "sig": "QA"}])
    port = free_port()
    config = write_config(f"""
        [daemon]
        state_dir = "state"
        http = "127.0.0.1:{port}"
        [checks.safety]
        type = "events"
        path = "{events}"
        match = {{ kind = "safety_violation" }}
        group_by = "sig"
        count_crit = 1
        interval = "300ms"
        fall = 1
        [checks.gate]
        type = "events"
        path = "{events}"
        count_crit = 1
        readiness = true
        interval = "300ms"
        fall = 1
    """)
    d = daemon(config).start()
    d.wait_for("check.state_changed", check="gate", to="FAILING")
    d.wait_for("check.state_changed", check="safety", to="FAILING")
    status, _, raw = call(port, "/readyz?verbose")
    assert status == 503 and b"[-]gate failed" in raw and b"safety" not in raw, raw
    _, _, raw = call(port, "/health")
    assert json.loads(raw)["checks"]["safety"][0]["status"] == "fail"
    _, _, raw = call(port, "/metrics")
    assert b'vigil_check_metric{check="safety",metric="events",sig="QA"} 1.0' in raw, raw


def test_remediation_for_a_long_failure_and_a_service_given_up_in_a_new_backlog(
        write_config, daemon, tmp_path) -> None:
    port = free_port()
    backlog = tmp_path / "ops.md"
    config = write_config(f"""
        [daemon]
        state_dir = "state"
        [services.broken]
        manager = "command"
        start = ["{sys.executable}", "-c", "import sys; sys.exit('no config')"]
        restarts = 1
        backoff = "100ms"
        [checks.db]
        type = "tcp"
        port = {port}
        interval = "300ms"
        fall = 1
        [checks.worker]
        type = "tcp"
        port = {free_port()}
        service = "broken"
        interval = "300ms"
        fall = 1
        [remediation]
        path = "ops.md"
        when = ["failing:2s", "gave_up"]
        id_prefix = "FIX-"
        checks = ["db"]
    """)
    d = daemon(config).start()
    added = {e["subject"]: e for e in d.wait_for("remediation.added", count=2, timeout=20)}
    assert set(added) == {"check db", "service broken"}, added
    text = backlog.read_text()
    assert text.startswith("# Backlog\n\n| ID | Title | Status | Started |\n")
    assert "check `db` has been FAILING for 2s" in added["check db"]["title"]
    assert added["check db"]["acceptance"] == "check `db` OK for 24 h"
    assert added["service broken"]["title"] == "vigil gave up healing service `broken`"
    assert "`vigil heal broken` succeeds and its checks (worker) stay OK for 24 h" in text
    assert "worker" not in [e["subject"] for e in d.events("remediation.added")], \
        "checks = [\"db\"]: the worker's own failure is not an item"
    with listening(port):
        updated = d.wait_for("remediation.updated")[0]
    assert updated["subject"] == "check db" and updated["id"] in ("FIX-1", "FIX-2")
    assert backlog.read_text().count(" recovered -->") == 1


def test_a_backlog_that_cannot_be_written_is_said_once_and_the_checks_go_on(
        write_config, daemon) -> None:
    config = write_config(f"""
        [daemon]
        state_dir = "state"
        [checks.db]
        type = "tcp"
        port = {free_port()}
        interval = "300ms"
        fall = 1
        [remediation]
        path = "no-such-folder/ops.md"
        when = ["failing:1s"]
    """)
    d = daemon(config).start()
    failed = d.wait_for("remediation.failed")[0]
    assert failed["path"].endswith("no-such-folder/ops.md") and "No such file" in failed["error"]
    seen = len(d.events("check.result", check="db"))
    d.wait_for("check.result", count=seen + 5, check="db")
    assert len(d.events("remediation.failed")) == 1


def test_two_vigils_sharing_a_backlog_write_a_problem_once(write_config, daemon,
                                                          tmp_path) -> None:
    port, backlog = free_port(), tmp_path / "ops.md"
    backlog.write_text(BACKLOG)
    daemons = []
    for index in range(2):
        config = write_config(f"""
            [daemon]
            state_dir = "state{index}"
            [checks.db]
            type = "tcp"
            port = {port}
            interval = "200ms"
            fall = 1
            [remediation]
            path = "ops.md"
            when = ["failing:1s"]
        """, name=f"vigil{index}.toml")
        daemons.append(daemon(config))
    for d in daemons:  # started together: both find the problem within the same second
        d.start(wait_started=False)
    # Each either wrote the item or found it written by the other.
    wait_until(lambda: all(d.events("remediation.added") or d.events("remediation.known")
                           for d in daemons), 15, "both to have looked")
    text = backlog.read_text()
    assert text.count("<!-- vigil:remediation ") == 1 and text.count("| OPS-8 |") == 1, text
    assert sum(len(d.events("remediation.added")) for d in daemons) == 1


def test_an_events_check_keeps_its_window_across_a_restart(write_config, daemon,
                                                           tmp_path) -> None:
    path = tmp_path / "validations.jsonl"
    path.touch()
    config = write_config(f"""
        [daemon]
        state_dir = "state"
        http = ""
        log_results = "all"
        [checks.dspy]
        type = "events"
        path = "{path}"
        ok_field = "ok"
        window = "10m"
        interval = "300ms"
    """)
    d = daemon(config).start()
    d.wait_for("check.result", check="dspy")
    write_events(path, [{"ts": now_iso(ago=60 + i), "ok": i % 4 != 0} for i in range(40)])
    wait_until(lambda: any(r["metrics"].get("events") == 40
                           for r in d.events("check.result", check="dspy")), 10,
               "the 40 events counted")
    assert d.stop() == 0
    again = daemon(config).start()
    first = again.wait_for("check.result", check="dspy")[0]
    # The window is read again at start: the same 40 events, 10 of them failed.
    assert first["metrics"]["events"] == 40 and first["metrics"]["failures"] == 10, first


def test_a_long_failure_counts_across_a_restart(write_config, daemon, tmp_path) -> None:
    backlog = tmp_path / "ops.md"
    config = write_config(f"""
        [daemon]
        state_dir = "state"
        http = ""
        [checks.db]
        type = "tcp"
        port = {free_port()}
        interval = "300ms"
        fall = 1
        [remediation]
        path = "ops.md"
        when = ["failing:6s"]
    """)
    d = daemon(config).start()
    failed = d.wait_for("check.state_changed", check="db", to="FAILING")[0]
    d.wait_for("check.result", count=3, check="db")
    assert d.stop() == 0 and not d.events("remediation.added")
    again = daemon(config).start()
    added = again.wait_for("remediation.added", timeout=30)[0]
    # It failed since before the restart: the item says so, and came 6 s after that.
    minutes = {datetime.fromtimestamp(event_time(failed) + d, UTC).strftime(
        "%Y-%m-%d %H:%M UTC") for d in (-1, 1)}  # the log line and the state, a moment apart
    assert any(f"failing since {m}" in backlog.read_text() for m in minutes), (
        backlog.read_text())
    assert event_time(added) - event_time(failed) >= 6
    assert not again.events("check.state_changed", to="FAILING", **{"from": "PENDING"}), \
        "the FAILING state was kept, not found anew"
