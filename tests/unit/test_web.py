"""The web part in-process: its routes, the metrics' names, the event stream's listeners."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import FIXTURES
from vigil import Result, Status
from vigil._config import loader as _config
from vigil._engine.checktable import CheckTable
from vigil._engine.runner import Outcome, Runner
from vigil._heal.healer import Healer
from vigil._store.maintenance import Window
from vigil._store.store import Store
from vigil._web.access import Access
from vigil._web.api import Reply, Stream, WebApi
from vigil._web.metrics import parse_metric


def test_a_listener_that_falls_behind_is_told_how_many_it_missed() -> None:
    from vigil._engine.events import BACKLOG, EventHub

    hub = EventHub()
    listener = hub.listen()
    for number in range(BACKLOG + 5):
        hub.publish("check.result", number=number)
    events = listener.take(timeout=1)
    assert events[0] == {"event": "stream.dropped", "dropped": 5}
    assert [e["number"] for e in events[1:]] == list(range(5, BACKLOG + 5))
    hub.forget(listener)
    assert not hub.listening


def test_plugin_metric_names_carry_their_labels() -> None:
    assert parse_metric('role_requests{role="planner"}') == ("role_requests",
                                                             {"role": "planner"})
    assert parse_metric('x{a="1", b="say \\"hi\\""}') == ("x", {"a": "1", "b": 'say "hi"'})
    assert parse_metric("latency_ms") == ("latency_ms", {})
    assert parse_metric("bad name") is None and parse_metric('x{a=1}') is None


TOKEN = "s3cret"


@pytest.fixture
def web(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., WebApi]]:
    """The web API over a check table of two checks (db FAILING, web not run yet), with
    no HTTP server: requests are answered by ``answer`` directly."""
    monkeypatch.syspath_prepend(FIXTURES)
    config = tmp_path / "config.toml"
    config.write_text('[daemon]\nstate_dir = "s"\nplugins = ["misbehaving"]\n'
                      '[checks.db]\ntype = "fixed"\nfall = 1\n[checks.web]\ntype = "fixed"\n')
    cfg = _config.load(str(config))
    stopping = threading.Event()
    store = Store(tmp_path / "s", None)
    store.load()
    healer = Healer(lambda _s: (), lambda _s: [])
    table = CheckTable(Runner(stopping), healer, stopping, store)
    table.install(cfg, {})
    table.scheduler.start({})
    table._finish(table.runtimes["db"], Outcome(Result(Status.CRIT, "refused"), 1.0))

    def make(token: str = TOKEN, **access: Any) -> WebApi:
        return WebApi(table, healer, table.events, tmp_path / "s", Access(token, **access),
                      time.monotonic)

    yield make
    stopping.set()
    table.scheduler.shutdown()
    store.close()


def get(api: WebApi, path: str, method: str = "GET", token: str | None = None,
        query: str = "", **headers: str) -> Reply:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    reply = api.answer(method, path, query, headers)
    assert isinstance(reply, Reply), path
    return reply


def message(reply: Reply) -> str:
    return str(json.loads(reply.body)["error"])


def test_routes_answer_by_path_and_method(web) -> None:
    api = web()
    assert get(api, "/livez").status == 200
    ready = get(api, "/readyz", query="verbose", token=TOKEN)
    assert ready.status == 503 and b"[-]db failed: refused" in ready.body
    home = get(api, "/")
    assert home.status == 302 and home.headers["Location"] == "/status"
    badge = get(api, "/badge/db.svg", token=TOKEN)
    assert badge.status == 200 and badge.content_type == "image/svg+xml"
    assert badge.headers["Cross-Origin-Resource-Policy"] == "same-origin"
    assert isinstance(api.answer("GET", "/api/v1/events", "",
                                 {"Authorization": f"Bearer {TOKEN}"}), Stream)
    checks = json.loads(get(api, "/api/v1/checks", token=TOKEN).body)["checks"]
    assert checks["db"]["state"] == "FAILING" and checks["web"]["last"] is None
    page = json.loads(get(api, "/api/v1/checks/db", token=TOKEN).body)
    assert page["name"] == "db" and page["last"]["summary"] == "refused"
    run = get(api, "/api/v1/checks/web/run", "POST", TOKEN)
    assert run.status == 202 and json.loads(run.body) == {"check": "web", "queued": True}


def test_what_is_not_there_is_404_and_names_what_is(web) -> None:
    api = web()
    assert message(get(api, "/nope")) == "no such page: /nope"
    assert message(get(api, "/api/v2/checks")) == "the API is under /api/v1/"
    assert "POST checks/NAME/run" in message(get(api, "/api/v1/checks/db/x/y"))
    assert get(api, "/badge/nope.svg", token=TOKEN).status == 404
    for path in ("/api/v1/checks/nope", "/api/v1/services/nope"):
        assert get(api, path, token=TOKEN).status == 404, path
    assert get(api, "/api/v1/checks/nope/run", "POST", TOKEN).status == 404


def test_a_known_path_with_another_method_is_405_with_allow(web) -> None:
    api = web()
    for method, path, allowed in (("POST", "/livez", "GET"), ("DELETE", "/status", "GET"),
                                  ("POST", "/api/v1/checks", "GET"),
                                  ("GET", "/api/v1/checks/db/run", "POST")):
        reply = get(api, path, method, TOKEN)
        assert (reply.status, reply.headers.get("Allow")) == (405, allowed), (method, path)


def test_the_token_guards_reads_when_set_and_actions_always(web) -> None:
    api = web()
    for path in ("/metrics", "/api/v1/checks", "/api/v1/alerts"):
        refused = get(api, path)
        assert refused.headers["WWW-Authenticate"] == 'Bearer realm="vigil"', path
        assert refused.status == 401 and get(api, path, token="wrong").status == 401, path
        assert get(api, path, token=TOKEN).status == 200, path
    for path in ("/livez", "/readyz"):
        assert get(api, path).status in (200, 503), path  # the probes: open, token or not
    # The page and what it shows: the token's (a browser logs in with it), or anyone's
    # with public_status.
    login = "Basic " + base64.b64encode(f"me:{TOKEN}".encode()).decode()
    for path, query in (("/health", ""), ("/status", ""), ("/badge/db.svg", ""),
                        ("/status/db.json", ""), ("/readyz", "verbose")):
        refused = get(api, path, query=query)
        assert refused.status == 401, path
        assert refused.headers["WWW-Authenticate"].startswith('Basic realm="vigil"'), path
        assert get(api, path, query=query, Authorization=login).status in (200, 503), path
        assert get(web(public_status=True), path, query=query).status in (200, 503), path
    assert not isinstance(api.answer("GET", "/api/v1/events", "", {}), Stream)
    open_api = web(token="")
    assert get(open_api, "/api/v1/checks").status == 200
    action = get(open_api, "/api/v1/checks/db/run", "POST")
    assert action.status == 403 and "http_token" in message(action)


def test_wrong_tokens_are_slowed_and_the_right_one_never_waits(web) -> None:
    api = web()
    for _ in range(6):
        wrong = get(api, "/metrics", token="guess")
        assert wrong.status == 401 and wrong.delay >= 1.0
    right = get(api, "/metrics", token=TOKEN)
    assert right.status == 200 and right.delay == 0, "another's guesses lock no one out"


def test_an_action_takes_a_bearer_token_from_no_other_sites_page(web) -> None:
    api = web()
    login = "Basic " + base64.b64encode(f"me:{TOKEN}".encode()).decode()
    # A browser sends its login by itself, with any page's form: never enough to act.
    by_login = get(api, "/api/v1/checks/web/run", "POST", Authorization=login)
    assert by_login.status == 401 and "bearer" in message(by_login)
    for header, value in (("Sec-Fetch-Site", "cross-site"), ("Sec-Fetch-Site", "same-site"),
                          ("Origin", "http://localhost:8000"), ("Origin", "null")):
        refused = get(api, "/api/v1/checks/web/run", "POST", TOKEN, Host="localhost:8787",
                      **{header: value})
        assert refused.status == 403 and "another site's page" in message(refused), value
    own = get(api, "/api/v1/checks/web/run", "POST", TOKEN, Host="localhost:8787",
              Origin="http://localhost:8787", **{"Sec-Fetch-Site": "same-origin"})
    assert own.status == 202


def test_only_its_own_host_names_are_answered(web) -> None:
    # DNS rebinding: a page of evil.example whose name now resolves to 127.0.0.1.
    api = web(allowed_hosts=("vigil.example.net", "*.lan"), host="127.0.0.1")
    for host in ("evil.example:8787", "evil.example", "127.0.0.1.evil.example", "lan",
                 "[::1]:8787.evil", "[::1]x"):
        refused = get(api, "/livez", Host=host)
        assert refused.status == 421 and "allowed_hosts" in message(refused), host
    for host in ("127.0.0.1:8787", "localhost:8787", "[::1]:8787", "LOCALHOST.",
                 "app.localhost", "192.168.1.5:8787", "vigil.example.net",
                 "box.lan:8787"):
        assert get(api, "/livez", Host=host).status == 200, host
    assert get(web(host="vigil.internal"), "/livez", Host="vigil.internal:80").status == 200


def test_a_name_in_a_path_is_percent_decoded(web) -> None:
    api = web()
    assert message(get(api, "/api/v1/checks/my%20check", token=TOKEN)) == (
        "no check named 'my check'")
    assert get(api, "/api/v1/checks/d%62", token=TOKEN).status == 200  # "db"


def test_a_probe_page_is_kept_until_a_result_moves_the_table(web) -> None:
    api = web()
    first = get(api, "/health", token=TOKEN)
    assert first.status == 503 and get(api, "/health", token=TOKEN) is first
    assert get(api, "/health", query="x", token=TOKEN) is not first, "a variant is never kept"
    api.checks._finish(api.checks.runtimes["db"], Outcome(Result(Status.OK, "up"), 1.0))
    again = get(api, "/health", token=TOKEN)
    assert again is not first and json.loads(again.body)["checks"]["db"][0]["status"] == \
        "fail", "one pass is not rise (2): still FAILING"


def test_a_failing_check_under_maintenance_fails_neither_probe(web) -> None:
    api = web()
    assert get(api, "/readyz").status == 503 and get(api, "/health", token=TOKEN).status == 503
    api.checks.maintenance.update([Window("db", None, "upgrade", time.time(), "a test")],
                                  time.time())
    api.checks._finish(api.checks.runtimes["db"], Outcome(Result(Status.CRIT, "down"), 1.0))
    ready = get(api, "/readyz", query="verbose", token=TOKEN)
    assert ready.status == 200 and b"[+]db ok (under maintenance: not judged)" in ready.body
    health = json.loads(get(api, "/health", query="x", token=TOKEN).body)
    assert health["checks"]["db"][0]["status"] == "warn" and health["status"] == "warn"
