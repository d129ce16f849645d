"""The HTTP surface of a real daemon: the probes, the token rules, the JSON API, the
event stream, /metrics read by promtool and scraped by a real Prometheus."""

from __future__ import annotations

import http.client
import json
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import FIXTURES, Daemon, free_port, wait_until
from vigil._metrics import parse_metric

TOKEN = "t0ken-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def call(port: int, path: str, method: str = "GET", headers: dict[str, str] | None = None,
         body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        answer = conn.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read()
    finally:
        conn.close()


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
    status, _, body = call(port, "/readyz?verbose")
    lines = body.decode().splitlines()
    assert "[-]bad failed: told to be CRIT" in lines and "[+]good ok" in lines
    assert lines[-1] == "readyz check failed"
    assert call(port, "/readyz?exclude=bad")[:1] == (200,)
    status, headers, body = call(port, "/health")
    assert status == 503 and headers["Content-Type"] == "application/health+json"
    health = json.loads(body)
    assert health["status"] == "fail"
    assert health["checks"]["bad"][0]["status"] == "fail"
    assert health["checks"]["good"][0] | {"observedValue": {"value_ms": 1.5}} == \
        health["checks"]["good"][0] and health["checks"]["good"][0]["status"] == "pass"
    status, headers, body = call(port, "/badge/good.svg")
    assert status == 200 and headers["Content-Type"] == "image/svg+xml"
    assert b"good: ok" in body and b"<svg" in body
    assert b"bad: failing" in call(port, "/badge/bad.svg")[2]
    assert call(port, "/badge/nope.svg")[0] == 404
    # HEAD says the same without a body; the probes need no token.
    assert call(port, "/livez", "HEAD")[::2] == (200, b"")

    flag.write_text("OK")
    wait_until(lambda: call(port, "/readyz")[0] == 200, 10, "ready once bad passes")
    status, _, body = call(port, "/health")
    assert status == 200 and json.loads(body)["status"] == "pass"
    d.stop()


def test_a_wedged_scheduler_fails_livez(served) -> None:
    d, port, _ = served(extra='[checks.wedge]\ntype = "wedge"\ninterval = "1s"\n', ready=False)
    d.wait_for("check.result", check="wedge")
    wait_until(lambda: call(port, "/livez")[0] == 503, 10, "livez to fail")
    assert call(port, "/livez")[2].startswith(b"wedged: no scheduler heartbeat for ")


def test_the_token_guards_the_api_and_every_action(served) -> None:
    d, port, _ = served()
    for path in ("/metrics", "/api/v1/checks", "/api/v1/events"):
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


def test_without_a_token_reads_are_open_and_actions_closed(served) -> None:
    _, port, _ = served(token="")
    assert call(port, "/api/v1/checks")[0] == 200
    status, _, body = call(port, "/api/v1/checks/good/run", "POST")
    assert status == 403 and b"http_token" in body


def test_the_event_stream_carries_results_changes_and_heals(served) -> None:
    d, port, flag = served()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/api/v1/events", headers=AUTH)
    stream = conn.getresponse()
    assert stream.status == 200 and stream.getheader("Content-Type") == "text/event-stream"
    flag.write_text("OK")
    seen: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + 10
    while "check.state_changed" not in seen and time.monotonic() < deadline:
        line = stream.fp.readline().decode()
        if line.startswith("data: "):
            event = json.loads(line[6:])
            seen.setdefault(event["event"], event)
    conn.close()
    assert seen["check.result"]["check"] in ("good", "bad")
    change = seen["check.state_changed"]
    assert (change["check"], change["old"], change["new"]) == ("bad", "FAILING", "OK")
    d.stop()


def test_metrics_pass_promtool_and_a_real_prometheus_scrapes_them(served, tmp_path) -> None:
    promtool, prometheus = shutil.which("promtool"), shutil.which("prometheus")
    assert promtool and prometheus, "install the Debian package prometheus (promtool too)"
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

    web = free_port()
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
    server = subprocess.Popen(
        [prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{web}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        query = urllib.parse.quote("vigil_check_up")

        def scraped() -> list[dict[str, Any]]:
            try:
                with urllib.request.urlopen(
                        f"http://127.0.0.1:{web}/api/v1/query?query={query}", timeout=5) as r:
                    return json.load(r)["data"]["result"]
            except OSError:
                return []

        wait_until(lambda: len(scraped()) == 2, 60, "Prometheus to scrape vigil_check_up")
        by_check = {s["metric"]["check"]: s["value"][1] for s in scraped()}
        assert by_check == {"good": "1", "bad": "0"}
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    d.stop()


def test_a_removed_check_leaves_no_series(served) -> None:
    d, port, _ = served()
    config = d.config.read_text()
    d.config.write_text(config[:config.index("[checks.bad]")])
    d.signal(signal.SIGHUP)
    d.wait_for("config.reloaded")
    text = call(port, "/metrics", headers=AUTH)[2].decode()
    assert 'check="good"' in text and 'check="bad"' not in text


@pytest.mark.unit
def test_plugin_metric_names_carry_their_labels() -> None:
    assert parse_metric('role_requests{role="planner"}') == ("role_requests",
                                                             {"role": "planner"})
    assert parse_metric('x{a="1", b="say \\"hi\\""}') == ("x", {"a": "1", "b": 'say "hi"'})
    assert parse_metric("latency_ms") == ("latency_ms", {})
    assert parse_metric("bad name") is None and parse_metric('x{a=1}') is None
