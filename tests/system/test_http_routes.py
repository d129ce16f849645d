"""The HTTP server of a real daemon, route by route: every method the route table
declares is served, a request that stalls is answered 408, and /metrics says what each
state means."""

from __future__ import annotations

import http.client
import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.helpers import FIXTURES, Daemon, call, free_port

TOKEN = "t0ken-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def served(write_config, daemon, tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> tuple[Daemon, int]:
    """A daemon serving HTTP on a free port: the check `good`, guarding the service
    `svc`, which its flag says is up."""
    monkeypatch.setenv("PYTHONPATH", FIXTURES)
    port = free_port()
    flag = tmp_path / "flag"
    flag.write_text("OK")
    d = daemon(write_config(f"""
        [daemon]
        state_dir = "state"
        plugins = ["misbehaving"]
        http = "127.0.0.1:{port}"
        http_token = "{TOKEN}"
        [services.svc]
        manager = "flag"
        status_file = "{flag}"
        [checks.good]
        type = "fixed"
        status_file = "{flag}"
        service = "svc"
        interval = "300ms"
    """)).start()
    d.wait_for("http.listening")
    d.wait_for("check.result", check="good")
    return d, port


def concrete(method: str, pattern: str) -> str:
    """A path the route's pattern matches, naming what the daemon has."""
    from vigil._web.api import NAME

    name = "svc" if "/services/" in pattern or "/maintenance/" in pattern else "good"
    path = pattern.replace(NAME, name).replace("\\.", ".")
    return path + ("?for=5m" if method == "POST" and "/maintenance/" in path else "")


def status_only(port: int, method: str, path: str) -> int:
    """The status of the answer, its body unread (the event stream never ends)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, headers=AUTH)
        return conn.getresponse().status
    finally:
        conn.close()


def test_every_method_of_every_route_is_served(served) -> None:
    from vigil._web.api import ROUTES

    _, port = served
    # A window is opened (POST) before it is ended (DELETE).
    routes = sorted(ROUTES, key=lambda route: route[0] == "DELETE")
    answers = {(method, concrete(method, pattern)): status_only(
        port, method, concrete(method, pattern)) for method, pattern, *_ in routes}
    wrong = {route: status for route, status in answers.items()
             if not 200 <= status < 400}
    assert not wrong, f"routes the server does not serve as declared: {wrong}"
    assert ("DELETE", "/api/v1/maintenance/svc") in answers
    # And a method no route of the path declares is refused with the ones that are.
    status, headers, _ = call(port, "/api/v1/maintenance/svc", "PUT", AUTH)
    assert status == 405
    status, headers, _ = call(port, "/api/v1/checks", "DELETE", AUTH)
    assert status == 405 and headers["Allow"] == "GET"


def answer_to(port: int, request: bytes) -> tuple[bytes, float]:
    """What the daemon sends back to ``request`` (sent at once, then nothing more) before
    it closes, and how long that took."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        began = time.monotonic()
        conn.sendall(request)
        got = b""
        while chunk := conn.recv(4096):
            got += chunk
        return got, time.monotonic() - began


def test_a_request_that_stalls_is_answered_408(served) -> None:
    from vigil._web.http import IDLE_S, SOCKET_TIMEOUT_S

    d, port = served
    stalls = {
        "head": b"GET /livez HTTP/1.1\r\nHost: x\r\n",
        "body": (f"POST /api/v1/services/svc/heal HTTP/1.1\r\nHost: x\r\n"
                 f"Authorization: Bearer {TOKEN}\r\nContent-Length: 10\r\n\r\n{{}}"
                 ).encode(),
        "nothing": b"",
    }
    with ThreadPoolExecutor(len(stalls)) as pool:
        got = dict(zip(stalls, pool.map(lambda r: answer_to(port, r), stalls.values()),
                       strict=True))
    for kind in ("head", "body"):
        answer, took = got[kind]
        assert answer == b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n" \
                         b"Connection: close\r\n\r\n", (kind, answer)
        assert IDLE_S <= took < SOCKET_TIMEOUT_S, (kind, took)
    # A connection that never began a request (a client's kept-alive one) gets no 408,
    # which the client would take for the answer to its next request.
    assert got["nothing"][0] == b""
    # What a cut-off request asked for is not done: the one heal is the one asked whole.
    assert call(port, "/api/v1/services/svc/heal", "POST", AUTH)[0] == 200
    d.wait_for("heal.requested", service="svc")
    assert len(d.events("heal.requested")) == 1
    assert not d.problems()


def test_the_help_of_the_state_metric_names_every_state(served) -> None:
    from vigil._store.records import State

    _, port = served
    status, _, body = call(port, "/metrics", headers=AUTH)
    assert status == 200
    help_line = re.search(r"^# HELP vigil_check_state (.*)$", body.decode(), re.M)
    assert help_line is not None
    for state in State:
        assert state.value in help_line[1], (state, help_line[1])
