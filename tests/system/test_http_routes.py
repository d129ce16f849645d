"""The HTTP server of a real daemon, route by route: every method the route table
declares is served."""

from __future__ import annotations

import http.client
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
