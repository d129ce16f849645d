"""Service managers: ``command`` against real processes; launchd and brew, which cannot
run on Linux, through stand-in programs that record their exact argv; the generated
unit checked by systemd-analyze and the plist by plistutil."""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import plistlib
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from tests.helpers import (
    FIXTURES,
    answers,
    call,
    event_time,
    free_port,
    need_program,
    rerun_delay,
    saved_pid,
    saved_state,
    wait_until,
)
from vigil._api.manager import ServiceManager
from vigil._config import loader as config
from vigil.service._install import LABEL, LaunchdInstaller, SystemdInstaller
from vigil.service.command import Command

STUBBORN = """\
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)"])
open(sys.argv[1], "w").write(str(child.pid))
print("stubborn up", flush=True)
time.sleep(300)
"""


@pytest.fixture
def manager() -> Iterator[Callable[..., ServiceManager]]:
    """Build a service manager from a ``[services.NAME]`` body; whatever a command
    manager started is killed afterwards, so a failing test leaks no process group."""
    built: list[ServiceManager] = []

    def build(body: str, tmp_path: Path, name: str = "svc") -> ServiceManager:
        path = tmp_path / "c.toml"
        path.write_text(f'[daemon]\nstate_dir = "state"\n[services.{name}]\n' + body)
        made = config.load(str(path)).services[name].make_manager()
        made.state_dir = tmp_path
        built.append(made)
        return made

    yield build
    for made in built:
        if pgid := made.state.get("pgid"):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


# -- command -------------------------------------------------------------------------


def test_command_manager_stops_a_group_that_ignores_sigterm(tmp_path: Path, manager) -> None:
    script = tmp_path / "stubborn.py"
    script.write_text(STUBBORN)
    child_file = tmp_path / "child.pid"
    m = manager(f'manager = "command"\nstart = ["{sys.executable}", "{script}", '
                f'"{child_file}"]\nstop_grace = "500ms"\n', tmp_path)
    assert m.is_running() is False
    started = m.start()
    assert started.ok and m.is_running() is True
    pid = m.state["pid"]
    assert os.getpgid(pid) == pid, "the service runs in a process group of its own"
    deadline = time.monotonic() + 5
    while not child_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    grandchild = int(child_file.read_text())
    assert "stubborn up" in (tmp_path / "svc.out").read_text()

    began = time.monotonic()
    stopped = m.stop()
    assert stopped.ok and "sent KILL" in stopped.output
    assert 0.4 < time.monotonic() - began < 5
    assert gone(pid) and gone(grandchild)
    assert m.is_running() is False


def test_command_manager_restart_and_recycled_pid(tmp_path: Path, manager) -> None:
    m = manager(f'manager = "command"\nstart = ["{sys.executable}", "-c", '
                '"import time; time.sleep(300)"]\n', tmp_path)
    m.start()
    first = m.state["pid"]
    restarted = m.restart()
    assert restarted.ok and m.state["pid"] != first and gone(first)
    # The remembered PID now names a process started at another time: not ours.
    m.state["create_time"] -= 1000
    assert isinstance(m, Command)
    m._child = None
    assert m.is_running() is False
    m.state["create_time"] += 1000
    m.stop()


def test_command_manager_starter_that_daemonizes_and_one_that_fails(tmp_path: Path,
                                                                   manager) -> None:
    m = manager('manager = "command"\nstart = ["true"]\n', tmp_path)
    assert m.start().ok and m.state["detached"] is True
    assert m.is_running() is None  # only the check can tell now
    failing = manager(f'manager = "command"\nstart = ["{sys.executable}", "-c", '
                      '"import sys; print(\'no data folder\'); sys.exit(4)"]\n', tmp_path)
    action = failing.start()
    assert not action.ok and action.returncode == 4 and "no data folder" in action.output
    missing = manager('manager = "command"\nstart = ["/nonexistent/pg_ctl"]\n', tmp_path)
    assert missing.start().returncode == 127


def test_command_manager_with_stop_command(tmp_path: Path, manager) -> None:
    pidfile = tmp_path / "svc.pid"
    start = (f'start = ["{sys.executable}", "-c", "import os, time; '
             f"open('{pidfile}', 'w').write(str(os.getpid())); time.sleep(300)\"]\n")
    stop = (f'stop = ["{sys.executable}", "-c", "import os; '
            f"os.kill(int(open('{pidfile}').read()), 15)\"]\n")
    m = manager('manager = "command"\n' + start + stop, tmp_path)
    m.start()
    pid = m.state["pid"]
    action = m.stop()
    assert action.ok and action.argv[0] == sys.executable and gone(pid)

    # A stop command that does not stop it: KILL once start_timeout has passed.
    flag = tmp_path / "touched"
    m = manager('manager = "command"\nstart_timeout = "1s"\n' + start +
                f'stop = ["touch", "{flag}"]\n', tmp_path)
    m.start()
    pid = m.state["pid"]
    action = m.stop()
    assert action.argv == ["touch", str(flag)] and flag.exists() and gone(pid)


@pytest.mark.parametrize("watch", [True, False])
def test_daemon_heals_a_command_service(write_config, daemon, tmp_path: Path,
                                        watch: bool) -> None:
    port = free_port()
    d = daemon(write_config(f"""
        [daemon]
        state_dir = "state"
        [services.web]
        manager = "command"
        start = ["{sys.executable}", "-m", "http.server", "{port}", "--bind", "127.0.0.1"]
        watch = {str(watch).lower()}
        [checks.web]
        type = "tcp"
        port = {port}
        service = "web"
        interval = "{'5s' if watch else '500ms'}"
        fall = 2
    """)).start()
    first = d.wait_for("heal.succeeded", service="web", timeout=15)[0]
    assert first["action"] == "start" and first["manager"] == "command"
    pid = saved_pid(tmp_path / "state", "web")
    os.kill(pid, signal.SIGKILL)
    if watch:
        # Its own process, watched by pidfd: the death is seen at once, and the check
        # re-runs then, not at its 5s interval.
        exited = d.wait_for("service.exited", service="web", timeout=5)[0]
        assert exited["pid"] == pid and exited["exit_code"] == -signal.SIGKILL
        assert rerun_delay(d, "web", exited) < 0.5
    second = d.wait_for("heal.succeeded", count=2, service="web", timeout=15)[1]
    assert second["recovery_s"] < 5
    assert bool(d.events("service.exited")) is watch
    d.stop()
    # The service outlives the daemon: vigil heals, it does not supervise.
    state = saved_state(tmp_path / "state")
    survivor = state["services"]["web"]["manager_state"]["pid"]
    assert state["services"]["web"]["watching"] is watch
    assert not gone(survivor)  # the daemon fixture reaps it


def test_a_heal_that_worked_carries_a_short_tail_of_the_output(write_config, daemon) -> None:
    # A service that talks a lot as it starts (an access log, a banner): a heal that
    # worked says its last words, not kilobytes of them.
    port = free_port()
    chatter = ("import http.server, sys\n"
               "for n in range(200): print(f'request {n} served', flush=True)\n"
               "print('ready at last', flush=True)\n"
               f"http.server.test(http.server.SimpleHTTPRequestHandler, port={port}, "
               "bind='127.0.0.1')\n")
    d = daemon(write_config(f"""
        [daemon]
        state_dir = "state"
        [services.web]
        manager = "command"
        start = ["{sys.executable}", "-c", {json.dumps(chatter)}]
        [checks.web]
        type = "tcp"
        port = {port}
        service = "web"
        interval = "500ms"
        fall = 1
    """)).start()
    succeeded = d.wait_for("heal.succeeded", service="web", timeout=15)[0]
    assert "ready at last" in succeeded["output"], succeeded
    assert len(succeeded["output"]) <= 300 and "request 0 served" not in succeeded["output"]


def test_a_start_that_exits_fails_the_heal_at_once_with_its_output(write_config, daemon,
                                                                   tmp_path: Path) -> None:
    # Runs a second (long past the starter's settle time), says why and exits 2.
    crash = "import sys, time; time.sleep(1); print('--port: missing value'); sys.exit(2)"
    d = daemon(write_config(f"""
        [daemon]
        state_dir = "state"
        [services.web]
        manager = "command"
        start = ["{sys.executable}", "-c", "{crash}"]
        start_timeout = "30s"
        restarts = 1
        [checks.web]
        type = "tcp"
        port = {free_port()}
        service = "web"
        interval = "500ms"
        fall = 1
    """)).start()
    failed = d.wait_for("heal.failed", service="web", timeout=15)[0]
    assert failed["exit_code"] == 2 and "--port: missing value" in failed["output"]
    assert failed["elapsed_s"] < 2, f"noticed after {failed['elapsed_s']}s, not at once"
    assert "before any check passed" in failed["reason"]


# -- launchd and brew: stand-ins that record argv --------------------------------------

FAKE = """\
#!{python}
import json, os, sys
with open(os.environ["FAKE_LOG"], "a") as f:
    f.write(json.dumps([os.path.basename(sys.argv[0]), *sys.argv[1:]]) + "\\n")
# launchd's job table, as one file: present while the job is loaded.
loaded = os.path.exists(os.environ["FAKE_STATE"])
if sys.argv[1:2] == ["print"]:
    print("state = running" if loaded else "Could not find service")
    sys.exit(0 if loaded else 113)
if sys.argv[1:2] == ["bootstrap"]:
    open(os.environ["FAKE_STATE"], "w").close()
if sys.argv[1:2] == ["bootout"]:
    os.remove(os.environ["FAKE_STATE"])
if sys.argv[1:2] == ["show-user"]:
    print("no")
if sys.argv[1:3] == ["services", "info"]:
    print(json.dumps([{{"name": sys.argv[3], "running": True}}]))
"""


@pytest.fixture
def fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("launchctl", "brew", "loginctl"):
        path = bin_dir / name
        path.write_text(FAKE.format(python=sys.executable))
        path.chmod(0o755)
    log = tmp_path / "argv.log"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_LOG", str(log))
    monkeypatch.setenv("FAKE_STATE", str(tmp_path / "launchd-loaded"))
    return log


def load_job(tmp_path: Path) -> None:
    (tmp_path / "launchd-loaded").touch()


def recorded(log: Path) -> list[list[str]]:
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    log.unlink(missing_ok=True)
    return calls


def test_launchd_manager_uses_the_modern_verbs(fakes: Path, tmp_path: Path, monkeypatch,
                                               manager) -> None:
    m = manager('manager = "launchd"\nlabel = "homebrew.mxcl.postgresql@14"\n'
                'plist = "/Users/me/Library/LaunchAgents/homebrew.mxcl.postgresql@14.plist"\n',
                tmp_path)
    target = f"gui/{os.getuid()}/homebrew.mxcl.postgresql@14"
    assert m.start().ok
    assert recorded(fakes) == [
        ["launchctl", "print", target],
        ["launchctl", "bootstrap", f"gui/{os.getuid()}",
         "/Users/me/Library/LaunchAgents/homebrew.mxcl.postgresql@14.plist"],
        ["launchctl", "kickstart", target],
    ]
    assert m.is_running() is True
    recorded(fakes)
    assert m.restart().ok
    assert recorded(fakes) == [["launchctl", "print", target],
                               ["launchctl", "kickstart", "-k", target]]
    assert m.stop().ok
    assert recorded(fakes) == [["launchctl", "bootout", target]]
    assert m.is_running() is False
    assert m.describe() == f"launchd job {target}"


def test_brew_manager_argv(fakes: Path, tmp_path: Path, manager) -> None:
    m = manager('manager = "brew"\nformula = "postgresql@14"\n', tmp_path)
    m.start()
    m.restart()
    m.stop()
    assert m.is_running() is True
    assert recorded(fakes) == [
        ["brew", "services", "start", "postgresql@14"],
        ["brew", "services", "restart", "postgresql@14"],
        ["brew", "services", "stop", "postgresql@14"],
        ["brew", "services", "info", "postgresql@14", "--json"],
    ]


def test_launch_agent_install_plist_and_uninstall(fakes: Path, tmp_path: Path,
                                                  monkeypatch) -> None:
    plistutil = need_program("plistutil", "libplist-utils")
    home = tmp_path / "home"
    installer = LaunchdInstaller(True, "/Users/me/vigil/config.toml",
                                 python="/Users/me/.venv/bin/python3", home=home)
    report = installer.install()
    assert report.ok, report.lines
    plist = home / "Library" / "LaunchAgents" / f"{LABEL}.plist"
    domain = f"gui/{os.getuid()}"
    assert recorded(fakes) == [["launchctl", "print", f"{domain}/{LABEL}"],
                               ["launchctl", "bootstrap", domain, str(plist)]]
    converted = subprocess.run([plistutil, "-i", str(plist), "-o", str(tmp_path / "x.bin")],
                               capture_output=True, text=True, timeout=30)
    assert converted.returncode == 0, converted.stderr
    data = plistlib.loads((tmp_path / "x.bin").read_bytes())  # plistutil's binary form
    assert data["Label"] == LABEL
    assert data["ProgramArguments"] == ["/Users/me/.venv/bin/python3", "-m", "vigil", "run",
                                        "-c", "/Users/me/vigil/config.toml"]
    assert data["RunAtLoad"] is True and data["KeepAlive"] is True
    assert data["ThrottleInterval"] == 10
    assert data["StandardOutPath"] == str(home / "Library/Logs/vigil/vigil.log")
    assert data["StandardErrorPath"] == str(home / "Library/Logs/vigil/vigil.err.log")

    again = installer.install()
    assert again.ok and recorded(fakes) == [["launchctl", "print", f"{domain}/{LABEL}"]]
    assert installer.status().ok
    recorded(fakes)
    assert installer.uninstall().ok
    assert recorded(fakes) == [["launchctl", "print", f"{domain}/{LABEL}"],
                               ["launchctl", "bootout", f"{domain}/{LABEL}"]]
    assert not plist.exists()


# -- the generated systemd unit ---------------------------------------------------------


@pytest.mark.parametrize("user", [False, True], ids=["system", "user"])
def test_generated_unit_passes_systemd_analyze_verify(tmp_path: Path, user: bool,
                                                      monkeypatch) -> None:
    analyze = need_program("systemd-analyze", "systemd")
    config_file = tmp_path / "my config.toml"  # a space, to prove the quoting
    config_file.write_text('[checks.s]\ntype = "system"\n')
    installer = SystemdInstaller(user, str(config_file), unit_dir=tmp_path / "units")
    unit = installer.render()
    path = tmp_path / "vigil.service"
    path.write_text(unit)
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime)}
    done = subprocess.run([analyze, "verify", *(["--user"] if user else []), str(path)],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0 and done.stderr.strip() == "", done.stderr
    for line in ("Type=notify", "WatchdogSec=30s", "Restart=on-failure", "RestartSec=2s",
                 "ExecReload=/bin/kill -HUP $MAINPID", "NoNewPrivileges=yes"):
        assert line in unit
    unit_section = unit.split("[Service]")[0]
    assert "StartLimitIntervalSec=" in unit_section and "StartLimitBurst=" in unit_section
    assert f'-c "{config_file}"' in unit
    assert ("ProtectSystem=full" in unit) is not user
    assert textwrap.dedent(unit).rstrip().endswith(
        "WantedBy=default.target" if user else "WantedBy=multi-user.target")


def test_user_unit_install_hints_at_lingering(fakes: Path, tmp_path: Path) -> None:
    # logind does not run here: a stand-in loginctl answers that lingering is off.
    installer = SystemdInstaller(True, str(tmp_path / "config.toml"))
    hint = installer.linger_hint()
    user = getpass.getuser()
    assert recorded(fakes) == [["loginctl", "show-user", user, "-p", "Linger", "--value"]]
    assert hint is not None and hint.endswith(f"loginctl enable-linger {user}")


def test_launchd_job_gets_the_chosen_port_in_its_environment(fakes: Path, tmp_path: Path,
                                                             monkeypatch) -> None:
    from vigil._heal.healer import Healer

    plist = tmp_path / "memory.plist"
    plist.write_bytes(plistlib.dumps({"Label": "dev.memory", "ProgramArguments": ["srv"]}))
    port = free_port()
    path = tmp_path / "c.toml"
    path.write_text(f'[services.memory]\nmanager = "launchd"\nlabel = "dev.memory"\n'
                    f'plist = "{plist}"\nport_variable = "MCP_PORT"\nports = [{port}]\n')
    cfg = config.load(str(path))
    load_job(tmp_path)  # loaded and running: stopped first
    healer = Healer(failing=lambda _s: (), wake=lambda _s: [])
    healer.install(cfg.services, {}, tmp_path)
    outcome = healer.heal("memory", "test")
    assert outcome.ok and outcome.fields["port"] == port
    job = plistlib.loads(plist.read_bytes())
    assert job["EnvironmentVariables"] == {"MCP_PORT": str(port)}
    target = f"gui/{os.getuid()}/dev.memory"
    assert recorded(fakes) == [
        ["launchctl", "print", target],          # is it running?
        ["launchctl", "bootout", target],        # stop, so the port is free to choose
        ["launchctl", "print", target],          # start: not loaded, so...
        ["launchctl", "bootstrap", f"gui/{os.getuid()}", str(plist)],  # ...the new plist
        ["launchctl", "kickstart", target],
    ]


def test_a_hung_manager_command_is_cut_off_at_start_timeout(fakes: Path, tmp_path: Path,
                                                            manager) -> None:
    # brew stands in for any manager's command: this one never returns.
    (tmp_path / "bin" / "brew").write_text(f"#!{sys.executable}\nimport time\ntime.sleep(120)\n")
    m = manager('manager = "brew"\nformula = "redis"\nstart_timeout = "1s"\n', tmp_path)
    began = time.monotonic()
    action = m.restart()
    assert time.monotonic() - began < 5
    assert action.timed_out and not action.ok and action.returncode is None
    assert action.fields()["timed_out"] is True
    assert not [p for p in psutil.process_iter(["cmdline"])
                if str(tmp_path / "bin" / "brew") in " ".join(p.info["cmdline"] or [])]


def test_a_third_party_managers_watch_follows_each_new_process(write_config, daemon,
                                                                tmp_path: Path,
                                                                monkeypatch) -> None:
    monkeypatch.setenv("PYTHONPATH", FIXTURES)
    port = free_port()
    token = "t"
    http_port = free_port()
    d = daemon(write_config(f"""
        [daemon]
        state_dir = "state"
        plugins = ["thirdparty"]
        http = "127.0.0.1:{http_port}"
        http_token = "{token}"
        [services.web]
        manager = "server"
        argv = ["{sys.executable}", "-m", "http.server", "{port}", "--bind", "127.0.0.1"]
        backoff = "0s"
        restarts = 5
        [checks.web]
        type = "tcp"
        port = {port}
        service = "web"
        interval = "10s"
        fall = 1
    """)).start()
    d.wait_for("heal.succeeded", service="web", timeout=15)
    # The plugin's own logger writes into vigil's log, naming it.
    started = d.wait_for("server.started")[0]
    assert started["plugin"] == "thirdparty" and started["level"] == "info"

    def watching() -> bool:
        service = json.loads(call(http_port, "/api/v1/services/web",
                                  headers={"Authorization": f"Bearer {token}"})[2])
        return bool(service["watching"])

    for round_ in (1, 2, 3):
        pid = saved_pid(tmp_path / "state", "web")
        wait_until(lambda: answers(port), 10, "the server to answer")
        assert watching(), f"round {round_}: the running process is watched"
        killed = time.time()
        os.kill(pid, signal.SIGKILL)
        exited = d.wait_for("service.exited", count=round_, service="web", timeout=5)[-1]
        assert exited["pid"] == pid
        # Seen by its watch, not by the check (its interval is 10 s).
        assert event_time(exited) - killed < 0.1, f"round {round_}: seen late"
        d.wait_for("heal.succeeded", count=round_ + 1, service="web", timeout=15)
        def new_pid(old: int = pid) -> bool:
            return saved_pid(tmp_path / "state", "web") != old

        wait_until(new_pid, 10, "the new PID saved")
    assert d.stop() == 0
    os.kill(saved_pid(tmp_path / "state", "web"), signal.SIGTERM)  # it outlives vigil


def test_a_saved_pid_without_its_start_time_is_not_taken_for_ours(tmp_path: Path) -> None:
    # A state saved by hand or cut short: the PID may be anyone's by now (here, this
    # test's own process): neither running nor watched, and never stopped by vigil.
    from vigil.service.command import CommandOptions

    manager = Command("svc", CommandOptions(start=["true"]))
    manager.state_dir = tmp_path
    manager.state = {"pid": os.getpid(), "pgid": os.getpgid(0)}
    assert manager.is_running() is False
    assert manager.watch(lambda _seen: None) is False
    manager.state["create_time"] = psutil.Process().create_time()
    assert manager.is_running() is True, "with its start time, it is known"
