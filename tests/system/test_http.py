"""The HTTP surface of a real daemon: the probes, the token rules, the JSON API, the
event stream, /metrics read by promtool and scraped by a real Prometheus, and a few
thousand malformed requests."""

from __future__ import annotations

import http.client
import itertools
import json
import random
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import (
    FIXTURES,
    Daemon,
    call,
    event_time,
    free_port,
    prometheus_server,
    wait_until,
)

TOKEN = "t0ken-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def served(write_config, daemon, tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> Callable[..., tuple[Daemon, int, Path]]:
    """A daemon serving HTTP on a free port: a passing check, a failing one (its flag
    file says CRIT), and the report-only service it guards, which a heal makes OK."""
    monkeypatch.setenv("PYTHONPATH", FIXTURES)

    def start(token: str = TOKEN, extra: str = "", ready: bool = True
              ) -> tuple[Daemon, int, Path]:
        port = free_port()
        flag = tmp_path / "flag"
        flag.write_text("CRIT")
        config = write_config(f"""
            [daemon]
            state_dir = "state"
            plugins = ["misbehaving"]
            http = "127.0.0.1:{port}"
            http_token = "{token}"
            [services.svc]
            manager = "flag"
            status_file = "{flag}"
            heal = false
            start_timeout = "5s"
            [checks.good]
            type = "fixed"
            interval = "300ms"
            [checks.bad]
            type = "fixed"
            status_file = "{flag}"
            service = "svc"
            interval = "300ms"
            fall = 1
            {extra}
        """)
        d = daemon(config).start()
        d.wait_for("http.listening")
        if ready:
            d.wait_for("check.state_changed", check="bad", to="FAILING")
            d.wait_for("check.result", check="good")
        return d, port, flag

    return start


def test_probes_say_what_a_load_balancer_and_kubernetes_need(served) -> None:
    d, port, flag = served()
    assert call(port, "/livez")[0] == 200
    status, headers, body = call(port, "/readyz")
    assert (status, body) == (503, b"failed\n")
    # What fails, and why, is the token's to read (the page's, like /health and the
    # badges); the probes' verdicts are anyone's.
    assert call(port, "/readyz?verbose")[0] == 401
    status, _, body = call(port, "/readyz?verbose", headers=AUTH)
    lines = body.decode().splitlines()
    assert "[-]bad failed: told to be CRIT" in lines and "[+]good ok" in lines
    assert lines[-1] == "readyz check failed"
    assert call(port, "/readyz?exclude=bad", headers=AUTH)[:1] == (200,)
    assert call(port, "/health")[0] == 401
    status, headers, body = call(port, "/health", headers=AUTH)
    assert status == 503 and headers["Content-Type"] == "application/health+json"
    health = json.loads(body)
    assert health["status"] == "fail"
    assert health["checks"]["bad"][0]["status"] == "fail"
    assert health["checks"]["good"][0] | {"observedValue": {"value_ms": 1.5}} == \
        health["checks"]["good"][0] and health["checks"]["good"][0]["status"] == "pass"
    status, headers, body = call(port, "/badge/good.svg", headers=AUTH)
    assert status == 200 and headers["Content-Type"] == "image/svg+xml"
    assert b"good: ok" in body and b"<svg" in body
    assert b"bad: failing" in call(port, "/badge/bad.svg", headers=AUTH)[2]
    assert call(port, "/badge/nope.svg", headers=AUTH)[0] == 404
    # HEAD says the same without a body; the probes need no token.
    assert call(port, "/livez", "HEAD")[::2] == (200, b"")

    flag.write_text("OK")
    wait_until(lambda: call(port, "/readyz")[0] == 200, 10, "ready once bad passes")
    status, _, body = call(port, "/health", headers=AUTH)
    assert status == 200 and json.loads(body)["status"] == "pass"
    d.stop()


def test_a_wedged_scheduler_fails_livez(served) -> None:
    d, port, _ = served(extra='[checks.wedge]\ntype = "wedge"\ninterval = "1s"\n', ready=False)
    d.wait_for("check.result", check="wedge")
    wait_until(lambda: call(port, "/livez")[0] == 503, 10, "livez to fail")
    assert call(port, "/livez")[2].startswith(b"wedged: no scheduler heartbeat for ")


def test_the_token_guards_the_api_and_every_action(served) -> None:
    d, port, _ = served()
    for path in ("/metrics", "/api/v1/checks", "/api/v1/checks/good"):
        status, headers, _ = call(port, path)
        assert status == 401 and headers["WWW-Authenticate"] == 'Bearer realm="vigil"', path
        assert call(port, path, headers={"Authorization": "Bearer wrong"})[0] == 401
    assert call(port, "/api/v1/checks/good/run", "POST")[0] == 401

    runs = len(d.events("check.result", check="good"))
    status, _, body = call(port, "/api/v1/checks/good/run", "POST", AUTH)
    assert status == 202 and json.loads(body) == {"check": "good", "queued": True}
    d.wait_for("check.result", count=runs + 1, check="good")
    assert call(port, "/api/v1/checks/nope/run", "POST", AUTH)[0] == 404

    status, _, body = call(port, "/api/v1/services/svc/heal", "POST", AUTH)
    assert status == 200 and json.loads(body)["outcome"] == "heal.succeeded"
    assert d.wait_for("heal.requested", service="svc")[0]["by"] == "the HTTP API"

    checks = json.loads(call(port, "/api/v1/checks", headers=AUTH)[2])["checks"]
    assert sorted(checks) == ["bad", "good"] and checks["bad"]["state"] == "FAILING"
    def good_page() -> dict[str, Any]:
        return json.loads(call(port, "/api/v1/checks/good", headers=AUTH)[2])

    # Its history is there once the writer's first commit (within a second) is.
    wait_until(lambda: good_page()["history"], 5, "the check's history")
    good = good_page()
    assert good["name"] == "good" and good["last"]["status"] == "OK"
    assert good["history"]["results"] and good["history"]["uptime"]["24h"] == 1.0
    service = json.loads(call(port, "/api/v1/services/svc", headers=AUTH)[2])
    assert service["manager"] == "flag" and service["heals"] == {"succeeded": 1}
    assert call(port, "/api/v1/services/nope", headers=AUTH)[0] == 404
    assert call(port, "/api/v1/checks", "POST", AUTH)[0] == 405
    d.stop()


def test_more_connections_than_the_limit_are_refused_with_429(served) -> None:
    from vigil._web.http import MAX_CONNECTIONS

    _, port, _ = served()
    # Requests whose body trickles each hold one of the server's threads until their
    # deadline (idle connections hold none: they wait for a head on one shared thread).
    body = (b"POST /api/v1/checks/good/run HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Length: 100\r\n\r\n{")
    held = []
    for n in range(MAX_CONNECTIONS):
        conn = socket.create_connection(("127.0.0.1", port), timeout=5,
                                        source_address=(f"127.0.0.{2 + n % 2}", 0))
        conn.sendall(body)
        held.append(conn)
    try:
        wait_until(lambda: status_of(port, b"GET /api/v1/checks HTTP/1.1\r\n"
                                           b"Host: 127.0.0.1\r\n\r\n") == 429,
                   10, "every slot taken")
        # The probes have slots of their own.
        assert status_of(port, b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n") == 200
    finally:
        for conn in held:
            conn.close()
    wait_until(lambda: call(port, "/livez")[0] == 200, 10, "room again once they left")


def test_without_a_token_reads_are_open_and_actions_closed(served) -> None:
    _, port, _ = served(token="")
    assert call(port, "/api/v1/checks")[0] == 200
    status, _, body = call(port, "/api/v1/checks/good/run", "POST")
    assert status == 403 and b"http_token" in body


def test_the_event_stream_carries_results_changes_and_heals(served) -> None:
    d, port, _ = served()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/api/v1/events", headers=AUTH)
    stream = conn.getresponse()
    assert stream.status == 200 and stream.getheader("Content-Type") == "text/event-stream"
    # An operator's heal (the service is report-only otherwise): the flag manager makes
    # the failing check pass.
    healed = threading.Thread(target=call, args=(port, "/api/v1/services/svc/heal", "POST",
                                                 AUTH))
    healed.start()
    seen: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + 10
    while not {"check.state_changed", "heal.succeeded"} <= seen.keys() and (
            time.monotonic() < deadline):
        line = stream.fp.readline().decode()
        if line.startswith("data: "):
            event = json.loads(line[6:])
            seen.setdefault(event["event"], event)
    conn.close()
    healed.join(10)
    assert seen["check.result"]["check"] in ("good", "bad")
    assert seen["heal.started"]["service"] == "svc"
    assert seen["heal.succeeded"]["service"] == "svc" and seen["heal.succeeded"]["recovery_s"] >= 0
    change = seen["check.state_changed"]
    assert (change["check"], change["from"], change["to"]) == ("bad", "FAILING", "OK")
    d.stop()


def test_metrics_pass_promtool_and_a_real_prometheus_scrapes_them(served, tmp_path) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "install the Debian package prometheus (it has promtool)"
    d, port, _ = served()
    status, headers, body = call(port, "/metrics", headers=AUTH)
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = body.decode()
    assert 'vigil_check_up{check="good",service="",type="fixed"} 1.0' in text
    assert 'vigil_check_up{check="bad",service="svc",type="fixed"} 0.0' in text
    assert 'vigil_check_metric{check="good",metric="value_ms"} 1.5' in text
    assert 'vigil_check_state{check="bad",state="FAILING"} 1.0' in text
    assert 'vigil_heals_total{outcome="succeeded",service="svc"} 0.0' in text
    assert "vigil_build_info{" in text
    linted = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True,
                            timeout=30)
    assert linted.returncode == 0, linted.stdout + linted.stderr
    status, headers, body = call(port, "/metrics", headers={
        **AUTH, "Accept": "application/openmetrics-text; version=1.0.0"})
    assert headers["Content-Type"].startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")

    (tmp_path / "prometheus.yml").write_text(f"""
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: vigil
    authorization:
      credentials: {TOKEN}
    static_configs:
      - targets: ["127.0.0.1:{port}"]
""")
    with prometheus_server(tmp_path / "prometheus.yml", tmp_path) as get:
        def scraped() -> list[dict[str, Any]]:
            return (get("/api/v1/query", "vigil_check_up") or {}).get("result", [])

        wait_until(lambda: len(scraped()) == 2, 60, "Prometheus to scrape vigil_check_up")
        by_check = {s["metric"]["check"]: s["value"][1] for s in scraped()}
        assert by_check == {"good": "1", "bad": "0"}
    d.stop()


def test_a_removed_check_leaves_no_series(served) -> None:
    d, port, _ = served()
    config = d.config.read_text()
    d.config.write_text(config[:config.index("[checks.bad]")])
    d.signal(signal.SIGHUP)
    d.wait_for("config.reloaded")
    text = call(port, "/metrics", headers=AUTH)[2].decode()
    assert 'check="good"' in text and 'check="bad"' not in text


# -- malformed requests ------------------------------------------------------------

PATHS = ["/status/nope.json", "/nope", "/api", "/api/v2/checks", "/api/v1/checks/good/x/y/z",
         "/metrics/x",
         "/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/badge/", "/badge/../x.svg",
         "/static/app.js", "/index.html", "/api/v1/services/nope/heal", "/x//y", "/livez/x",
         "/api/v1/checks/" + "x" * 2000]
TOKENS = ["", "Authorization: Bearer wrong\r\n", "Authorization: Basic Zm9vOmJhcg==\r\n",
          f"Authorization: Bearer {TOKEN}x\r\n", "Authorization: \r\n"]


def malformed(rng: random.Random) -> bytes:
    """One request that a client should never send, chosen at random."""
    path = rng.choice(PATHS)
    kind = rng.randrange(12)
    if kind == 0:  # garbage for a request line
        return bytes(rng.randrange(1, 256) for _ in range(rng.randrange(1, 200))) + b"\r\n\r\n"
    if kind == 1:
        return rng.choice([b"GET\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"GET / HTTP/2.0\r\n\r\n",
                           b"GET / FTP/1.1\r\n\r\n", b"G\x00T / HTTP/1.1\r\n\r\n",
                           b"GET  /  HTTP/1.1 extra\r\n\r\n", b"GET / HTTP/1.x\r\n\r\n"])
    if kind == 2:  # unknown methods and methods not allowed
        method = rng.choice(["BREW", "DELETE", "PUT", "PATCH", "OPTIONS", "TRACE", "CONNECT"])
        return f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    if kind == 3:  # unknown paths
        return f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    if kind == 4:  # a header line over http.server's 64 KiB
        return b"GET /livez HTTP/1.1\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n"
    if kind == 5:  # more than 100 headers
        return b"GET /livez HTTP/1.1\r\n" + b"".join(
            f"X-{i}: {i}\r\n".encode() for i in range(150)) + b"\r\n"
    if kind == 6:  # a request line over 64 KiB
        return b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n"
    if kind == 7:  # bodies of no, bad or huge length
        length = rng.choice(["-1", "abc", "99999999", "1e3", " "])
        return (f"POST /api/v1/checks/good/run HTTP/1.1\r\nHost: x\r\n"
                f"Content-Length: {length}\r\n\r\n").encode()
    if kind == 8:
        return (b"POST /api/v1/checks/good/run HTTP/1.1\r\nHost: x\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    if kind == 9:  # bad JSON, even with the right token
        body = rng.choice([b"{", b"not json", b"\xff\xfe", b'{"a": }', b"[1, 2"])
        return (f"POST /api/v1/checks/good/run HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    if kind == 10:  # wrong tokens
        return (f"GET /api/v1/checks HTTP/1.1\r\nHost: x\r\n{rng.choice(TOKENS)}"
                "\r\n").encode()
    return f"GET {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nab".encode()


def status_of(port: int, request: bytes) -> int | None:
    """The status the daemon answers ``request`` with; None when it closes without one."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as conn:
        try:
            conn.sendall(request)
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # it may answer (and close) before taking all of a huge request
        head = b""
        while b"\r\n" not in head:
            try:
                chunk = conn.recv(4096)
            except ConnectionResetError:
                break
            if not chunk:
                break
            head += chunk
    return int(head.split()[1]) if head.startswith(b"HTTP/1.") else None


def slowloris(port: int) -> bytes:
    """Headers sent a byte at a time, each before the socket timeout: what comes back."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as conn:
        conn.sendall(b"GET /livez HTTP/1.1\r\n")
        began = time.monotonic()
        try:
            for byte in itertools.cycle(b"X-Slow: aaaa\r\n"):
                conn.sendall(bytes([byte]))
                time.sleep(0.5)
                if time.monotonic() - began > 16:
                    return b"still open after 16s"
        except OSError:
            pass
        return conn.recv(4096)


def test_malformed_requests_get_4xx_and_the_checks_keep_their_schedule(served) -> None:
    d, port, _ = served()
    rng = random.Random(20261128)
    requests = [malformed(rng) for _ in range(3000)]
    began = time.time()
    with ThreadPoolExecutor(8) as pool:
        slow = [pool.submit(slowloris, port) for _ in range(3)]
        statuses = list(pool.map(lambda r: status_of(port, r), requests))
        cut_off = [s.result() for s in slow]
    answered = [s for s in statuses if s is not None]
    silent = [r[:60] for r, s in zip(requests, statuses, strict=True) if s is None]
    assert not silent, f"requests that got no answer at all: {silent}"
    wrong = [(s, r[:60]) for r, s in zip(requests, statuses, strict=True)
             if s is not None and not 400 <= s < 500]
    assert not wrong, f"answers other than 4xx: {wrong[:5]}"
    # 8 clients and 3 slow ones never reach the 64 connections: none is turned away.
    assert 429 not in answered
    # A slowloris is cut off after IDLE_S, however steadily it trickles.
    assert all(answer != b"still open after 16s" for answer in cut_off), cut_off

    assert call(port, "/livez")[0] == 200
    runs = [event_time(r) for r in d.events("check.result", check="good")
            if event_time(r) >= began]
    gaps = [b - a for a, b in itertools.pairwise(runs)]
    assert len(runs) > 10 and max(gaps) < 1.0, f"the check lost its 300ms rhythm: {gaps}"
    assert not d.problems(), d.problems()
    assert d.stop() == 0


def test_token_file_ipv6_loopback_and_a_taken_port(write_config, daemon, tmp_path) -> None:
    (tmp_path / "token").write_text(f"{TOKEN}\n")
    port = free_port()
    d = daemon(write_config(f"""
        [daemon]
        state_dir = "state"
        http = "[::1]:{port}"
        http_token_file = "token"
        [checks.sys]
        type = "system"
        interval = "1s"
    """)).start()
    d.wait_for("http.listening")
    conn = http.client.HTTPConnection("::1", port, timeout=10)
    conn.request("GET", "/api/v1/checks", headers=AUTH)
    assert conn.getresponse().status == 200
    conn.close()

    # A reload reads the token file again and moves the server to a new address.
    (tmp_path / "token").write_text("rotated\n")
    moved = free_port()
    d.config.write_text(d.config.read_text().replace(f"[::1]:{port}", f"127.0.0.1:{moved}"))
    d.signal(signal.SIGHUP)
    d.wait_for("http.listening", count=2)
    assert call(moved, "/api/v1/checks", headers=AUTH)[0] == 401
    assert call(moved, "/api/v1/checks", headers={"Authorization": "Bearer rotated"})[0] == 200
    d.stop()

    # Its port taken by another program: said once, and vigil runs on without HTTP.
    with socket.create_server(("127.0.0.1", 0)) as taken:
        config = write_config(f"""
            [daemon]
            state_dir = "state2"
            http = "127.0.0.1:{taken.getsockname()[1]}"
            [checks.sys]
            type = "system"
            interval = "1s"
        """, name="taken.toml")
        second = daemon(config).start()
        unavailable = second.wait_for("http.unavailable")[0]
        assert "Address already in use" in unavailable["error"]
        second.wait_for("check.result", count=2, check="sys")
        assert second.stop() == 0


def test_every_metric_family_the_readme_lists_appears_and_moves(write_config, daemon,
                                                                tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PYTHONPATH", FIXTURES)
    port = free_port()
    flip, slow, svc = tmp_path / "flip", tmp_path / "slow", tmp_path / "svc"
    flip.write_text("CRIT")
    slow.write_text("0")
    svc.write_text("CRIT")
    d = daemon(write_config(f"""
        [daemon]
        state_dir = "state"
        plugins = ["misbehaving"]
        http = "127.0.0.1:{port}"
        [services.svc]
        manager = "flag"
        status_file = "{svc}"
        delay_s = 1.5
        restarts = 1
        [checks.flip]
        type = "fixed"
        status_file = "{flip}"
        interval = "300ms"
        [checks.slow]
        type = "fixed"
        sleep_file = "{slow}"
        interval = "300ms"
        [checks.hang]
        type = "hang"
        interval = "300ms"
        timeout = "200ms"
        [checks.guard]
        type = "fixed"
        status_file = "{svc}"
        service = "svc"
        interval = "300ms"
        fall = 1
    """)).start()

    def sample(name: str, **labels: str) -> float:
        """The sample's value, once it is on /metrics (a check that has not run yet has
        no status code)."""
        want = f'{name}{{{",".join(f"{k}={chr(34)}{v}{chr(34)}" for k, v in labels.items())}}} '
        found: list[float] = []

        def seen() -> bool:
            text = call(port, "/metrics")[2].decode()
            found[:] = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                        if line.startswith(want)]
            return bool(found)

        wait_until(seen, 10, f"{want.strip()} on /metrics")
        return found[0]

    # While the first heal runs (the flag manager takes 1.5 s): healing.
    wait_until(lambda: sample("vigil_service_healing", service="svc") == 1.0, 10,
               "vigil_service_healing 1 during the heal")
    timeouts = sample("vigil_check_problems_total", check="hang", problem="timeout")
    assert sample("vigil_check_status_code", check="flip") == 2.0
    before = sample("vigil_check_duration_seconds", check="slow")
    flip.write_text("OK")
    slow.write_text("0.25")
    wait_until(lambda: sample("vigil_check_status_code", check="flip") == 0.0, 10,
               "the status code to move")
    wait_until(lambda: sample("vigil_check_duration_seconds", check="slow") >= 0.25, 10,
               "the duration to move")
    assert before < 0.25
    crit = sample("vigil_check_runs_total", check="flip", status="CRIT")
    ok = sample("vigil_check_runs_total", check="flip", status="OK")
    wait_until(lambda: sample("vigil_check_runs_total", check="flip", status="OK") > ok, 10,
               "OK runs counted")
    assert sample("vigil_check_runs_total", check="flip", status="CRIT") == crit
    wait_until(lambda: sample("vigil_check_problems_total", check="hang",
                              problem="timeout") > timeouts, 10, "timeouts counted")
    wait_until(lambda: sample("vigil_service_healing", service="svc") == 0.0, 10,
               "the heal over")
    # Down again: the budget (1) is spent, and vigil gives up.
    assert sample("vigil_service_given_up", service="svc") == 0.0
    svc.write_text("CRIT")
    d.wait_for("heal.gave_up", service="svc")
    wait_until(lambda: sample("vigil_service_given_up", service="svc") == 1.0, 10,
               "given up on /metrics")
    assert d.stop() == 0
