"""The built-in check types against real sockets, HTTP servers, processes and Nagios
plugins."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.helpers import NAGIOS_DIR, free_port, need_program
from vigil import Status
from vigil._api.check import Check
from vigil._config import loader as config
from vigil._engine.runner import Runner
from vigil._kit import proc
from vigil.plugins.system import Forecast, System


def build(body: str, tmp_path: Path, name: str = "x") -> Check:
    path = tmp_path / "c.toml"
    path.write_text('[daemon]\nstate_dir = "state"\n' + body)
    return config.load(str(path)).checks[name].check


# -- tcp -----------------------------------------------------------------------------


@pytest.fixture
def listening_port() -> Iterator[int]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def test_tcp_open_port_is_ok_with_latency(tmp_path: Path, listening_port: int) -> None:
    result = build(f"[checks.x]\ntype='tcp'\nport={listening_port}\n", tmp_path).run()
    assert result.status is Status.OK
    assert 0 < result.metrics["latency_ms"] < 1000


@pytest.mark.parametrize(("family", "host"), [(socket.AF_INET6, "::1"),
                                             (socket.AF_INET, "localhost")])
def test_tcp_connects_to_ipv6_and_to_a_name(tmp_path: Path, family: int, host: str) -> None:
    with socket.socket(family) as server:
        server.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        result = build(f"[checks.x]\ntype='tcp'\nhost='{host}'\nport={port}\n", tmp_path).run()
    assert result.status is Status.OK, result.summary
    assert result.summary.startswith(f"{host}:{port} answered in ")


def test_tcp_refused_is_crit(tmp_path: Path) -> None:
    port = free_port()
    result = build(f"[checks.x]\ntype='tcp'\nport={port}\n", tmp_path).run()
    assert result.status is Status.CRIT and "refused" in result.summary


def test_tcp_latency_threshold(tmp_path: Path, listening_port: int) -> None:
    result = build(f"[checks.x]\ntype='tcp'\nport={listening_port}\nwarn_ms=0\n",
                   tmp_path).run()
    assert result.status is Status.WARN


# -- http ----------------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        routes = {"/ok": (200, {"status": "ok", "db": {"up": True}}),
                  "/down": (503, {"status": "down"}),
                  "/degraded": (200, {"status": "degraded", "db": {"up": False}})}
        if self.path == "/slow":
            time.sleep(0.3)
        code, body = routes.get(self.path, (200, {"status": "ok"}))
        payload = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def web() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_ok_with_json_expectations(web: str, tmp_path: Path) -> None:
    check = build(f"[checks.x]\ntype='http'\nurl='{web}/ok'\n"
                  "expect_json={status='ok', 'db.up'=true}\n", tmp_path)
    result = check.run()
    assert result.status is Status.OK, result.summary
    assert result.metrics["status_code"] == 200


def test_http_json_mismatch_and_bad_status_are_crit(web: str, tmp_path: Path) -> None:
    check = build(f"[checks.x]\ntype='http'\nurl='{web}/degraded'\n"
                  "expect_json={status='ok', 'db.up'=true}\n", tmp_path)
    result = check.run()
    assert result.status is Status.CRIT
    assert 'status is "degraded", expected "ok"' in result.summary
    assert "db.up is false, expected true" in result.summary
    result = build(f"[checks.x]\ntype='http'\nurl='{web}/down'\n", tmp_path).run()
    assert result.status is Status.CRIT and "returned 503, expected 200" in result.summary
    result = build(f"[checks.x]\ntype='http'\nurl='{web}/down'\nexpect_status=503\n",
                   tmp_path).run()
    assert result.status is Status.OK


def test_http_slow_is_warn_and_unreachable_is_crit(web: str, tmp_path: Path) -> None:
    result = build(f"[checks.x]\ntype='http'\nurl='{web}/slow'\nwarn_ms=100\n", tmp_path).run()
    assert result.status is Status.WARN and result.metrics["latency_ms"] >= 300
    port = free_port()
    result = build(f"[checks.x]\ntype='http'\nurl='http://user:pw123@127.0.0.1:{port}/'\n",
                   tmp_path).run()
    assert result.status is Status.CRIT and "pw123" not in result.summary


def test_http_self_signed_tls_is_crit_unless_verify_tls_is_off(tmp_path: Path) -> None:
    openssl = need_program("openssl", "openssl")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    made = subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                           "-subj", "/CN=127.0.0.1", "-days", "1", "-keyout", str(key),
                           "-out", str(cert)], capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"https://127.0.0.1:{server.server_address[1]}/ok"
    try:
        strict = build(f"[checks.x]\ntype='http'\nurl='{url}'\n", tmp_path).run()
        assert strict.status is Status.CRIT and "CERTIFICATE_VERIFY_FAILED" in strict.summary
        lax = build(f"[checks.x]\ntype='http'\nurl='{url}'\nverify_tls=false\n",
                    tmp_path).run()
        assert lax.status is Status.OK, lax.summary
    finally:
        server.shutdown()
        server.server_close()


# -- process -------------------------------------------------------------------------


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)",
                             "vigil-test-sleeper"])
    yield proc
    proc.kill()
    proc.wait()


def test_process_by_match_and_name(sleeper, tmp_path: Path) -> None:
    result = build("[checks.x]\ntype='process'\nmatch='vigil-test-sleeper'\n", tmp_path).run()
    assert result.status is Status.OK and result.metrics["count"] == 1
    assert str(sleeper.pid) in result.summary
    result = build("[checks.x]\ntype='process'\nmatch='vigil-test-sleeper'\nmax_count=0\n"
                   "min_count=0\n", tmp_path).run()
    assert result.status is Status.WARN
    name = psutil.Process(sleeper.pid).name()
    result = build(f"[checks.x]\ntype='process'\nname='{name}'\n", tmp_path).run()
    assert result.status is Status.OK


def test_process_missing_is_crit(tmp_path: Path) -> None:
    result = build("[checks.x]\ntype='process'\nmatch='no-such-process-anywhere-42'\n",
                   tmp_path).run()
    assert result.status is Status.CRIT and "expected at least 1" in result.summary


def test_pidfile_live_stale_and_reused(sleeper, tmp_path: Path) -> None:
    pidfile = tmp_path / "app.pid"
    name = psutil.Process(sleeper.pid).name()
    pidfile.write_text(f"{sleeper.pid}\n")
    os.utime(pidfile, (time.time() + 5, time.time() + 5))
    body = f"[checks.x]\ntype='process'\npidfile='{pidfile}'\nname='{name}'\n"
    assert build(body, tmp_path).run().status is Status.OK

    # A pidfile older than the process it names: the PID was reused by another program.
    os.utime(pidfile, (time.time() - 3600, time.time() - 3600))
    result = build(body, tmp_path).run()
    assert result.status is Status.CRIT and "started after the pidfile" in result.summary

    # The PID now belongs to a program of another name.
    pidfile.write_text(f"{os.getppid()}\n")
    result = build(f"[checks.x]\ntype='process'\npidfile='{pidfile}'\nname='redis-server'\n",
                   tmp_path).run()
    assert result.status is Status.CRIT and "not 'redis-server'" in result.summary

    dead = subprocess.Popen(["true"])
    dead.wait()
    pidfile.write_text(f"{dead.pid}\n")
    result = build(body, tmp_path).run()
    assert result.status is Status.CRIT and f"no process {dead.pid}" in result.summary
    pidfile.unlink()
    assert "cannot read pidfile" in build(body, tmp_path).run().summary


# -- system --------------------------------------------------------------------------


def test_system_thresholds(tmp_path: Path) -> None:
    used = psutil.disk_usage("/").percent
    ok = build("[checks.x]\ntype='system'\ncpu=false\nmemory=false\nload=false\n"
               "warn_pct=99.9\ncrit_pct=100\n", tmp_path).run()
    assert ok.status is Status.OK and ok.metrics == {"disk_root_pct": used}
    crit = build(f"[checks.x]\ntype='system'\ncpu=false\nmemory=false\nload=false\n"
                 f"warn_pct={used / 4}\ncrit_pct={used / 2}\n", tmp_path).run()
    assert crit.status is Status.CRIT and crit.summary.startswith("CRIT: disk / ")
    warn = build("[checks.x]\ntype='system'\ncpu=false\nmemory=false\ndisks=[]\n"
                 "load_warn=0\n", tmp_path).run()
    assert warn.status is Status.WARN and "load1_per_core" in warn.metrics


def test_forecast_finds_when_a_filling_disk_is_full() -> None:
    # 2% an hour from 80% over six hours, with noise: 92% now, full in about 4 h.
    forecast = Forecast(window=6 * 3600)
    start = 1.8e9
    for minute in range(0, 361, 2):
        noise = 0.3 if minute % 4 else -0.3
        forecast.add(start + minute * 60, 80 + 2 * minute / 60 + noise)
    full_in = forecast.full_in()
    assert full_in is not None and abs(full_in - 4 * 3600) < 0.1 * 4 * 3600, full_in
    # Draining, steady or too little to say: no forecast.
    for readings in ([(start + m * 60, 90 - m / 60) for m in range(0, 361, 5)],
                     [(start + m * 60, 50.0) for m in range(0, 361, 5)],
                     [(start + m * 60, 50 + m) for m in range(4)]):
        other = Forecast(window=6 * 3600)
        for at, pct in readings:
            other.add(at, pct)
        assert other.full_in() is None, readings[:3]


def test_system_warns_of_a_disk_full_within_forecast_warn(tmp_path: Path) -> None:
    check = build("[checks.x]\ntype='system'\ncpu=false\nmemory=false\nload=false\n"
                  "warn_pct=99.9\ncrit_pct=100\nforecast_warn='10h'\n", tmp_path)
    assert isinstance(check, System)
    used = psutil.disk_usage("/").percent
    # The disk's history, as the check kept it: filling so that it is full in ~5 h.
    rate = (100 - used) / (5 * 3600)
    now = time.time()
    history = check.forecasts["disk /"] = Forecast(6 * 3600)
    for minute in range(300, 0, -5):
        history.add(now - minute * 60, used - rate * minute * 60)
    result = check.run()
    assert result.status is Status.WARN, result.summary
    assert "disk / full in about 5 h" in result.summary
    assert abs(result.metrics["disk_root_full_in_seconds"] - 5 * 3600) < 0.1 * 5 * 3600
    relaxed = build("[checks.x]\ntype='system'\ncpu=false\nmemory=false\nload=false\n"
                    "warn_pct=99.9\ncrit_pct=100\nforecast_warn='1h'\n", tmp_path)
    assert isinstance(relaxed, System)
    relaxed.forecasts["disk /"] = history
    assert relaxed.run().status is Status.OK


# -- exec, against real Nagios plugins ------------------------------------------------


@pytest.mark.parametrize(("code", "status"), [(0, Status.OK), (1, Status.WARN),
                                              (2, Status.CRIT), (3, Status.UNKNOWN)])
def test_exec_check_dummy(tmp_path: Path, code: int, status: Status) -> None:
    need_program("check_dummy", "monitoring-plugins-basic")
    result = build(f"[checks.x]\ntype='exec'\ncommand=['check_dummy', '{code}', 'said so']\n",
                   tmp_path).run()
    assert result.status is status
    assert result.summary.endswith("said so")


def test_exec_check_tcp_open_and_closed(tmp_path: Path, listening_port: int) -> None:
    need_program("check_tcp", "monitoring-plugins-basic")
    result = build(f"[checks.x]\ntype='exec'\ncommand=['check_tcp', '-H', '127.0.0.1', "
                   f"'-p', '{listening_port}']\n", tmp_path).run()
    assert result.status is Status.OK, result.summary
    assert "time_s" in result.metrics
    result = build(f"[checks.x]\ntype='exec'\ncommand=['check_tcp', '-H', '127.0.0.1', "
                   f"'-p', '{free_port()}']\n", tmp_path).run()
    assert result.status is Status.CRIT


def test_exec_check_disk_perfdata(tmp_path: Path) -> None:
    need_program("check_disk", "monitoring-plugins-basic")
    # Thresholds no disk can pass (less than 0% free): OK on any host.
    result = build("[checks.x]\ntype='exec'\ncommand=['check_disk', '-w', '0%', '-c', '0%', "
                   "'-p', '/']\n", tmp_path).run()
    assert result.status is Status.OK, result.summary
    assert result.summary.startswith("DISK ")
    assert result.metrics["root_bytes"] > 0


def test_exec_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    marker = tmp_path / "grandchild.pid"
    script = tmp_path / "slow_plugin.py"
    script.write_text(
        "import subprocess, sys, time\n"
        f"child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(marker)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(60)\n")
    check = build(f"[checks.x]\ntype='exec'\ntimeout='1s'\n"
                  f"command=['{sys.executable}', '{script}']\n", tmp_path)
    start = time.monotonic()
    outcome = Runner().run(check, check.timeout)
    assert time.monotonic() - start < 3
    assert outcome.result.status is Status.UNKNOWN
    grandchild = int(marker.read_text())
    deadline = time.monotonic() + 3
    while psutil.pid_exists(grandchild) and time.monotonic() < deadline:
        if psutil.Process(grandchild).status() == psutil.STATUS_ZOMBIE:
            break
        time.sleep(0.05)
    alive = psutil.pid_exists(grandchild) and (
        psutil.Process(grandchild).status() != psutil.STATUS_ZOMBIE)
    assert not alive, "the plugin's child outlived the timeout"


def test_exec_output_is_capped(tmp_path: Path) -> None:
    script = tmp_path / "chatty.py"
    script.write_text("import sys\nprint('CHATTY OK | big=1')\n"
                      "sys.stdout.write('x' * 5_000_000)\n")
    check = build(f"[checks.x]\ntype='exec'\nmax_output=1000\n"
                  f"command=['{sys.executable}', '{script}']\n", tmp_path)
    result = check.run()
    assert result.status is Status.OK and result.summary == "CHATTY OK"
    done = proc.run_command([sys.executable, str(script)], timeout=10, max_output=1000)
    assert done.returncode == 0 and len(done.stdout) == 1000


def test_exec_finds_plugins_outside_path(tmp_path: Path, monkeypatch) -> None:
    need_program("check_dummy", "monitoring-plugins-basic")
    # A PATH without the plugin folder: only exec's own search can find it there.
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert shutil.which("check_dummy") is None
    check = build("[checks.x]\ntype='exec'\ncommand=['check_dummy', '0']\n", tmp_path)
    assert check.options.command[0] == str(NAGIOS_DIR / "check_dummy")
    assert check.run().status is Status.OK
