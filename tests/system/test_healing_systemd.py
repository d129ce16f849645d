"""Healing against a real systemd, booted privately for each test."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import psutil

from tests.helpers import (
    alertmanager,
    am_alerts,
    answers,
    free_port,
    listening,
    log_problems,
    output_problems,
    rerun_delay,
    run_vigil,
    saved_state,
    vigil_command,
    wait_until,
)
from tests.private_systemd import PrivateSystemd, unit

SERVER = f"{sys.executable} -m http.server {{port}} --bind 127.0.0.1"
CRASHER = f"{sys.executable} -c 'import sys; sys.exit(3)'"


def service_config(write_config, tmp_path: Path, services: dict[str, int],
                   depends: dict[str, str] | None = None, **service_keys: str) -> Path:
    extra = "".join(f"{k} = {v}\n" for k, v in service_keys.items())
    body = f'[daemon]\nstate_dir = "{tmp_path}/state"\n'
    for name, port in services.items():
        dep = f'depends_on = ["{depends[name]}"]\n' if depends and name in depends else ""
        body += (f'[services.{name}]\nmanager = "systemd"\nunit = "vigil-{name}.service"\n'
                 f"{dep}{extra}"
                 f'[checks.{name}]\ntype = "tcp"\nport = {port}\nservice = "{name}"\n'
                 'interval = "1s"\nfall = 2\nrise = 1\ntimeout = "1s"\n')
    return write_config(body)


def start_web_unit(systemd: PrivateSystemd) -> int:
    """vigil-web.service, an HTTP server on a free port, started and answering."""
    port = free_port()
    systemd.write_unit("vigil-web.service", unit(SERVER.format(port=port)))
    systemd.run("systemctl", "start", "vigil-web.service")
    wait_until(lambda: answers(port), 10, "the web unit listens")
    return port


def test_killed_service_is_restarted_and_answers_again(systemd: PrivateSystemd, write_config,
                                                        daemon, tmp_path, record_property):
    port = start_web_unit(systemd)
    d = daemon(service_config(write_config, tmp_path, {"web": port}),
               prefix=systemd.prefix()).start()
    d.wait_for("check.state_changed", check="web", to="OK")
    old_pid = systemd.main_pid("vigil-web.service")

    systemd.run("systemctl", "kill", "-s", "KILL", "--kill-whom=main", "vigil-web.service")
    killed = time.monotonic()
    wait_until(lambda: not answers(port), 5, "the killed unit stops answering")
    wait_until(lambda: answers(port), 15, "vigil brings the unit back")
    recovery = time.monotonic() - killed
    record_property("recovery_s", round(recovery, 3))
    print(f"recovery after SIGKILL: {recovery:.2f}s (interval 1s, fall 2)")

    started = d.wait_for("heal.started", service="web")[0]
    assert started["manager"] == "systemd" and started["action"] == "start"
    assert started["target"] == "systemd unit vigil-web.service"
    succeeded = d.wait_for("heal.succeeded", service="web")[0]
    assert succeeded["exit_code"] == 0 and "systemctl start vigil-web.service" in (
        succeeded["command"])
    assert systemd.main_pid("vigil-web.service") not in (0, old_pid)
    assert recovery < 5, f"recovery took {recovery:.2f}s"
    assert d.stop() == 0


def test_a_unit_that_runs_but_no_longer_answers_is_restarted(systemd: PrivateSystemd,
                                                              write_config, daemon, tmp_path):
    # A stopped process keeps its listening socket (the kernel still accepts TCP), so
    # an HTTP check is what sees it hang; systemd still calls the unit active.
    port = start_web_unit(systemd)
    config = write_config(f"""
        [daemon]
        state_dir = "{tmp_path}/state"
        [services.web]
        manager = "systemd"
        unit = "vigil-web.service"
        [checks.web]
        type = "http"
        url = "http://127.0.0.1:{port}/"
        service = "web"
        interval = "1s"
        timeout = "1s"
        fall = 2
    """)
    d = daemon(config, prefix=systemd.prefix()).start()
    d.wait_for("check.state_changed", check="web", to="OK")
    old_pid = systemd.main_pid("vigil-web.service")
    systemd.run("systemctl", "kill", "-s", "STOP", "--kill-whom=main", "vigil-web.service")
    started = d.wait_for("heal.started", service="web", timeout=20)[0]
    assert started["action"] == "restart"
    succeeded = d.wait_for("heal.succeeded", service="web", timeout=20)[0]
    assert succeeded["command"] == "systemctl restart vigil-web.service"
    assert systemd.main_pid("vigil-web.service") not in (0, old_pid)
    assert systemd.is_active("vigil-web.service") == "active"
    d.wait_for("check.state_changed", check="web", to="OK", **{"from": "FAILING"})
    assert d.stop() == 0


def test_crash_loop_respects_the_budget_then_resumes(systemd: PrivateSystemd, write_config,
                                                     daemon, tmp_path):
    port = free_port()
    systemd.write_unit("vigil-loop.service", unit(CRASHER))
    config = service_config(write_config, tmp_path, {"loop": port}, restarts="2",
                            within='"5m"', backoff='"200ms"', start_timeout='"2s"')
    d = daemon(config, prefix=systemd.prefix()).start()
    d.wait_for("heal.gave_up", service="loop", timeout=30)
    # Three more failing runs, each of which would have started a heal were the budget
    # not kept (the healer decides on each run before the next one begins).
    runs = len(d.events("check.result", check="loop"))
    d.wait_for("check.result", count=runs + 3, check="loop", timeout=15)
    assert len(d.events("heal.started", service="loop")) == 2
    failed = d.events("heal.failed", service="loop")
    assert len(failed) == 2
    # What systemd says of the unit (systemctl show) tells the operator why.
    assert failed[0]["service_state"]["Result"] == "exit-code"
    assert failed[0]["service_state"]["ActiveState"] == "failed"
    assert len(d.events("heal.gave_up", service="loop")) == 1
    status = json.loads(run_vigil("status", "--json", "-c", str(config)).stdout)
    assert status["services"]["loop"]["given_up"] is True

    # Healthy again (fixed and started by hand): healing resumes with a fresh budget.
    systemd.write_unit("vigil-loop.service", unit(SERVER.format(port=port)))
    systemd.run("systemctl", "start", "vigil-loop.service")
    d.wait_for("heal.resumed", service="loop", timeout=10)
    systemd.run("systemctl", "kill", "-s", "KILL", "--kill-whom=main", "vigil-loop.service")
    d.wait_for("heal.succeeded", service="loop", timeout=15)
    assert len(d.events("heal.started", service="loop")) == 3

    # Crash-looping again: a second give-up; then `vigil heal` resets the budget.
    systemd.write_unit("vigil-loop.service", unit(CRASHER))
    systemd.run("systemctl", "kill", "-s", "KILL", "--kill-whom=main", "vigil-loop.service")
    d.wait_for("heal.gave_up", count=2, service="loop", timeout=30)
    systemd.write_unit("vigil-loop.service", unit(SERVER.format(port=port)))
    done = run_vigil("heal", "loop", "-c", str(config))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "heal.started loop" in done.stdout and "heal.succeeded loop" in done.stdout
    assert d.events("heal.requested", service="loop")
    wait_until(lambda: answers(port), 5, "vigil heal started the fixed unit")
    d.stop()


def test_dependency_is_healed_first(systemd: PrivateSystemd, write_config, daemon, tmp_path):
    ports = {"app": free_port(), "db": free_port()}
    for name, port in ports.items():
        systemd.write_unit(f"vigil-{name}.service", unit(SERVER.format(port=port)))
    config = service_config(write_config, tmp_path, ports, depends={"app": "db"})
    d = daemon(config, prefix=systemd.prefix()).start()
    app = d.wait_for("heal.succeeded", service="app", timeout=20)[0]
    db = d.wait_for("heal.succeeded", service="db")[0]
    skipped = d.events("heal.skipped", service="app")
    assert skipped and skipped[0]["reason"] == "dependency db is failing"
    assert skipped[0]["dependency"] == "db"
    started = {e["service"]: datetime.fromisoformat(e["timestamp"])
               for e in d.events("heal.started")}
    assert started["db"] < started["app"]
    assert datetime.fromisoformat(db["timestamp"]) <= datetime.fromisoformat(app["timestamp"])
    assert all(answers(p) for p in ports.values())
    d.stop()


def test_vigil_installed_as_a_notify_unit_with_watchdog_and_reload(systemd: PrivateSystemd,
                                                                   write_config, tmp_path):
    log = tmp_path / "vigil.log"
    web, own = start_web_unit(systemd), free_port()
    # Thresholds out of reach, and no CPU (a saturated CPU is 100%, at any threshold):
    # "3 OK" must not depend on how busy or full this host is. The hardened unit heals a
    # systemd unit and a command service of its own.
    config = write_config(f'[daemon]\nstate_dir = "{tmp_path}/state"\nlog_file = "{log}"\n'
                          '[checks.sys]\ntype = "system"\ninterval = "1s"\n'
                          'cpu = false\nwarn_pct = 100\ncrit_pct = 100\n'
                          '[services.web]\nmanager = "systemd"\nunit = "vigil-web.service"\n'
                          f'[checks.web]\ntype = "tcp"\nport = {web}\nservice = "web"\n'
                          'interval = "1s"\nfall = 2\n'
                          f'[services.own]\nmanager = "command"\nstart = ["{sys.executable}", '
                          f'"-m", "http.server", "{own}", "--bind", "127.0.0.1"]\n'
                          f'[checks.own]\ntype = "tcp"\nport = {own}\nservice = "own"\n'
                          'interval = "1s"\nfall = 2\n')
    prefix = systemd.prefix()

    def vigil(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*prefix, *vigil_command(), *args], capture_output=True,
                              text=True, timeout=60)

    done = vigil("service", "install", "--system", "--watchdog", "3s", "-c", str(config))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "vigil is active under systemd (system)" in done.stdout
    unit_file = systemd.path("/etc/systemd/system/vigil.service").read_text()
    assert "Type=notify" in unit_file and "WatchdogSec=3s" in unit_file
    exec_start = next(line for line in unit_file.splitlines() if line.startswith("ExecStart="))
    interpreter = exec_start.split("=", 1)[1].split()[0]
    assert Path(interpreter).parent == Path(sys.executable).parent  # the venv's own python
    assert exec_start.endswith(f" -m vigil run -c {config}")
    again = vigil("service", "install", "--system", "--watchdog", "3s", "-c", str(config))
    assert again.returncode == 0 and "unchanged" in again.stdout

    show = systemd.run("systemctl", "show", "-p", "Type,ActiveState,SubState,StatusText",
                       "vigil.service").stdout
    assert "Type=notify" in show and "ActiveState=active" in show and "SubState=running" in show
    def healed(service: str) -> int:
        return sum(1 for line in log.read_text().splitlines()
                   if '"heal.succeeded"' in line and f'"service": "{service}"' in line)

    wait_until(lambda: healed("own") == 1, 30, "the command service started by its heal")
    wait_until(lambda: "StatusText=3 checks: 3 OK" in systemd.run(
        "systemctl", "show", "-p", "StatusText", "vigil.service").stdout, 20, "STATUS= sent")
    systemd.run("systemctl", "kill", "-s", "KILL", "--kill-whom=main", "vigil-web.service")
    wait_until(lambda: healed("web") == 1, 30, "the killed unit healed by the installed vigil")
    state = json.loads(vigil("status", "--json", "-c", str(config)).stdout)
    # Its PID is the namespace's own: killed from inside.
    systemd.run("kill", "-KILL", str(state["services"]["own"]["manager_state"]["pid"]))
    wait_until(lambda: healed("own") == 2, 30, "the killed command service healed")
    assert answers(web) and answers(own)
    status = vigil("service", "status", "--system", "-c", str(config))
    assert status.returncode == 0 and "state: active" in status.stdout

    systemd.run("systemctl", "reload", "vigil.service")
    wait_until(lambda: "config.reloaded" in log.read_text(), 10, "config.reloaded in the log")

    # A stopped (wedged) vigil sends no watchdog pings: systemd restarts it.
    first = systemd.main_pid("vigil.service")
    systemd.run("systemctl", "kill", "-s", "STOP", "--kill-whom=main", "vigil.service")
    wait_until(lambda: systemd.main_pid("vigil.service") not in (0, first), 40,
               "systemd's watchdog restarts the stopped vigil")
    wait_until(lambda: systemd.is_active("vigil.service") == "active", 20, "active again")
    journal = systemd.run("journalctl", "-u", "vigil.service", "--no-pager").stdout
    assert "Watchdog timeout" in journal

    # What the installed vigil wrote (its log_file, and its stderr in the journal): JSON
    # lines only, no traceback.
    assert not log_problems(log), log_problems(log)
    assert not unit_output_problems(systemd)
    removed = vigil("service", "uninstall", "--system", "-c", str(config))
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert not systemd.path("/etc/systemd/system/vigil.service").exists()
    assert systemd.is_active("vigil.service") == "inactive"
    listed = systemd.run("systemctl", "list-unit-files", "vigil.service", check=False).stdout
    assert "vigil.service" not in listed
    wants = systemd.path("/etc/systemd/system/multi-user.target.wants")
    assert not wants.exists() or not any(wants.iterdir())


def unit_output_problems(systemd: PrivateSystemd) -> list[str]:
    """What the installed vigil's own processes wrote to the journal that is not a JSON
    object, and tracebacks (systemd's own lines about the unit are left out)."""
    said = systemd.run("journalctl", "_SYSTEMD_UNIT=vigil.service", "-o", "cat",
                       "--no-pager").stdout
    return output_problems("the journal", said)


def test_vigil_logs_reads_the_journal_of_the_installed_unit(systemd: PrivateSystemd,
                                                            write_config, tmp_path):
    # sys must pass (it is filtered out of the warnings below) however busy the host.
    config = write_config(f'[daemon]\nstate_dir = "{tmp_path}/state"\nlog_file = "-"\n'
                          '[checks.sys]\ntype = "system"\ninterval = "1s"\n'
                          'cpu = false\nwarn_pct = 100\ncrit_pct = 100\n'
                          f'[checks.port]\ntype = "tcp"\nport = {free_port()}\ninterval = "1s"\n')

    def vigil(*args: str, within: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*systemd.prefix(), *within, *vigil_command(), *args,
                               "-c", str(config)], capture_output=True, text=True, timeout=60)

    before = vigil("logs", "--system")
    assert before.returncode == 1
    assert "no lines from vigil.service" in before.stderr and "--system" in before.stderr
    installed = vigil("service", "install", "--system")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    wait_until(lambda: '"check.result"' in vigil("logs", "--system", "--json").stdout, 20,
               "check results in the journal")

    raw = vigil("logs", "--system", "--json", "--check", "port", "-n", "200")
    records = [json.loads(line) for line in raw.stdout.splitlines()]
    assert records and {r["check"] for r in records} == {"port"}
    assert any(r["event"] == "check.result" and r["status"] == "CRIT" for r in records)
    warnings = vigil("logs", "--system", "--level", "warning", "-n", "200").stdout
    assert "[port] CRIT" in warnings and "[sys]" not in warnings

    # Following until SIGTERM (here from `timeout`): new lines stream, and the journalctl
    # behind them stops with vigil.
    followed = vigil("logs", "--system", "--json", "-f", "-n", "0", "--check", "sys",
                     within=("timeout", "5"))
    assert followed.returncode == 124, followed.stderr
    fresh = [json.loads(line) for line in followed.stdout.splitlines()]
    assert len(fresh) >= 2 and all(r["check"] == "sys" for r in fresh)
    assert not [p for p in psutil.process_iter(["cmdline"])
                if "--follow" in (p.info["cmdline"] or []) and "vigil.service" in (
                    p.info["cmdline"] or [])], "journalctl outlived vigil logs -f"
    assert not unit_output_problems(systemd), unit_output_problems(systemd)


def test_a_unit_that_fails_while_the_heal_waits_fails_the_heal_at_once(
        systemd: PrivateSystemd, write_config, daemon, tmp_path):
    # Active at once (Type=simple), failed a second later: before any check could pass.
    crash = f"{sys.executable} -c 'import sys, time; time.sleep(1); sys.exit(4)'"
    systemd.write_unit("vigil-late.service", unit(crash))
    config = service_config(write_config, tmp_path, {"late": free_port()}, restarts="1",
                            start_timeout='"30s"')
    d = daemon(config, prefix=systemd.prefix()).start()
    failed = d.wait_for("heal.failed", service="late", timeout=20)[0]
    assert failed["service_state"]["ActiveState"] == "failed"
    assert failed["service_state"]["Result"] == "exit-code"
    assert failed["elapsed_s"] < 2.5, f"noticed after {failed['elapsed_s']}s, not at once"


def test_a_killed_unit_is_rechecked_at_once_even_after_the_bus_drops(
        systemd: PrivateSystemd, write_config, daemon, tmp_path):
    # A 10s interval: only the watcher can explain a check run right after the death.
    port = start_web_unit(systemd)
    config = write_config(f"""
        [daemon]
        state_dir = "{tmp_path}/state"
        [services.web]
        manager = "systemd"
        unit = "vigil-web.service"
        backoff = "0s"
        [checks.web]
        type = "tcp"
        port = {port}
        service = "web"
        interval = "10s"
        fall = 2
    """)
    d = daemon(config, prefix=systemd.prefix()).start()
    d.wait_for("watch.connected", units=["vigil-web.service"])
    d.wait_for("check.state_changed", check="web", to="OK")

    for round_ in (1, 2):
        systemd.run("systemctl", "kill", "-s", "KILL", "--kill-whom=main", "vigil-web.service")
        exited = d.wait_for("service.exited", count=round_, service="web")[-1]
        assert exited["unit"] == "vigil-web.service" and exited["was"] == "active"
        assert exited["active_state"] == "failed" and exited["result"] == "signal"
        delay = rerun_delay(d, "web", exited)
        assert delay < 0.1, f"re-checked {delay:.3f}s after the death"
        d.wait_for("heal.succeeded", count=round_, service="web", timeout=15)
        wait_until(lambda: answers(port), 10, "the unit answers again")
        if round_ == 1:
            # systemd re-executes itself: every connection to it drops. The watcher
            # reconnects, subscribes again and reads the units' state back.
            systemd.run("systemctl", "daemon-reexec")
            lost = d.wait_for("watch.lost", timeout=10)[0]
            assert lost["socket"] == "/run/systemd/private"
            d.wait_for("watch.connected", count=2, timeout=10)

    # A death while the watcher is cut off (it waits a second before reconnecting) is
    # read back from the unit's state once it is connected again: the watcher, not the
    # check's 10s interval, reports it.
    systemd.run("systemctl", "daemon-reexec")
    systemd.run("systemctl", "kill", "-s", "KILL", "--kill-whom=main", "vigil-web.service")
    exited = d.wait_for("service.exited", count=3, service="web", timeout=8)[-1]
    assert exited["active_state"] == "failed"
    d.wait_for("heal.succeeded", count=3, service="web", timeout=15)
    assert d.stop() == 0


def test_a_user_unit_is_watched_over_the_user_managers_private_socket(
        systemd: PrivateSystemd, write_config, daemon, tmp_path) -> None:
    # A user manager of its own inside the private systemd, its runtime folder (and so its
    # private socket and units) on the namespace's /run, its HOME there too.
    runtime = "/run/user/0"
    systemd.run("mkdir", "-p", f"{runtime}/systemd/user", f"{runtime}/home")
    systemd.run("systemd-run", "--unit=vigil-user-manager", "-E", f"XDG_RUNTIME_DIR={runtime}",
                "-E", f"HOME={runtime}/home", "/lib/systemd/systemd", "--user")
    wait_until(lambda: systemd.path(f"{runtime}/systemd/private").exists(), 15,
               "the user manager's private socket")
    as_user = ["env", f"XDG_RUNTIME_DIR={runtime}"]
    port = free_port()
    systemd.path(f"{runtime}/systemd/user/vigil-uweb.service").write_text(
        f"[Service]\nExecStart={SERVER.format(port=port)}\nRestart=no\n")
    systemd.run(*as_user, "systemctl", "--user", "daemon-reload")
    systemd.run(*as_user, "systemctl", "--user", "start", "vigil-uweb.service")
    wait_until(lambda: answers(port), 10, "the user unit listens")
    config = write_config(f"""
        [daemon]
        state_dir = "{tmp_path}/state"
        http = ""
        [services.uweb]
        manager = "systemd"
        unit = "vigil-uweb.service"
        user = true
        [checks.uweb]
        type = "tcp"
        port = {port}
        service = "uweb"
        interval = "5s"
        fall = 2
        rise = 1
    """)
    d = daemon(config, prefix=[*systemd.prefix(), *as_user]).start()
    connected = d.wait_for("watch.connected")[0]
    assert connected["socket"] == f"{runtime}/systemd/private", connected
    d.wait_for("check.state_changed", check="uweb", to="OK")
    systemd.run(*as_user, "systemctl", "--user", "kill", "-s", "KILL", "vigil-uweb.service")
    exited = d.wait_for("service.exited", service="uweb")[0]
    assert exited["unit"] == "vigil-uweb.service"
    # Seen by the watcher, not found by the 5 s interval: healed within a few seconds.
    healed = d.wait_for("heal.succeeded", service="uweb", timeout=20)[0]
    assert "systemctl --user start vigil-uweb.service" in healed["command"], healed
    assert answers(port)
    assert d.stop() == 0


def test_a_unit_stopped_on_purpose_is_left_stopped_and_a_killed_one_healed(
        systemd: PrivateSystemd, write_config, daemon, tmp_path, receiver):
    port = start_web_unit(systemd)
    with contextlib.ExitStack() as stack:
        am = stack.enter_context(alertmanager(tmp_path, receiver.url("/am")))
        left_stopped(systemd, write_config, daemon, tmp_path, port, am)


def left_stopped(systemd: PrivateSystemd, write_config, daemon, tmp_path: Path, port: int,
                 am: int) -> None:
    # after_heal off: a FAILING check alerts at once, unless under maintenance. The
    # sentinel `beat` passes while the test listens on its port.
    sentinel, beat = free_port(), contextlib.ExitStack()
    beat.enter_context(listening(sentinel))
    config = write_config(f"""
        [daemon]
        state_dir = "{tmp_path}/state"
        [services.web]
        manager = "systemd"
        unit = "vigil-web.service"
        backoff = "0s"
        [checks.web]
        type = "tcp"
        port = {port}
        service = "web"
        interval = "1s"
        fall = 1
        [checks.beat]
        type = "tcp"
        port = {sentinel}
        interval = "300ms"
        fall = 1
        [alerts.am]
        type = "alertmanager"
        url = "http://127.0.0.1:{am}"
        after_heal = false
    """)
    d = daemon(config, prefix=systemd.prefix()).start()
    d.wait_for("watch.connected", units=["vigil-web.service"])
    d.wait_for("check.state_changed", check="web", to="OK")

    systemd.run("systemctl", "stop", "vigil-web.service")
    exited = d.wait_for("service.exited", service="web")[0]
    assert exited["deliberate"] is True and exited["result"] == "success", str(exited)
    held = d.wait_for("maintenance.started", target="web")[0]
    assert held["by"] == "a deliberate stop"
    d.wait_for("heal.skipped", service="web", reason="maintenance", timeout=10)
    wait_until(lambda: saved_state(tmp_path / "state")["checks"]["web"]["state"]
               == "MAINTENANCE", 10, "the check shown in MAINTENANCE")
    assert not d.events("heal.started") and not answers(port)
    # web is FAILING under maintenance (its heal was skipped). Then the sentinel fails:
    # its alert reaches Alertmanager after the alerter has judged web's failure, and
    # web's did not.
    beat.close()
    wait_until(lambda: any(a["labels"].get("check") == "beat" for a in am_alerts(am)), 20,
               "the sentinel's alert in Alertmanager")
    assert [e["check"] for e in d.events("alert.opened")] == ["beat"]
    assert [a["labels"]["check"] for a in am_alerts(am)] == ["beat"]

    systemd.run("systemctl", "start", "vigil-web.service")  # by someone: watched again
    d.wait_for("maintenance.ended", target="web", why="it runs again", timeout=15)
    # What the daemon sees now, not what the state database last held.
    now = json.loads(run_vigil("status", "--json", "-c", str(config)).stdout)
    assert now["source"] == "daemon" and now["checks"]["web"]["state"] != "MAINTENANCE", now
    wait_until(lambda: saved_state(tmp_path / "state")["services"]["web"]["watching"], 10,
               "the unit watched again")

    systemd.run("systemctl", "kill", "-s", "KILL", "--kill-whom=main", "vigil-web.service")
    killed = d.wait_for("service.exited", count=2, service="web")[-1]
    assert killed["deliberate"] is False and killed["result"] == "signal"
    d.wait_for("heal.succeeded", service="web", timeout=15)
    wait_until(lambda: answers(port), 10, "healed as before")

    # A window an operator opens: a kill under it is not healed, until it expires.
    opened = run_vigil("maintenance", "start", "web", "--for", "3s", "-c", str(config))
    assert opened.returncode == 0, opened.stderr
    d.wait_for("maintenance.started", target="web", by="vigil maintenance")
    systemd.run("systemctl", "kill", "-s", "KILL", "--kill-whom=main", "vigil-web.service")
    d.wait_for("heal.skipped", count=2, service="web", reason="maintenance", timeout=10)
    assert len(d.events("heal.succeeded", service="web")) == 1, "not healed under it"
    d.wait_for("maintenance.ended", target="web", why="expired", timeout=10)
    d.wait_for("heal.succeeded", count=2, service="web", timeout=15)
    assert d.stop() == 0


def test_respect_stops_false_heals_a_unit_stopped_on_purpose(
        systemd: PrivateSystemd, write_config, daemon, tmp_path):
    """`respect_stops = false`: a `systemctl stop` is heard as a stop (``deliberate``),
    and healed all the same, with no maintenance window."""
    port = start_web_unit(systemd)
    config = service_config(write_config, tmp_path, {"web": port}, backoff='"0s"',
                            respect_stops="false")
    d = daemon(config, prefix=systemd.prefix()).start()
    d.wait_for("watch.connected", units=["vigil-web.service"])
    d.wait_for("check.state_changed", check="web", to="OK")
    old_pid = systemd.main_pid("vigil-web.service")

    systemd.run("systemctl", "stop", "vigil-web.service")
    exited = d.wait_for("service.exited", service="web")[0]
    assert exited["deliberate"] is True and exited["result"] == "success", exited
    started = d.wait_for("heal.started", service="web", timeout=15)[0]
    assert started["action"] == "start"
    d.wait_for("heal.succeeded", service="web", timeout=15)
    wait_until(lambda: answers(port), 10, "the stopped unit started again")
    assert systemd.main_pid("vigil-web.service") not in (0, old_pid)
    assert not d.events("maintenance.started") and not d.events("heal.skipped")
    assert d.stop() == 0


#: Serves HTTP on argv[1] until the file argv[2] exists, then exits 0 by itself.
ENDS_BY_ITSELF = """\
import http.server, os, sys, threading, time
server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])),
                                http.server.SimpleHTTPRequestHandler)
threading.Thread(target=server.serve_forever, daemon=True).start()
while not os.path.exists(sys.argv[2]):
    time.sleep(0.05)
sys.exit(0)
"""


def test_a_unit_that_ends_by_itself_with_success_counts_as_stopped(
        systemd: PrivateSystemd, write_config, daemon, tmp_path):
    """A unit whose program exits 0 on its own leaves the active state with the result
    ``success``, as a `systemctl stop` does: left stopped, under maintenance, until it
    runs again; never healed meanwhile."""
    port, done = free_port(), tmp_path / "done"
    script = tmp_path / "ends.py"
    script.write_text(ENDS_BY_ITSELF)
    systemd.write_unit("vigil-job.service", unit(f"{sys.executable} {script} {port} {done}"))
    systemd.run("systemctl", "start", "vigil-job.service")
    wait_until(lambda: answers(port), 10, "the job listens")
    config = write_config(f"""
        [daemon]
        state_dir = "{tmp_path}/state"
        [services.job]
        manager = "systemd"
        unit = "vigil-job.service"
        backoff = "0s"
        [checks.job]
        type = "tcp"
        port = {port}
        service = "job"
        interval = "1s"
        fall = 1
    """)
    d = daemon(config, prefix=systemd.prefix()).start()
    d.wait_for("watch.connected", units=["vigil-job.service"])
    d.wait_for("check.state_changed", check="job", to="OK")

    done.touch()  # the program ends by itself, with exit code 0
    exited = d.wait_for("service.exited", service="job")[0]
    assert exited["deliberate"] is True and exited["result"] == "success", exited
    assert exited["active_state"] == "inactive"
    held = d.wait_for("maintenance.started", target="job")[0]
    assert held["by"] == "a deliberate stop"
    # The check fails now: the healer's decision is to leave it stopped.
    d.wait_for("heal.skipped", service="job", reason="maintenance", timeout=10)
    assert not d.events("heal.started") and systemd.is_active("vigil-job.service") == "inactive"

    done.unlink()
    systemd.run("systemctl", "start", "vigil-job.service")
    d.wait_for("maintenance.ended", target="job", why="it runs again", timeout=15)
    assert not d.events("heal.started")
    assert d.stop() == 0
