"""The HTTP surface beside a browser and other local users: a page that rebinds its own
name to 127.0.0.1 reads nothing, a hostile check's words never break the JSON, the token
guards what it should, and slow or greedy clients never starve the probes."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.helpers import Daemon, call, free_port, wait_until

TOKEN = "a-token-of-24-characters"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: What a check prints: quotes, and a secret at its end, whose masking in the JSON text
#: once took the closing quote with it.
WORDS = 'OK said "hello" \\\\ token=x1y2z3'


@pytest.fixture
def serve(write_config, daemon) -> Callable[..., tuple[Daemon, int]]:
    def start(daemon_keys: str = "", checks: str = "") -> tuple[Daemon, int]:
        port = free_port()
        program = f"import sys; sys.stdout.write({WORDS!r})"
        config = write_config(f"""
            [daemon]
            state_dir = "state"
            log_level = "debug"
            http = "127.0.0.1:{port}"
            {daemon_keys}
            [services.svc]
            manager = "command"
            start = ["{sys.executable}", "-c", "import time; time.sleep(60)", "--password=pw9"]
            [checks.talker]
            type = "exec"
            command = ["{sys.executable}", "-c", {json.dumps(program)}]
            service = "svc"
            interval = "500ms"
            {checks}
        """)
        d = daemon(config).start()
        d.wait_for("http.listening")
        d.wait_for("check.result", check="talker")
        return d, port

    return start


def get(port: int, path: str, host: str | None = None,
        headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    sent = {"Host": host or f"127.0.0.1:{port}", **(headers or {})}
    status, _, body = call(port, path, headers=sent)
    return status, body


def test_a_rebinding_page_reads_nothing(serve) -> None:
    _d, port = serve('allowed_hosts = ["vigil.lan", "*.home.arpa"]')
    for path in ("/api/v1/services", "/api/v1/checks", "/metrics", "/status",
                 "/status/talker.json", "/health", "/api/v1/alerts", "/api/v1/events",
                 "/livez"):
        status, body = get(port, path, host=f"evil.example:{port}")
        assert status == 421 and b"allowed_hosts" in body, (path, status, body[:200])
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "vigil.lan",
                 f"box.home.arpa:{port}", f"[::1]:{port}"):
        assert get(port, "/api/v1/services", host=host)[0] == 200, host


def test_a_hostile_checks_words_keep_every_answer_valid_json(serve) -> None:
    d, port = serve(f'http_token = "{TOKEN}"')
    for path in ("/api/v1/checks", "/api/v1/checks/talker", "/status/talker.json",
                 "/api/v1/services", "/health"):
        status, body = get(port, path, headers=AUTH)
        text = body.decode()
        assert status in (200, 503) and json.loads(text), path  # valid JSON
        assert "x1y2z3" not in text and "pw9" not in text, (path, text[:300])
    summary = json.loads(get(port, "/api/v1/checks/talker", headers=AUTH)[1])["last"][
        "summary"]
    assert summary == 'OK said "hello" \\\\ token=***', summary
    # The heal's own answer, with a start command that carries a password.
    status, _, body = call(port, "/api/v1/services/svc/heal", "POST",
                           {**AUTH, "Host": "127.0.0.1"})
    answer = json.loads(body)
    assert status == 200 and answer["ok"], answer
    assert "--password=***" in answer["command"]
    # The event stream: every event is JSON, masked.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(f"GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     f"Authorization: Bearer {TOKEN}\r\n\r\n".encode())
        seen = b""
        while seen.count(b"event: check.result") < 2:
            seen += conn.recv(65536)
    datas = [line[6:] for line in seen.decode().splitlines() if line.startswith("data: ")]
    assert datas and all(json.loads(data) for data in datas)
    assert "x1y2z3" not in seen.decode()
    d.stop()


def test_a_token_guards_the_page_unless_it_is_public(serve) -> None:
    _d, port = serve(f'http_token = "{TOKEN}"')
    login = {"Authorization": "Basic " + base64.b64encode(f"me:{TOKEN}".encode()).decode()}
    for path in ("/status", "/status/talker.json", "/health", "/readyz?verbose",
                 "/badge/talker.svg", "/api/v1/events"):
        assert get(port, path)[0] == 401, path
    for path in ("/status", "/status/talker.json", "/health", "/readyz?verbose",
                 "/badge/talker.svg"):
        assert get(port, path, headers=login)[0] in (200, 503), path
    assert get(port, "/livez")[0] == 200 and get(port, "/readyz")[0] in (200, 503)
    assert get(port, "/readyz?exclude=talker")[0] == 401, "what fails is the token's"
    began = time.monotonic()
    assert get(port, "/metrics", headers={"Authorization": "Bearer guess"})[0] == 401
    assert time.monotonic() - began >= 1.0, "a wrong token is answered after a second"
    began = time.monotonic()
    assert get(port, "/metrics", headers=AUTH)[0] == 200
    assert time.monotonic() - began < 1.0, "the right one never waits"
    # A browser's login reads, never acts: another page could make the browser send it.
    assert call(port, "/api/v1/checks/talker/run", "POST", login)[0] == 401
    refused = call(port, "/api/v1/checks/talker/run", "POST",
                   {**AUTH, "Origin": "http://localhost:9999"})
    assert refused[0] == 403, refused


def test_public_status_opens_the_page_and_badges_stay_on_their_own_site(serve) -> None:
    _d, port = serve(f'http_token = "{TOKEN}"\npublic_status = true')
    for path in ("/status", "/status/talker.json", "/health", "/badge/talker.svg"):
        assert get(port, path)[0] in (200, 503), path
    assert get(port, "/api/v1/checks")[0] == 401, "the API is still the token's"
    _, headers, _ = call(port, "/badge/talker.svg")
    assert headers["Cross-Origin-Resource-Policy"] == "same-origin"


def test_names_are_percent_decoded(serve) -> None:
    _d, port = serve(checks="""
        [checks."my check"]
        type = "tcp"
        port = 1
        [checks."a/b"]
        type = "tcp"
        port = 1
        [checks."☃"]
        type = "tcp"
        port = 1
    """)
    for name in ("my check", "a/b", "☃"):
        status, body = get(port, f"/api/v1/checks/{quote(name, safe='')}")
        assert status == 200 and json.loads(body)["name"] == name, (name, body[:200])


def raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request)
        return conn.recv(4096)


def test_requests_a_proxy_could_read_otherwise_are_refused(serve) -> None:
    _d, port = serve()
    head = b"POST /api/v1/checks/talker/run HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    twice = raw(port, head + b"Content-Length: 2\r\nContent-Length: 4\r\n\r\n{}{}")
    assert twice.startswith(b"HTTP/1.1 400"), twice
    arabic = raw(port, head + "Content-Length: ٢\r\n\r\n{}".encode())
    assert arabic.startswith(b"HTTP/1.1 400"), arabic
    deep = b"[" * 100_000 + b"]" * 100_000
    nested = raw(port, head + f"Content-Length: {len(deep)}\r\n\r\n".encode() + deep)
    assert nested.startswith(b"HTTP/1.1 413") or nested.startswith(b"HTTP/1.1 400"), nested
    deep = b"[" * 30_000 + b"]" * 30_000
    nested = raw(port, head + f"Content-Length: {len(deep)}\r\n\r\n".encode() + deep)
    assert nested.startswith(b"HTTP/1.1 400"), nested


@pytest.mark.parametrize("how", ["idle", "trickling head", "trickling body"])
def test_slow_clients_from_many_addresses_never_starve_the_probes(serve, how: str) -> None:
    from vigil._web.http import MAX_CONNECTIONS

    _d, port = serve()
    sent = {"idle": b"",
            "trickling head": b"GET /api/v1/checks HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",
            "trickling body": b"POST /api/v1/checks/talker/run HTTP/1.1\r\n"
                              b"Host: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n{"}[how]
    held = []
    try:
        # Any local user may send from 127.0.0.2, .3...: a cap per address is not enough.
        for n in range(MAX_CONNECTIONS + 16):
            conn = socket.create_connection(("127.0.0.1", port), timeout=10,
                                            source_address=(f"127.0.0.{2 + n % 4}", 0))
            if sent:
                conn.sendall(sent)
            held.append(conn)
        answered = [get(port, "/livez")[0] for _ in range(20)]
        assert answered == [200] * 20, answered
        assert get(port, "/readyz")[0] in (200, 503)
    finally:
        for conn in held:
            conn.close()


def test_the_request_log_masks_a_token_in_a_query(serve) -> None:
    d, port = serve()
    get(port, "/livez?access_token=qq77rr&sig=ss88tt")
    wait_until(lambda: any("/livez" in str(e.get("said")) for e in d.events("http.request")),
               5, "the request's debug line")
    log = Path(d.log).read_text()
    assert "qq77rr" not in log and "ss88tt" not in log


@pytest.mark.parametrize("mode", [0o644, 0o600])
def test_a_token_file_others_can_read_is_warned_of(serve, tmp_path, mode: int) -> None:
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    token.chmod(mode)
    d, _port = serve(f'http_token_file = "{token}"')
    d.wait_for("daemon.started")
    warned = d.events("http.token_readable")
    assert bool(warned) is (mode == 0o644), warned
    if warned:
        assert warned[0]["hint"] == f"other users can read it; chmod 600 {token}"


def test_an_inline_token_in_a_config_others_can_read_is_warned_of(serve) -> None:
    d, _port = serve(f'http_token = "{TOKEN}"')
    d.wait_for("daemon.started")
    warned = d.events("http.token_readable")
    assert warned and warned[0]["path"] == str(d.config), warned


def test_a_token_file_with_a_bom_is_read_without_it(serve, tmp_path) -> None:
    token = tmp_path / "token"
    token.write_bytes(b"\xef\xbb\xbf" + TOKEN.encode() + b"\n")
    token.chmod(0o600)
    _d, port = serve(f'http_token_file = "{token}"')
    assert get(port, "/metrics", headers=AUTH)[0] == 200


def test_a_flood_of_wrong_tokens_never_keeps_the_right_one_out(serve) -> None:
    # Another local user guesses from many loopback addresses at once: each guess waits
    # a second for its answer, holding none of the slots the right token needs.
    import threading

    _d, port = serve(f'http_token = "{TOKEN}"')
    stop = threading.Event()

    def guess(n: int) -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", port), timeout=10,
                    source_address=(f"127.0.0.{2 + n % 8}", 0)) as conn:
                conn.sendall(b"GET /api/v1/checks HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             b"Authorization: Bearer guess\r\n\r\n")
                conn.recv(64)

    guessers = [threading.Thread(target=guess, args=(n,), daemon=True) for n in range(96)]
    for thread in guessers:
        thread.start()
    try:
        time.sleep(1.5)  # the guesses are all waiting out their second now
        answered = []
        for _ in range(10):
            began = time.monotonic()
            answered.append((get(port, "/api/v1/checks", headers=AUTH)[0],
                             time.monotonic() - began < 0.9))
        assert answered == [(200, True)] * 10, answered
    finally:
        stop.set()
        for thread in guessers:
            thread.join(15)
