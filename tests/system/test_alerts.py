"""Alerts: a real Alertmanager routing to a local webhook receiver, and vigil's own
sinks, across heals, restarts, a receiver that is down and a daemon that is killed."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import (
    FIXTURES,
    Receiver,
    alertmanager,
    am_alerts,
    am_silences,
    call,
    event_time,
    free_port,
    listening,
    run_vigil,
    statuses,
    wait_until,
)


def tcp(name: str, port: int | None = None, **keys: Any) -> str:
    """A ``[checks.NAME]`` section: tcp on ``port`` (by default one nobody listens on),
    every 300 ms, FAILING at its first failure."""
    lines = [f"[checks.{name}]", 'type = "tcp"', f"port = {port or free_port()}",
             'interval = "300ms"', "fall = 1", *(f"{k} = {json.dumps(v)}" for k, v in keys.items())]
    return "\n".join(lines)


class Sentinel:
    """A check that passes until :meth:`trip` fails it: its alert, once delivered, shows
    that the alerts were looked at and sent after that moment, so anything sent twice
    before it would already be there. (Instead of a sleep, which proves nothing.)"""

    NAME = "zz_sentinel"

    def __init__(self) -> None:
        self.port = free_port()
        self._listener = listening(self.port)
        self._listener.__enter__()

    def toml(self) -> str:
        return tcp(self.NAME, self.port)

    def trip(self, arrived: Any, what: str) -> None:
        """Fail the check; wait until ``arrived()`` (its alert at the sink)."""
        self._listener.__exit__(None, None, None)
        wait_until(arrived, 20, f"the sentinel's alert, after {what}")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.__exit__(None, None, None)


@pytest.fixture
def sentinel() -> Iterator[Sentinel]:
    found = Sentinel()
    yield found
    found.close()


def test_alertmanager_gets_one_firing_alert_and_its_resolution_across_a_restart(
        write_config, daemon, receiver, tmp_path) -> None:
    port = free_port()
    with alertmanager(tmp_path, receiver.url("/am")) as am:
        config = write_config(f"""
            [daemon]
            state_dir = "state"
            {tcp('db', port, rise=1)}
            [alerts.team]
            type = "alertmanager"
            url = "http://127.0.0.1:{am}"
            labels = {{team = "core"}}
            [alerts.direct]
            type = "webhook"
            url = "{receiver.url('/direct')}"
            headers = {{Authorization = "Bearer s3cret-token"}}
        """)
        d = daemon(config).start()
        wait_until(lambda: receiver.at("/am"), 30, "Alertmanager to route the alert")
        wait_until(lambda: receiver.at("/direct"), 10, "the webhook sink's alert")
        routed = receiver.at("/am")[0]
        assert routed["version"] == "4" and routed["status"] == "firing"
        alert = routed["alerts"][0]
        assert alert["labels"] == {"alertname": "VigilCheckFailing", "check": "db",
                                   "host": socket.gethostname(), "severity": "critical",
                                   "reason": "failing", "team": "core"}
        assert f"127.0.0.1:{port}" in alert["annotations"]["summary"]
        # Alertmanager holds it firing for a few minutes more, in case vigil dies.
        with urllib.request.urlopen(f"http://127.0.0.1:{am}/api/v2/alerts", timeout=5) as got:
            held = json.load(got)[0]
        assert held["status"]["state"] == "active" and held["labels"]["team"] == "core"
        assert datetime.fromisoformat(held["endsAt"]).timestamp() > time.time() + 180
        assert "gave" not in held["annotations"].get("healing", "")
        direct = next(p for p in receiver.posts if p["path"] == "/direct")
        assert direct["headers"]["Authorization"] == "Bearer s3cret-token"
        assert direct["body"]["alerts"][0]["labels"] == {
            k: v for k, v in alert["labels"].items() if k != "team"}
        assert d.events("alert.sent", sink="direct", status="firing")

        assert d.stop() == 0
        again = daemon(config).start()
        again.wait_for("check.result", count=3, check="db")
        # A duplicate would be sent at the restart, before the resolution below: the
        # lists asserted at the end would show it.
        assert not again.events("alert.opened"), "the open alert was taken back, not reopened"

        with listening(port):
            wait_until(lambda: "resolved" in statuses(receiver.at("/am")), 30,
                       "Alertmanager to route the resolution")
            wait_until(lambda: "resolved" in statuses(receiver.at("/direct")), 10,
                       "the webhook sink's resolution")

            def listed() -> list[tuple[str, str]]:
                found = run_vigil("alerts", "--json", "-c", str(config)).stdout
                return [(a["sink"], a["status"]) for a in json.loads(found)["alerts"]]

            # Alertmanager's resolution is re-sent for a while; the webhook's is done.
            wait_until(lambda: listed() == [("team", "resolved")], 10, "vigil alerts")
        assert statuses(receiver.at("/direct")) == ["firing", "resolved"]
        assert statuses(receiver.at("/am")) == ["firing", "resolved"]
        resolved = receiver.at("/direct")[-1]["alerts"][0]
        assert resolved["endsAt"] > resolved["startsAt"]
        assert "s3cret-token" not in again.log.read_text() + d.log.read_text()


def test_a_flap_never_lets_the_old_episodes_resolution_resolve_the_new_one(
        write_config, daemon, receiver, tmp_path) -> None:
    port = free_port()
    with alertmanager(tmp_path, receiver.url("/am")) as am:
        config = write_config(f"""
            [daemon]
            state_dir = "state"
            log_level = "debug"  # the keep-alive re-sends are debug lines
            {tcp('db', port, rise=1)}
            [alerts.team]
            type = "alertmanager"
            url = "http://127.0.0.1:{am}"
            resend = "1s"
        """)
        d = daemon(config).start()
        wait_until(lambda: statuses(receiver.at("/am")) == ["firing"], 30, "the first firing")
        with listening(port):
            wait_until(lambda: statuses(receiver.at("/am")) == ["firing", "resolved"], 30,
                       "the first episode's resolution")
        # Fails again while the old resolution is still being re-sent (for 5 x resend).
        d.wait_for("alert.opened", count=2, check="db")
        wait_until(lambda: statuses(receiver.at("/am"))[-1:] == ["firing"], 30,
                   "the second episode's firing")
        sent = len(d.events("alert.sent", sink="team"))
        # The old resolution would have been re-sent every second for 5 s: watch
        # Alertmanager's view until the new episode was kept alive past that.
        seen = []
        deadline = time.monotonic() + 30
        while len(d.events("alert.sent", sink="team")) < sent + 8:
            assert time.monotonic() < deadline, "the keep-alive re-sends stopped"
            seen.append(tuple(a["status"]["state"] for a in am_alerts(am)))
            time.sleep(0.05)
        assert set(seen) == {("active",)}, "Alertmanager held the alert resolved meanwhile"
        assert statuses(receiver.at("/am")) == ["firing", "resolved", "firing"]
        assert [a["status"]["state"] for a in am_alerts(am)] == ["active"]
        listed = json.loads(run_vigil("alerts", "--json", "-c", str(config)).stdout)["alerts"]
        assert [(a["status"], a["pending"]) for a in listed] == [("firing", False)]


def test_a_long_silence_keeps_the_alert_firing_at_alertmanager_and_silences_it_there(
        write_config, daemon, receiver, tmp_path) -> None:
    with alertmanager(tmp_path, receiver.url("/am")) as am:
        config = write_config(f"""
            [daemon]
            state_dir = "state"
            log_level = "debug"  # the keep-alive re-sends are debug lines
            {tcp('db')}
            [alerts.team]
            type = "alertmanager"
            url = "http://127.0.0.1:{am}"
            resend = "1s"
        """)
        d = daemon(config).start()
        wait_until(lambda: statuses(receiver.at("/am")) == ["firing"], 30, "the firing")
        done = run_vigil("silence", "d*", "--for", "10m", "--reason", "disk swap",
                         "-c", str(config))
        assert done.returncode == 0, done.stderr
        d.wait_for("alert.silenced", pattern="d*")
        wait_until(lambda: am_silences(am), 10, "vigil's silence at Alertmanager")
        made = am_silences(am)[0]
        assert made["createdBy"] == "vigil" and made["comment"] == "disk swap"
        assert {m["name"]: m["value"] for m in made["matchers"]} == {
            "check": "d.*", "host": socket.gethostname()}
        sent = len(d.events("alert.sent", sink="team"))
        # Alertmanager would resolve an alert not re-sent for 4 x resend: wait three times
        # that, with the alert kept alive all along.
        d.wait_for("alert.sent", count=sent + 12, sink="team", timeout=40)
        assert statuses(receiver.at("/am")) == ["firing"], "nobody was told it recovered"
        held = am_alerts(am)
        assert [a["status"]["state"] for a in held] == ["suppressed"]
        assert held[0]["status"]["silencedBy"] == [made["id"]]
        assert run_vigil("silence", "d*", "--remove", "-c", str(config)).returncode == 0
        wait_until(lambda: [s["status"]["state"] for s in am_silences(am)] == ["expired"], 10,
                   "vigil's silence removed at Alertmanager")
        wait_until(lambda: [a["status"]["state"] for a in am_alerts(am)] == ["active"], 10,
                   "the alert active again")
        assert statuses(receiver.at("/am")) == ["firing"]


def test_a_silence_in_effect_at_start_is_logged_without_a_sink(write_config, daemon) -> None:
    config = write_config(f"""
        [daemon]
        state_dir = "state"
        {tcp('db')}
    """)
    assert run_vigil("silence", "db", "--for", "1h", "--reason", "upgrade",
                     "-c", str(config)).returncode == 0
    d = daemon(config).start()
    assert d.wait_for("alert.silenced", pattern="db")[0]["reason"] == "upgrade"
    assert run_vigil("silence", "db", "--remove", "-c", str(config)).returncode == 0
    assert d.wait_for("alert.unsilenced", pattern="db")[0]["why"] == "removed"


def recorder(path: Path) -> str:
    """A command sink's argv that appends its stdin and VIGIL_ALERT_* variables to a file."""
    script = (f"import json, os, sys; open({str(path)!r}, 'a').write(json.dumps("
              "{'stdin': json.load(sys.stdin), 'env': {k: v for k, v in os.environ.items() "
              "if k.startswith('VIGIL_ALERT_')}}) + '\\n')")
    return json.dumps([sys.executable, "-c", script])


def recorded(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_after_heal_a_healed_kill_sends_nothing_and_a_crash_loop_sends_one_alert(
        write_config, daemon, tmp_path, sentinel) -> None:
    steady, crashy = free_port(), free_port()
    sent = tmp_path / "sent.jsonl"
    serve = f'"{sys.executable}", "-m", "http.server", "{{port}}", "--bind", "127.0.0.1"'
    # Listens for a second, then dies: every heal works, none holds.
    dies = (f'"{sys.executable}", "-c", "import socket, sys, time; s = socket.socket(); '
            "s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(); time.sleep(1.5)\", "
            '"{port}"')
    config = write_config(f"""
        [daemon]
        state_dir = "state"
        [services.web]
        manager = "command"
        start = [{serve}]
        ports = [{steady}]
        [services.loop]
        manager = "command"
        start = [{dies}]
        ports = [{crashy}]
        restarts = 3
        backoff = "200ms"
        [services.broken]
        manager = "command"
        start = ["{sys.executable}", "-c", "import sys; sys.exit('no such database')"]
        {tcp('broken', service='broken')}
        {tcp('web', steady, service='web')}
        {tcp('loop', crashy, service='loop')}
        {sentinel.toml()}
        [alerts.page]
        type = "command"
        command = {recorder(sent)}
    """)
    d = daemon(config).start()
    d.wait_for("heal.succeeded", service="web", timeout=20)
    d.wait_for("check.state_changed", check="web", to="OK")
    pid = json.loads(run_vigil("status", "--json", "-c", str(config)).stdout)[
        "services"]["web"]["manager_state"]["pid"]
    os.kill(pid, signal.SIGKILL)
    d.wait_for("heal.succeeded", count=2, service="web", timeout=20)
    d.wait_for("heal.gave_up", service="loop", timeout=40)
    wait_until(lambda: len(recorded(sent)) == 2, 10, "the crash loop's alert")
    sentinel.trip(lambda: any(a["stdin"]["check"] == Sentinel.NAME for a in recorded(sent)),
                  "the crash loop's alert")
    alerts = {a["stdin"]["check"]: a for a in recorded(sent) if a["stdin"]["check"] != (
        Sentinel.NAME)}
    assert len(recorded(sent)) == 3 and set(alerts) == {"loop", "broken"}, recorded(sent)
    broken = alerts["broken"]["stdin"]
    assert broken["reason"] == "heal_failed" and len(broken["attempts"]) == 1
    assert broken["healing"].startswith("heal 1 of 3 failed at ")
    assert "no such database" in broken["healing"], broken["healing"]
    alert = alerts["loop"]
    assert alert["stdin"]["reason"] == "gave_up" and len(alert["stdin"]["attempts"]) == 3
    assert alert["env"]["VIGIL_ALERT_STATUS"] == "firing"
    assert alert["env"]["VIGIL_ALERT_ATTEMPTS"] == "3"
    assert alert["env"]["VIGIL_ALERT_SERVICE"] == "loop"
    assert "gave up after 3 heals within 10m" in alert["env"]["VIGIL_ALERT_HEALING"]
    assert not d.events("alert.opened", check="web")


def test_a_resolved_alert_says_how_long_it_was_open_not_how_long_healing_took(
        write_config, daemon, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PYTHONPATH", FIXTURES)
    # The alert opens only when the heal has failed, two seconds into the failure; it
    # resolves at once after: open for a moment, failing for longer.
    never = tmp_path / "never"
    never.write_text("CRIT")
    d = daemon(write_config(f"""
        [daemon]
        state_dir = "state"
        plugins = ["misbehaving"]
        [services.svc]
        manager = "flag"
        status_file = "{tmp_path / 'elsewhere'}"
        start_timeout = "2s"
        [checks.guard]
        type = "fixed"
        status_file = "{never}"
        service = "svc"
        interval = "200ms"
        fall = 1
        [alerts.page]
        type = "command"
        command = ["true"]
    """)).start()
    opened = d.wait_for("alert.opened", check="guard", timeout=20)[0]
    never.write_text("OK")
    resolved = d.wait_for("alert.resolved", check="guard")[0]
    open_for = event_time(resolved) - event_time(opened)
    assert resolved["lasted_s"] <= round(open_for, 1) + 0.1, (resolved, open_for)
    assert resolved["failing_s"] >= resolved["lasted_s"] + 1.9, resolved


def test_a_receiver_down_for_10s_gets_the_alert_once_and_a_killed_daemon_delivers_it(
        write_config, daemon, tmp_path) -> None:
    hook = Receiver()
    port, other = free_port(), free_port()
    first, second = Sentinel(), Sentinel()
    config = write_config(f"""
        [daemon]
        state_dir = "state"
        {tcp('db', port)}
        {tcp('cache', other)}
        {tcp('zz_first', first.port)}
        {tcp('zz_second', second.port)}
        [alerts.hook]
        type = "webhook"
        url = "{hook.url('/')}"
    """)
    every = lambda: [a["labels"]["check"] for b in hook.at("/") for a in b["alerts"]]  # noqa: E731
    checks = lambda: [c for c in every() if not c.startswith("zz_")]  # noqa: E731
    with listening(other):
        d = daemon(config).start()
        failed = d.wait_for("alert.failed", sink="hook", timeout=15)[0]
        assert "cannot reach the sink" in failed["error"]
        assert "Connection refused" in failed["error"]
        time.sleep(10)
        hook.start()
        try:
            wait_until(lambda: hook.posts, 40, "the alert, once the receiver is up")
            first.trip(lambda: "zz_first" in every(), "db's alert")
            assert checks() == ["db"] and statuses(hook.at("/")) == ["firing", "firing"]
            listed = run_vigil("alerts", "-c", str(config)).stdout
            assert "hook  db  FIRING" in listed and "delivered" in listed, listed
            hook.stop()
        except BaseException:
            hook.stop()
            raise
    # cache fails while the receiver is down; its alert is queued, then the daemon dies.
    d.wait_for("alert.failed", sink="hook", check="cache", timeout=15)
    queued = json.loads(run_vigil("alerts", "--json", "-c", str(config)).stdout)["alerts"]
    assert [(a["check"], a["pending"]) for a in queued if not a["check"].startswith("zz_")
            ] == [("cache", True), ("db", False)]
    d.kill()
    hook.start()
    try:
        again = daemon(config).start()
        wait_until(lambda: checks() == ["db", "cache"], 40, "the queued alert after a restart")
        again.wait_for("alert.sent", sink="hook", check="cache")
        second.trip(lambda: "zz_second" in every(), "the restart")
        assert checks() == ["db", "cache"], "each alert arrived once"
    finally:
        hook.stop()
        first.close()
        second.close()


def test_a_silence_holds_alerts_back_until_removed_and_reminders_follow_repeat(
        write_config, daemon, receiver, sentinel) -> None:
    config = write_config(f"""
        [daemon]
        state_dir = "state"
        {tcp('db')}
        {sentinel.toml()}
        [alerts.hook]
        type = "webhook"
        url = "{receiver.url('/')}"
        repeat = "1s"
    """)
    typo = run_vigil("silence", "dbx", "-c", str(config))
    assert typo.returncode == 1
    assert "no check matches 'dbx' (checks: db, zz_sentinel)" in typo.stderr, typo.stderr
    done = run_vigil("silence", "d*", "--for", "1h", "--reason", "disk swap", "-c", str(config))
    assert done.returncode == 0, done.stderr
    assert "silenced for 1h" in done.stdout and "the daemon when it starts" in done.stdout
    d = daemon(config).start()
    assert d.wait_for("alert.silenced", pattern="d*")[0]["reason"] == "disk swap"
    assert d.wait_for("alert.opened", check="db")[0]["silenced"] is True
    sentinel.trip(lambda: receiver.posts, "db's silenced alert")
    assert [a["labels"]["check"] for p in receiver.posts for a in p["body"]["alerts"]] == [
        Sentinel.NAME], "a silenced check's alert waits"
    listed = run_vigil("alerts", "-c", str(config)).stdout
    assert "hook  db  FIRING" in listed and "silenced" in listed, listed
    assert "silenced: d* until" in listed and "(disk swap)" in listed, listed

    removed = run_vigil("silence", "d*", "--remove", "-c", str(config))
    assert removed.returncode == 0 and "the running daemon sends" in removed.stdout
    assert d.wait_for("alert.unsilenced", pattern="d*")[0]["why"] == "removed"
    wait_until(lambda: len([p for p in receiver.posts if p["body"]["alerts"][0]["labels"][
        "check"] == "db"]) >= 3, 10, "the alert, then reminders each second")
    # Logged once the sink answered, which is after the receiver saw it.
    reminders = [e["reminder"] for e in d.wait_for("alert.sent", count=3, check="db")]
    assert reminders[:3] == [0, 1, 2], reminders
    assert statuses(receiver.at("/")).count("resolved") == 0
    again = run_vigil("silence", "d*", "--remove", "-c", str(config))
    assert again.returncode == 1 and "no silence for 'd*'" in again.stderr
    brief = run_vigil("silence", "db", "--for", "1s", "-c", str(config))
    assert "the running daemon holds back" in brief.stdout
    assert d.wait_for("alert.unsilenced", pattern="db")[0]["why"] == "expired"


def test_a_failing_dependency_alerts_for_itself_alone_and_max_open_drops_the_rest(
        write_config, daemon, receiver, sentinel) -> None:
    db, app = free_port(), free_port()
    config = write_config(f"""
        [daemon]
        state_dir = "state"
        [services.db]
        manager = "command"
        start = ["true"]
        heal = false
        [services.app]
        manager = "command"
        start = ["true"]
        heal = false
        depends_on = ["db"]
        {tcp('db', db, service='db', rise=1)}
        {tcp('app', app, service='app')}
        {tcp('x1')}
        {tcp('x2')}
        [services.sen]
        manager = "command"
        start = ["true"]
        heal = false
        {sentinel.toml()}
        service = "sen"
        [alerts.page]
        type = "webhook"
        url = "{receiver.url('/page')}"
        services = ["db", "app", "sen"]
        [alerts.few]
        type = "webhook"
        url = "{receiver.url('/few')}"
        checks = ["x*"]
        max_open = 1
    """)
    checks = lambda: [a["labels"]["check"] for b in receiver.at("/page")  # noqa: E731
                      for a in b["alerts"] if a["status"] == "firing"]
    d = daemon(config).start()
    wait_until(checks, 10, "the dependency's alert")
    dropped = d.wait_for("alert.dropped", sink="few")[0]
    assert dropped["dropped"] >= 1 and "max_open" in dropped["reason"]
    sentinel.trip(lambda: Sentinel.NAME in checks(), "db's alert")
    assert checks() == ["db", Sentinel.NAME], "no alert while the dependency fails"
    assert len(receiver.at("/few")) == 1
    assert receiver.at("/page")[0]["alerts"][0]["annotations"]["healing"] == \
        "not healed: the service is report-only (heal = false)"
    with listening(db):
        wait_until(lambda: checks() == ["db", Sentinel.NAME, "app"], 10,
                   "app's own alert, once db is back")
        # db's resolution may come after app's alert: the outbox sends oldest incident first.
        wait_until(lambda: "resolved" in statuses(receiver.at("/page")), 10, "db resolved")


def test_chat_sinks_speak_their_formats_and_a_failing_command_is_retried(
        write_config, daemon, receiver, tmp_path) -> None:
    fails = json.dumps([sys.executable, "-c", "import sys; sys.exit('no pager here')"])
    hangs = json.dumps([sys.executable, "-c", "import time; time.sleep(30)"])
    port = free_port()
    config = write_config(f"""
        [daemon]
        state_dir = "state"
        http = "127.0.0.1:{port}"
        {tcp('db')}
        [alerts.stuck]
        type = "command"
        command = {hangs}
        timeout = "3s"
        [alerts.phone]
        type = "ntfy"
        url = "{receiver.url('/vigil-topic')}"
        token = "tk_s3cret"
        [alerts.chat]
        type = "slack"
        url = "{receiver.url('/services/T0/B0/s3cretpath')}"
        [alerts.pager]
        type = "command"
        command = {fails}
    """)
    d = daemon(config).start()
    wait_until(lambda: len(receiver.posts) == 2, 10, "the ntfy and slack messages")
    phone = next(p for p in receiver.posts if p["path"] == "/vigil-topic")
    assert phone["headers"]["Title"] == f"[FIRING] db on {socket.gethostname()}"
    assert phone["headers"]["Priority"] == "high"
    assert phone["headers"]["Authorization"] == "Bearer tk_s3cret"
    assert "connection refused" in phone["body"]
    chat = receiver.at("/services/T0/B0/s3cretpath")[0]
    assert chat["text"].startswith(":rotating_light:\n```\n[FIRING] db on ")
    # A sink that hangs (the first in the file) holds up only itself: the others were
    # delivered before its 3 s timeout killed its command (behind it, they would follow).
    stuck = d.wait_for("alert.failed", sink="stuck")[0]
    assert stuck["error"] == "still running after 3s: killed"
    sent = [event_time(e) for e in d.events("alert.sent") if e["sink"] in ("phone", "chat")]
    assert len(sent) == 2 and max(sent) < event_time(stuck)
    failed = d.wait_for("alert.failed", count=2, sink="pager")
    assert failed[0]["error"] == "exit code 1: no pager here"
    assert [f["attempts"] for f in failed] == [1, 2]
    assert failed[1]["retry_in_s"] > failed[0]["retry_in_s"], "the retries back off"
    log = d.log.read_text()
    assert "tk_s3cret" not in log and "s3cretpath" not in log
    status, _, raw = call(port, "/api/v1/alerts")
    listed = json.loads(raw)
    assert status == 200 and sorted(a["sink"] for a in listed["alerts"]) == [
        "chat", "pager", "phone", "stuck"]
    pager = next(a for a in listed["alerts"] if a["sink"] == "pager")
    assert pager["pending"] and pager["error"] == "exit code 1: no pager here"
    _, _, raw = call(port, "/metrics")
    metrics = raw.decode()
    assert 'vigil_alert_sink_up{sink="pager"} 0.0' in metrics
    assert 'vigil_alert_sink_up{sink="phone"} 1.0' in metrics
    assert 'vigil_alerts_open{sink="chat"} 1.0' in metrics
    assert 'vigil_alert_deliveries_total{result="sent",sink="phone"} 1.0' in metrics
    assert 'vigil_alert_deliveries_total{result="failed",sink="pager"}' in metrics


def test_a_reload_without_a_sink_drops_its_alerts_and_vigil_alerts_needs_a_database(
        write_config, daemon, receiver) -> None:
    body = f"""
        [daemon]
        state_dir = "state"
        {tcp('db')}
        [alerts.hook]
        type = "webhook"
        url = "{receiver.url('/')}"
    """
    config = write_config(body)
    none = run_vigil("alerts", "-c", str(config))
    assert none.returncode == 3 and "no state database in" in none.stderr
    d = daemon(config).start()
    d.wait_for("alert.sent", sink="hook")
    write_config(body.split("[alerts.hook]")[0])
    d.signal(signal.SIGHUP)
    dropped = d.wait_for("alert.dropped", sink="hook")[0]
    assert dropped["dropped"] == 1 and "[alerts.hook] section is gone" in dropped["reason"]
    assert run_vigil("alerts", "-c", str(config)).stdout == "no open alerts\n"
