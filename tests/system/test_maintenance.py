"""Maintenance windows: a window on a service holds its heals back, shows its checks in
MAINTENANCE, and when it ends the checks are judged afresh; `vigil maintenance` and the
API open, list and end them, scheduled ones too; the history marks what they held."""

from __future__ import annotations

import json
import socket
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import (
    FIXTURES,
    alertmanager,
    am_alerts,
    am_silences,
    call,
    event_time,
    free_port,
    run_vigil,
    saved_state,
    statuses,
    wait_until,
)


def test_a_window_holds_heals_back_and_its_end_lets_them_go(write_config, daemon,
                                                             tmp_path: Path,
                                                             monkeypatch) -> None:
    """app fails under the window until it is FAILING there (fall = 5): no heal while
    the window lasts, and once it ends the next run heals it, with no new wait of five
    failures. The daemon's log is the whole story, in order."""
    monkeypatch.setenv("PYTHONPATH", FIXTURES)
    flag = tmp_path / "flag"
    flag.write_text("CRIT")
    config = write_config(f"""
        [daemon]
        state_dir = "state"
        plugins = ["misbehaving"]
        [services.app]
        manager = "flag"
        status_file = "{flag}"
        backoff = "0s"
        [checks.app]
        type = "fixed"
        status_file = "{flag}"
        service = "app"
        interval = "1s"
        fast_interval = "200ms"
        fall = 5
    """)
    started = run_vigil("maintenance", "start", "app", "--for", "1h", "--reason", "upgrade",
                        "-c", str(config))
    assert started.returncode == 0, started.stderr
    d = daemon(config).start()
    window = d.wait_for("maintenance.started", target="app")[0]
    assert window["reason"] == "upgrade" and window["by"] == "vigil maintenance"
    d.wait_for("check.state_changed", check="app", to="FAILING")
    skipped = d.wait_for("heal.skipped", service="app")[0]
    assert skipped["reason"] == "maintenance" and skipped["window"] == "app"
    wait_until(lambda: saved_state(tmp_path / "state")["checks"]["app"]["state"]
               == "MAINTENANCE", 5, "the check shown in MAINTENANCE")
    ended = run_vigil("maintenance", "end", "app", "-c", str(config))
    assert ended.returncode == 0, ended.stderr
    d.wait_for("heal.succeeded", service="app", timeout=15)

    events = d.events()

    def first(event: str, **fields: Any) -> int:
        return next(i for i, e in enumerate(events) if e.get("event") == event
                    and all(e.get(k) == v for k, v in fields.items()))

    failing = first("check.state_changed", check="app", to="FAILING")
    end = first("maintenance.ended", target="app", why="ended")
    heal = first("heal.started", service="app")
    assert failing < end < heal, "healed only after the window ended"
    between = events[end:heal]
    assert not [e for e in between if e.get("event") == "check.state_changed"], between
    runs = [e for e in between if e.get("event") == "check.result"]
    assert 1 <= len(runs) < 5, f"a new fall wait after the window: {len(runs)} runs"
    assert d.stop() == 0


def test_a_scheduled_window_is_opened_by_its_cron(write_config, daemon) -> None:
    """The window's cron names the first minute that begins 12 s or more from now (UTC):
    the daemon starts before it with no window in force, and the window opens at that
    minute, for its duration."""
    opens = -(-(time.time() + 12) // 60) * 60
    at = datetime.fromtimestamp(opens, UTC)
    d = daemon(write_config(f"""
        [daemon]
        state_dir = "state"
        [checks.disk]
        type = "system"
        interval = "1s"
        [maintenance.nightly]
        schedule = "{at.minute} {at.hour} * * *"
        duration = "10s"
        checks = ["disk*"]
        reason = "the backup"
    """)).start()
    assert event_time(d.events("daemon.started")[0]) < opens, "started after the window's time"
    window = d.wait_for("maintenance.started", target="disk*",
                        timeout=opens - time.time() + 30)[0]
    assert window["by"] == "schedule nightly" and window["reason"] == "the backup"
    assert event_time(window) >= opens, "opened before its cron's minute"
    assert datetime.fromisoformat(window["until"]).timestamp() == opens + 10
    shown = [e for e in d.events("check.result", check="disk")
             if event_time(e) < opens]
    assert shown, "the check ran before the window opened"
    ended = d.wait_for("maintenance.ended", target="disk*", why="expired", timeout=40)[0]
    assert event_time(ended) >= opens + 10
    assert d.stop() == 0


TOKEN = "t0ken-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def served_config(write_config, tmp_path: Path, extra: str = "") -> tuple[Path, int]:
    """A config with HTTP on a free port: a service `app` (its flag says OK) guarded by
    the check `app`, and a check `disk`; ``extra`` sections after them."""
    flag = tmp_path / "flag"
    flag.write_text("OK")
    port = free_port()
    return write_config(f"""
        [daemon]
        state_dir = "state"
        plugins = ["misbehaving"]
        http = "127.0.0.1:{port}"
        http_token = "{TOKEN}"
        [services.app]
        manager = "flag"
        status_file = "{flag}"
        [checks.app]
        type = "fixed"
        status_file = "{flag}"
        service = "app"
        interval = "1s"
        [checks.disk]
        type = "fixed"
        interval = "1s"
        {extra}
    """), port


def api(port: int, path: str, method: str = "GET") -> tuple[int, Any]:
    status, _, body = call(port, path, method, AUTH)
    return status, json.loads(body)


def this_minute() -> str:
    """A cron schedule that fired at the start of this minute (UTC), and fires next
    tomorrow: with a duration of minutes, a window in force whatever the second."""
    now = datetime.now(UTC)
    return f"{now.minute} {now.hour} * * *"


def test_the_api_opens_lists_and_ends_a_window(write_config, daemon, tmp_path: Path,
                                               monkeypatch) -> None:
    monkeypatch.setenv("PYTHONPATH", FIXTURES)
    config, port = served_config(write_config, tmp_path)
    d = daemon(config).start()
    d.wait_for("http.listening")
    assert api(port, "/api/v1/maintenance") == (200, {"maintenance": [], "scheduled": []})
    assert call(port, "/api/v1/maintenance/app?for=5m", "POST")[0] == 401
    assert api(port, "/api/v1/maintenance/app", "POST")[0] == 400, "how long?"
    status, said = api(port, "/api/v1/maintenance/app?for=0s", "POST")
    assert status == 400 and "longer than 0s" in said["error"]
    assert api(port, "/api/v1/maintenance/nope?for=5m", "POST")[0] == 404
    assert api(port, "/api/v1/maintenance")[1]["maintenance"] == [], "nothing stored"

    status, said = api(port, "/api/v1/maintenance/app?for=5m&reason=upgrade", "POST")
    window = said["maintenance"]
    assert status == 200 and window["by"] == "the HTTP API"
    assert window["until"] == pytest.approx(window["since"] + 300)
    d.wait_for("maintenance.started", target="app", by="the HTTP API", reason="upgrade")
    listed = api(port, "/api/v1/maintenance")[1]["maintenance"]
    assert [(w["target"], w["reason"]) for w in listed] == [("app", "upgrade")]
    assert api(port, "/api/v1/maintenance/app", "DELETE") == (200, {"ended": "app"})
    d.wait_for("maintenance.ended", target="app", why="ended")
    status, said = api(port, "/api/v1/maintenance/app", "DELETE")
    assert status == 404 and said["error"] == "no maintenance of 'app' in force"
    assert d.stop() == 0


def test_a_scheduled_window_is_listed_and_ended_by_its_name(write_config, daemon,
                                                            tmp_path: Path,
                                                            monkeypatch) -> None:
    monkeypatch.setenv("PYTHONPATH", FIXTURES)
    schedule = this_minute()
    config, port = served_config(write_config, tmp_path, f"""
        [maintenance.nightly]
        schedule = "{schedule}"
        duration = "10m"
        checks = ["disk*"]
        reason = "the backup"
        [maintenance.vacuum]
        schedule = "{schedule}"
        duration = "10m"
        services = ["app"]
    """)
    d = daemon(config).start()
    d.wait_for("maintenance.started", target="disk*", by="schedule nightly")
    d.wait_for("maintenance.started", target="app", by="schedule vacuum")

    listed = run_vigil("maintenance", "list", "--json", "-c", str(config))
    assert listed.returncode == 0, listed.stderr
    nightly, vacuum = json.loads(listed.stdout)["scheduled"]
    assert (nightly["name"], nightly["checks"], nightly["reason"]) == (
        "nightly", ["disk*"], "the backup")
    assert nightly["until"] == nightly["since"] + 600 and nightly["since"] <= time.time()
    assert nightly["next_start"] == nightly["since"] + 86400
    assert vacuum["services"] == ["app"]
    assert api(port, "/api/v1/maintenance")[1]["scheduled"] == [nightly, vacuum]
    text = run_vigil("maintenance", "list", "-c", str(config)).stdout
    assert "scheduled nightly (disk*)  in force since " in text and "(the backup)" in text
    wait_until(lambda: api(port, "/api/v1/checks/disk")[1]["state"] == "MAINTENANCE", 10,
               "disk in maintenance")

    # A check the window holds is not what `end` takes: it says which window holds it.
    wrong = run_vigil("maintenance", "end", "disk", "-c", str(config))
    assert wrong.returncode == 1 and "ended" not in wrong.stdout
    assert "no maintenance of 'disk' in force; the scheduled window 'nightly' holds it" \
        in wrong.stderr
    ended = run_vigil("maintenance", "end", "nightly", "-c", str(config))
    assert ended.returncode == 0, ended.stderr
    assert ended.stdout.startswith("nightly: maintenance ended; the running daemon")
    d.wait_for("maintenance.ended", target="disk*", why="ended")
    wait_until(lambda: api(port, "/api/v1/checks/disk")[1]["state"] == "OK", 10,
               "disk out of maintenance")
    again = run_vigil("maintenance", "end", "nightly", "-c", str(config))
    assert again.returncode == 1 and again.stdout == ""
    assert "no maintenance of 'nightly' in force" in again.stderr
    nightly = json.loads(run_vigil("maintenance", "list", "--json", "-c",
                                   str(config)).stdout)["scheduled"][0]
    assert nightly["since"] is None and nightly["until"] is None
    assert "scheduled nightly (disk*)  not in force; next " in run_vigil(
        "maintenance", "list", "-c", str(config)).stdout

    # The API ends the other one, once.
    assert api(port, "/api/v1/maintenance/vacuum", "DELETE") == (200, {"ended": "vacuum"})
    d.wait_for("maintenance.ended", target="app", why="ended")
    assert api(port, "/api/v1/maintenance/vacuum", "DELETE")[0] == 404
    # Ended for the rest of this occurrence, across a restart of the daemon too.
    assert d.stop() == 0
    d = daemon(config).start()
    d.wait_for("check.result", check="disk", count=2)
    assert not d.events("maintenance.started")
    assert d.stop() == 0


def test_list_takes_targets_and_start_says_what_is_wrong(write_config, daemon,
                                                         tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PYTHONPATH", FIXTURES)
    config, _ = served_config(write_config, tmp_path, f"""
        [maintenance.nightly]
        schedule = "{this_minute()}"
        duration = "10m"
        checks = ["disk*"]
    """)
    d = daemon(config).start()
    for words in (["app", "--for", "5m"], ["--for", "5m", "di*"]):
        done = run_vigil("maintenance", "start", *words, "-c", str(config))
        assert done.returncode == 0, done.stderr
    d.wait_for("maintenance.started", target="di*")

    def listed(*targets: str) -> tuple[list[str], list[str]]:
        done = run_vigil("maintenance", "list", *targets, "--json", "-c", str(config))
        found = json.loads(done.stdout)
        return ([w["target"] for w in found["maintenance"]],
                [s["name"] for s in found["scheduled"]])

    assert listed() == (["app", "di*"], ["nightly"])
    assert listed("app") == (["app"], [])
    # Options before the targets, as a user types them.
    ahead = run_vigil("maintenance", "list", "--json", "app", "-c", str(config))
    assert [w["target"] for w in json.loads(ahead.stdout)["maintenance"]] == ["app"], ahead
    assert listed("disk") == (["di*"], ["nightly"]), "the windows that hold the check"
    assert listed("nightly") == ([], ["nightly"])
    assert listed("nope") == ([], [])
    assert run_vigil("maintenance", "list", "nope", "-c", str(config)).stdout == \
        "no maintenance in force on nope\n"

    for wrong in (["nosuch", "--for", "5m"], ["app", "--for", "0s"], ["app"]):
        done = run_vigil("maintenance", "start", *wrong, "-c", str(config))
        assert done.returncode == 2, (wrong, done.stderr)
        assert "Traceback" not in done.stderr and done.stdout == ""
    assert "--for must be longer than 0s" in run_vigil(
        "maintenance", "start", "app", "--for", "0s", "-c", str(config)).stderr
    # Two targets, one in force: the one is ended and said; the other is an error.
    done = run_vigil("maintenance", "end", "app", "nope", "-c", str(config))
    assert done.returncode == 1
    assert done.stdout.startswith("app: maintenance ended")
    assert "no maintenance of 'nope' in force" in done.stderr
    d.wait_for("maintenance.ended", target="app", why="ended")
    # A check a glob's window holds: the glob's to end, and said so.
    held = run_vigil("maintenance", "end", "disk", "-c", str(config))
    assert held.returncode == 1 and "the window on 'di*' holds it: `vigil maintenance end " \
        "'di*'` ends it" in held.stderr, held.stderr
    assert d.stop() == 0


def test_a_scheduled_window_or_a_service_key_that_cannot_work_is_a_config_error(
        tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(textwrap.dedent("""\
        [daemon]
        state_dir = "state"
        [services.db]
        manager = "systemd"
        unit = "pg"
        respect_stops = false
        [services.app]
        manager = "command"
        start = ["true"]
        respect_stops = true
        [checks.disk]
        type = "system"
        [maintenance.nightly]
        schedule = "30 3 * * *"
        timezone = "Mars/Base"
        duration = "0s"
        checks = ["disk", "dsk*"]
    """))
    done = run_vigil("config", "validate", "-c", str(path))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    for expected in (f"{path}:10: services.app.respect_stops: the command manager cannot "
                     "tell a stop from a crash, so every exit is healed; respect_stops "
                     "applies to systemd services only",
                     f"{path}:15: maintenance.nightly.timezone: unknown time zone 'Mars/Base'",
                     f"{path}:16: maintenance.nightly.duration: must be greater than zero",
                     f"{path}:17: maintenance.nightly.checks: 'dsk*' matches no check "
                     "(checks: disk)"):
        assert expected in done.stderr, done.stderr
    assert "4 errors" in done.stderr and "services.db" not in done.stderr


def test_history_marks_the_results_taken_under_maintenance(write_config, daemon,
                                                           tmp_path: Path,
                                                           monkeypatch) -> None:
    monkeypatch.setenv("PYTHONPATH", FIXTURES)
    config = write_config("""
        [daemon]
        state_dir = "state"
        plugins = ["misbehaving"]
        [checks.disk]
        type = "fixed"
        interval = "200ms"
    """)
    d = daemon(config).start()
    d.wait_for("check.result", check="disk", count=2)
    assert run_vigil("maintenance", "start", "disk", "--for", "1s", "-c",
                     str(config)).returncode == 0
    d.wait_for("maintenance.ended", target="disk", why="expired", timeout=10)
    after = len(d.events("check.result", check="disk"))
    d.wait_for("check.result", check="disk", count=after + 2)

    def results() -> list[dict[str, Any]]:
        done = run_vigil("history", "disk", "--json", "-c", str(config))
        return json.loads(done.stdout)["results"] if done.returncode == 0 else []

    def held() -> list[bool]:
        return [r["maintenance"] for r in results()]

    # Before, under and after the window, in the history once the writer committed it.
    wait_until(lambda: held() and held()[0] is False and True in held()
               and held()[-1] is False, 10, "results before, under and after the window")
    assert d.stop() == 0  # the history holds still: the text shows what the JSON did
    text = run_vigil("history", "disk", "-c", str(config)).stdout.splitlines()
    lines = [line for line in text if " ms  " in line]  # a result's line
    assert [("(maintenance) told to be OK" in line) for line in lines] == held()


def test_until_end_lasts_until_ended_and_list_json_gives_each_windows_fields(
        write_config, daemon, tmp_path: Path, monkeypatch) -> None:
    """`--until-end` opens a window with no end: one of 2 s beside it expires, and it
    holds on until `vigil maintenance end`. `list --json` gives each window in force
    with its target, until (null: until ended), reason, since and by."""
    monkeypatch.setenv("PYTHONPATH", FIXTURES)
    config, _ = served_config(write_config, tmp_path)
    before = time.time()
    opened = run_vigil("maintenance", "start", "app", "--until-end", "--reason", "until done",
                       "-c", str(config))
    assert opened.returncode == 0, opened.stderr
    assert opened.stdout.startswith("app: maintenance until ended; "), opened.stdout
    short = run_vigil("maintenance", "start", "di*", "--for", "2s", "-c", str(config))
    assert short.returncode == 0, short.stderr

    def listed() -> dict[str, Any]:
        done = run_vigil("maintenance", "list", "--json", "-c", str(config))
        assert done.returncode == 0, done.stderr
        return dict(json.loads(done.stdout))

    found = listed()
    assert found["scheduled"] == []
    app, disk = found["maintenance"]
    assert set(app) == {"target", "until", "reason", "since", "by"}
    assert (app["target"], app["until"], app["reason"], app["by"]) == (
        "app", None, "until done", "vigil maintenance")
    assert before <= app["since"] <= time.time()
    assert (disk["target"], disk["reason"], disk["by"]) == ("di*", "", "vigil maintenance")
    assert disk["until"] == pytest.approx(disk["since"] + 2)
    assert "app  until ended  by vigil maintenance  (until done)" in run_vigil(
        "maintenance", "list", "-c", str(config)).stdout

    d = daemon(config).start()
    d.wait_for("maintenance.started", target="app")
    d.wait_for("maintenance.ended", target="di*", why="expired", timeout=10)
    # Runs of app after the other window expired: it is still held.
    seen = len(d.events("check.result", check="app"))
    d.wait_for("check.result", check="app", count=seen + 2)
    assert saved_state(tmp_path / "state")["checks"]["app"]["state"] == "MAINTENANCE"
    assert [w["target"] for w in listed()["maintenance"]] == ["app"]
    assert not d.events("maintenance.ended", target="app")

    ended = run_vigil("maintenance", "end", "app", "-c", str(config))
    assert ended.returncode == 0, ended.stderr
    d.wait_for("maintenance.ended", target="app", why="ended")
    assert listed() == {"maintenance": [], "scheduled": []}
    assert d.stop() == 0


def metric_lines(port: int, name: str) -> dict[str, float]:
    """The samples of one metric family on the daemon's /metrics: labels -> value."""
    status, _, body = call(port, "/metrics", headers=AUTH)
    assert status == 200, body
    found = {}
    for line in body.decode().splitlines():
        if line.startswith(name + "{"):
            labels, _, value = line[len(name):].rpartition(" ")
            found[labels] = float(value)
    return found


def test_metrics_say_which_checks_are_under_maintenance(write_config, daemon,
                                                        tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PYTHONPATH", FIXTURES)
    config, port = served_config(write_config, tmp_path)
    d = daemon(config).start()
    d.wait_for("http.listening")
    wait_until(lambda: metric_lines(port, "vigil_check_maintenance") == {
        '{check="app"}': 0.0, '{check="disk"}': 0.0}, 10, "no check under maintenance")
    opened = run_vigil("maintenance", "start", "disk", "--for", "5m", "-c", str(config))
    assert opened.returncode == 0, opened.stderr
    d.wait_for("maintenance.started", target="disk")
    assert metric_lines(port, "vigil_check_maintenance") == {
        '{check="app"}': 0.0, '{check="disk"}': 1.0}
    states = metric_lines(port, "vigil_check_state")
    assert states['{check="disk",state="MAINTENANCE"}'] == 1.0
    assert states['{check="disk",state="OK"}'] == 0.0
    assert states['{check="app",state="MAINTENANCE"}'] == 0.0
    assert run_vigil("maintenance", "end", "disk", "-c", str(config)).returncode == 0
    d.wait_for("maintenance.ended", target="disk", why="ended")
    assert metric_lines(port, "vigil_check_maintenance")['{check="disk"}'] == 0.0
    assert d.stop() == 0


def test_a_window_is_mirrored_to_alertmanager_as_a_silence(write_config, daemon, receiver,
                                                          tmp_path: Path) -> None:
    """A check whose alert fires at a real Alertmanager goes under maintenance: vigil
    makes a silence there (its own, matching the check and this host), keeps the alert
    firing (never a resolution), and removes the silence when the window ends."""
    with alertmanager(tmp_path, receiver.url("/am")) as am:
        config = write_config(f"""
            [daemon]
            state_dir = "state"
            log_level = "debug"  # the keep-alive re-sends are debug lines
            [checks.db]
            type = "tcp"
            port = {free_port()}
            interval = "300ms"
            fall = 1
            [alerts.team]
            type = "alertmanager"
            url = "http://127.0.0.1:{am}"
            resend = "1s"
        """)
        d = daemon(config).start()
        wait_until(lambda: statuses(receiver.at("/am")) == ["firing"], 30, "the firing")
        opened = run_vigil("maintenance", "start", "db", "--until-end", "--reason",
                           "disk swap", "-c", str(config))
        assert opened.returncode == 0, opened.stderr
        d.wait_for("maintenance.started", target="db")
        wait_until(lambda: am_silences(am), 10, "the window's silence at Alertmanager")
        [made] = am_silences(am)
        assert made["createdBy"] == "vigil" and made["comment"] == "maintenance: disk swap"
        assert {m["name"]: m["value"] for m in made["matchers"]} == {
            "check": "db", "host": socket.gethostname()}
        # Open-ended: as far off as Alertmanager takes (ten years).
        ends = datetime.fromisoformat(made["endsAt"]).timestamp()
        assert ends > time.time() + 9 * 365 * 86400
        wait_until(lambda: [a["status"]["state"] for a in am_alerts(am)] == ["suppressed"], 10,
                   "the alert silenced at Alertmanager")
        assert am_alerts(am)[0]["status"]["silencedBy"] == [made["id"]]
        # Re-sent all along (Alertmanager would resolve it after 4 x resend otherwise):
        # nobody is told it recovered.
        sent = len(d.events("alert.sent", sink="team"))
        d.wait_for("alert.sent", count=sent + 8, sink="team", timeout=30)
        assert statuses(receiver.at("/am")) == ["firing"]
        assert [a["status"]["state"] for a in am_alerts(am)] == ["suppressed"]

        ended = run_vigil("maintenance", "end", "db", "-c", str(config))
        assert ended.returncode == 0, ended.stderr
        wait_until(lambda: [s["status"]["state"] for s in am_silences(am)] == ["expired"], 10,
                   "the window's silence removed at Alertmanager")
        wait_until(lambda: [a["status"]["state"] for a in am_alerts(am)] == ["active"], 10,
                   "the alert active again")
        assert statuses(receiver.at("/am")) == ["firing"]
        assert d.stop() == 0
