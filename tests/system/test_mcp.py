"""The mcp check type against a real MCP server built with the official SDK
(tests/fixtures/mcp_memory_server.py), and port fallback when healing it."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.helpers import (
    FIXTURES,
    answers,
    free_port,
    run_vigil,
    saved_pid,
    saved_state,
    wait_until,
)
from tests.private_systemd import PrivateSystemd, unit
from vigil import ConfigError, Status
from vigil._api.check import Check
from vigil._config import loader as config
from vigil._store.records import Snapshot

SERVER = str(Path(FIXTURES) / "mcp_memory_server.py")


def free_range(count: int) -> list[int]:
    """``count`` consecutive free loopback ports, below the kernel's ephemeral range: an
    outgoing connection (the daemon's own checks, another test's) never takes one of them
    between the test choosing it and a server binding it."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(50):
        base = random.randrange(max(1024, low - 12000), low - count)
        ports = list(range(base, base + count))
        if all(p < 65535 and not answers(p, 0.05) for p in ports):
            try:
                with ExitStack() as stack:
                    for p in ports:
                        s = stack.enter_context(socket.socket())
                        s.bind(("127.0.0.1", p))
                return ports
            except OSError:
                continue
    raise AssertionError("no run of free ports found")


def wait_answers(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if answers(port):
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing answers on {port}")


@pytest.fixture
def mcp_server(tmp_path: Path) -> Iterator[Callable[..., tuple[int, Path]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(port: int, broken: bool = False, **knobs: float) -> tuple[int, Path]:
        knob_file = tmp_path / f"knobs-{port}.json"
        knob_file.write_text(json.dumps(knobs))
        proc = subprocess.Popen([sys.executable, SERVER, "--port", str(port), "--knobs",
                                 str(knob_file), *(["--broken-mcp"] if broken else [])],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(proc)
        wait_answers(port)
        return port, knob_file

    yield start
    for proc in started:
        proc.kill()
        proc.wait()


@pytest.fixture
def foreign() -> Iterator[Callable[[int], socket.socket]]:
    """A listener that is not an MCP server, held by this test process."""
    held: list[socket.socket] = []

    def hold(port: int) -> socket.socket:
        s = socket.socket()
        s.bind(("127.0.0.1", port))
        s.listen()
        held.append(s)
        return s

    yield hold
    for s in held:
        s.close()


def build(body: str, tmp_path: Path) -> Check:
    path = tmp_path / "c.toml"
    path.write_text('[daemon]\nstate_dir = "state"\n[checks.m]\ntype = "mcp"\n' + body)
    return config.load(str(path)).checks["m"].check


def test_healthy_server_with_every_number_as_a_metric(mcp_server, tmp_path) -> None:
    port, _ = mcp_server(free_port())
    result = build(f'ports = [{port}]\n', tmp_path).run()
    assert result.status is Status.OK, result.summary
    assert result.summary.startswith(f"healthy at 127.0.0.1:{port}: error rate 1%")
    m = result.metrics
    assert m["port"] == port and m["cache_hit_rate_percent"] == 75
    assert m["avg_response_time_ms"] == 20 and m["requests_total"] == 47
    assert m['role_requests{role="implementer"}'] == 30
    assert m['role_requests{role="planner"}'] == 12


@pytest.mark.parametrize(("knobs", "words"), [
    ({"error_rate_percent": 12}, "error rate 12% (!)"),
    ({"avg_response_time_ms": 150}, "avg response 150 ms (!)"),
    ({"cache_hit_rate_percent": 20}, "cache hit rate 20% (!)"),
])
def test_each_threshold_degrades_to_warn(mcp_server, tmp_path, knobs, words) -> None:
    port, _ = mcp_server(free_port(), **knobs)
    result = build(f'ports = [{port}]\n', tmp_path).run()
    assert result.status is Status.WARN and result.summary.startswith("degraded at")
    assert words in result.summary


def test_thresholds_follow_live_changes_and_custom_field_names(mcp_server, tmp_path) -> None:
    port, knobs = mcp_server(free_port())
    check = build(f'ports = [{port}]\n', tmp_path)
    assert check.run().status is Status.OK
    knobs.write_text(json.dumps({"error_rate_percent": 40}))
    assert check.run().status is Status.WARN
    renamed = build(f'ports = [{port}]\nerror_rate_field = "requests_total"\n'
                    "error_rate_warn_pct = 46\n", tmp_path).run()
    assert "error rate 47% (!)" in renamed.summary


def test_unreachable_is_crit_and_names_what_holds_the_range(foreign, tmp_path) -> None:
    ports = free_range(3)
    foreign(ports[1])
    result = build(f'ports = "{ports[0]}-{ports[2]}"\n', tmp_path).run()
    assert result.status is Status.CRIT and result.healable
    assert f"no MCP server answers on 127.0.0.1:{ports[0]}-{ports[2]}" in result.summary
    assert f"{ports[1]} held by PID {os.getpid()}" in result.summary


def test_a_server_that_moved_is_found(mcp_server, foreign, tmp_path) -> None:
    ports = free_range(4)
    foreign(ports[0])
    mcp_server(ports[2])
    result = build(f'ports = "{ports[0]}-{ports[3]}"\n', tmp_path).run()
    assert result.status is Status.OK and result.metrics["port"] == ports[2]
    assert f"(moved from {ports[0]})" in result.summary


def test_protocol_round_trip(mcp_server, tmp_path) -> None:
    port, _ = mcp_server(free_port())
    result = build(f'ports = [{port}]\nprotocol = true\ncall_tool = "rehydrate_memory"\n'
                   'tool_arguments = { session_id = "s1", limit = 5 }\n', tmp_path).run()
    assert result.status is Status.OK, result.summary
    for step in ("mcp_initialize_ms", "mcp_ping_ms", "mcp_call_ms", "mcp_total_ms"):
        assert result.metrics[step] > 0
    assert result.metrics["mcp_tools"] == 2
    bad_tool = build(f'ports = [{port}]\nprotocol = true\ncall_tool = "no_such_tool"\n',
                     tmp_path).run()
    assert bad_tool.status is Status.CRIT


def test_health_fine_but_mcp_broken_is_crit(mcp_server, tmp_path) -> None:
    port, _ = mcp_server(free_port(), broken=True)
    assert build(f'ports = [{port}]\n', tmp_path).run().status is Status.OK
    result = build(f'ports = [{port}]\nprotocol = true\n', tmp_path).run()
    assert result.status is Status.CRIT and result.healable
    assert "failed while /health is fine" in result.summary


def command_config(tmp_path: Path, ports: list[int], check_ports: str | None = None,
                   restarts: int = 3) -> str:
    span = f"{ports[0]}-{ports[-1]}"
    start = json.dumps([sys.executable, SERVER, "--port", "{port}"])
    return f"""
        [daemon]
        state_dir = "{tmp_path}/state"
        [services.memory]
        manager = "command"
        start = {start}
        ports = "{span}"
        start_timeout = "15s"
        restarts = {restarts}
        backoff = "200ms"
        [checks.memory]
        type = "mcp"
        ports = "{check_ports or span}"
        service = "memory"
        interval = "1s"
        fall = 2
        timeout = "3s"
    """


def test_port_fallback_under_the_command_manager(foreign, write_config, daemon,
                                                 tmp_path) -> None:
    ports = free_range(3)
    squatter = foreign(ports[0])
    d = daemon(write_config(command_config(tmp_path, ports))).start()
    fallback = d.wait_for("heal.port_fallback", service="memory", timeout=20)[0]
    assert fallback["preferred"] == ports[0] and fallback["port"] == ports[1]
    assert fallback["holder"].startswith(f"PID {os.getpid()} (")
    d.wait_for("heal.succeeded", service="memory", timeout=20)
    ok = d.wait_for("check.result", check="memory", status="OK", timeout=10)[0]
    assert ok["metrics"]["port"] == ports[1]
    def saved() -> Snapshot | None:
        state = saved_state(tmp_path / "state")
        last = state["checks"]["memory"]["last"] if "memory" in state["checks"] else None
        return state if last and last["metrics"].get("port") == ports[1] else None

    wait_until(saved, 10, "the fallback port in the saved state")
    state = saved()
    assert state is not None
    assert state["services"]["memory"]["manager_state"]["port"] == ports[1]
    status = run_vigil("status", "-c", str(d.config)).stdout
    service_row = status.splitlines()[-1]
    assert service_row.startswith("memory ") and f" {ports[1]} " in service_row, status

    # Killed after the preferred port came free: restarted on the port it had last
    # (the first free one would be the preferred), and found there again.
    squatter.close()
    os.killpg(saved_pid(tmp_path / "state", "memory"), signal.SIGKILL)
    second = d.wait_for("heal.succeeded", count=2, service="memory", timeout=30)[1]
    assert second["port"] == ports[1]
    d.wait_for("check.result", count=2, check="memory", status="OK", timeout=10)
    d.stop()


def test_every_port_taken_names_every_holder_without_a_restart_loop(foreign, write_config,
                                                                    daemon, tmp_path):
    ports = free_range(2)
    for port in ports:
        foreign(port)
    d = daemon(write_config(command_config(tmp_path, ports, restarts=2))).start()
    failed = d.wait_for("heal.failed", service="memory", timeout=20)[0]
    for port in ports:
        assert f"{port} by PID {os.getpid()}" in failed["reason"]
    assert failed["reason"].startswith(f"every port of {ports[0]}-{ports[1]} is taken")
    d.wait_for("heal.gave_up", service="memory", timeout=20)
    # Three more failing runs, each of which would have started a heal were the budget
    # not kept (the healer decides on each run before the next one begins).
    runs = len(d.events("check.result", check="memory"))
    d.wait_for("check.result", count=runs + 3, check="memory", timeout=20)
    assert len(d.events("heal.started", service="memory")) == 2
    crit = d.events("check.result", check="memory")[-1]
    assert crit["status"] == "CRIT" and f"{ports[0]} held by PID {os.getpid()}" in crit["summary"]
    d.stop()


def test_the_real_default_range(foreign, write_config, daemon, tmp_path) -> None:
    default = list(range(3000, 3011))
    busy = [p for p in default if answers(p, 0.05)]
    if busy:
        pytest.fail(f"ports {busy} of 3000-3010 are in use on this machine; the test needs "
                    "the default MCP range free")
    foreign(3000)
    body = command_config(tmp_path, default).replace('ports = "3000-3010"\n        service',
                                                     'service')
    d = daemon(write_config(body)).start()
    d.wait_for("heal.succeeded", service="memory", timeout=30)
    ok = d.wait_for("check.result", check="memory", status="OK", timeout=10)[0]
    assert ok["metrics"]["port"] == 3001 and "(moved from 3000)" in ok["summary"]
    d.stop()


def test_port_fallback_under_systemd_with_an_environment_file(systemd: PrivateSystemd,
                                                              foreign, write_config, daemon,
                                                              tmp_path) -> None:
    ports = free_range(3)
    foreign(ports[0])
    env_file = tmp_path / "memory.env"
    systemd.write_unit("vigil-memory.service", unit(
        f"{sys.executable} {SERVER} --port ${{MCP_PORT}}", f"EnvironmentFile=-{env_file}"))
    d = daemon(write_config(f"""
        [daemon]
        state_dir = "{tmp_path}/state"
        [services.memory]
        manager = "systemd"
        unit = "vigil-memory.service"
        env_file = "{env_file}"
        port_variable = "MCP_PORT"
        ports = "{ports[0]}-{ports[-1]}"
        start_timeout = "15s"
        [checks.memory]
        type = "mcp"
        ports = "{ports[0]}-{ports[-1]}"
        service = "memory"
        interval = "1s"
        fall = 2
        timeout = "3s"
    """), prefix=systemd.prefix()).start()
    d.wait_for("heal.succeeded", service="memory", timeout=30)
    assert env_file.read_text() == f"MCP_PORT={ports[1]}\n"
    assert systemd.is_active("vigil-memory.service") == "active"
    ok = d.wait_for("check.result", check="memory", status="OK", timeout=10)[0]
    assert ok["metrics"]["port"] == ports[1]
    d.stop()
    systemd.run("systemctl", "stop", "vigil-memory.service")


def test_ports_on_a_manager_that_cannot_take_one_is_a_config_error(tmp_path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[services.m]\nmanager = "brew"\nformula = "x"\nports = "3000-3010"\n'
                    '[services.n]\nmanager = "command"\nstart = ["srv"]\nports = "3000-3010"\n'
                    '[services.o]\nmanager = "systemd"\nunit = "o"\nports = "30-x"\n')
    with pytest.raises(ConfigError) as caught:
        config.load(str(path))
    messages = {i.key: i.message for i in caught.value.issues}
    assert "cannot pass a port" in messages["services.m.ports"]
    assert "{port} placeholder" in messages["services.n.ports"]
    assert "bad port range" in messages["services.o.ports"]


def test_init_detect_finds_an_mcp_server_on_3000_to_3010(mcp_server, tmp_path) -> None:
    free = [p for p in range(3000, 3011) if not answers(p, 0.05)]
    assert free, "every port of 3000-3010 is taken on this host: free one for this test"
    port, _ = mcp_server(free[-1])
    target = tmp_path / "detected.toml"
    done = run_vigil("init", "--detect", str(target))
    assert done.returncode == 0, done.stderr
    assert f"found mcp_memory: an MCP server's /health answers on 127.0.0.1:{port}" in (
        done.stdout), done.stdout
    check = tomllib.loads(target.read_text())["checks"]["mcp_memory"]
    assert check == {"type": "mcp", "ports": "3000-3010"}
    ran = run_vigil("check", "mcp_memory", "-c", str(target))
    assert ran.returncode == 0 and f"healthy at 127.0.0.1:{port}" in ran.stdout, ran.stdout
