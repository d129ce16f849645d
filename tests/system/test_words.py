"""What a new user reads: the command line's words, the plain lines a command prints
about a broken plugin, the log's place, the heal's progress, plurals and summaries, and
the HTTP answers a slow or unauthorised client gets."""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time

import pytest

from tests.helpers import call, free_port, run_in_terminal, run_vigil, vigil_command, wait_until
from vigil._cli.parser import parser


def test_version_and_every_subcommand_and_argument_say_what_they_are() -> None:
    for flag in ("--version", "-V"):
        done = run_vigil(flag)
        assert done.returncode == 0 and done.stdout.startswith("vigil 0."), done
    top = parser()
    commands = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    assert len(commands.choices) >= 13
    for name, sub in commands.choices.items():
        assert sub.description and sub.description.endswith("."), name
        silent = [a.dest for a in sub._actions if not a.help]
        assert not silent, f"vigil {name}: arguments without a help text: {silent}"


def test_a_bad_duration_says_what_a_good_one_is(write_config) -> None:
    config = write_config('[checks.db]\ntype = "tcp"\nport = 1\n')
    for argv in (["silence", "db", "--for", "5x"], ["history", "db", "--since", "5x"]):
        done = run_vigil(*argv, "-c", str(config))
        assert done.returncode == 2
        assert "bad duration '5x' (use 250ms, 10s, 5m, 1h...)" in done.stderr, done.stderr
        assert "invalid parse_duration value" not in done.stderr


def test_init_takes_c_after_the_command_and_counts_read_right(tmp_path) -> None:
    target = tmp_path / "made.toml"
    done = run_vigil("init", "-c", str(target))
    assert done.returncode == 0 and target.exists(), done.stderr
    valid = run_vigil("config", "validate", "-c", str(target))
    assert valid.stdout.strip() == f"{target}: valid (1 check, 0 services)"


def test_config_errors_come_in_the_order_of_the_file(tmp_path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[checks.b]\ntype = "tcp"\nport = "x"\n\n[daemon]\nlog_level = "loud"\n'
                      '\n[checks.a]\ntype = "nope"\n')
    done = run_vigil("config", "validate", "-c", str(config))
    lines = [int(line.split(":")[1]) for line in done.stderr.splitlines()[1:]]
    assert done.returncode == 1 and lines == sorted(lines) and len(lines) == 3, done.stderr


def test_a_broken_plugin_is_a_plain_line_for_commands_and_goes_to_the_log_file(
        write_config, daemon) -> None:
    config = write_config("""
        [daemon]
        state_dir = "state"
        log_file = "vigil.log"
        http = ""
        plugins = ["no_such_plugin_mod"]
        [checks.sys]
        type = "system"
        interval = "1s"
    """)
    for argv in (["config", "validate"], ["status"]):
        _code, out = run_in_terminal([*vigil_command(), *argv, "-c", str(config)], 20)
        line = next(x for x in out.splitlines() if "plugin.failed" in x)
        assert line.startswith("vigil: error: plugin.failed (plugin: no_such_plugin_mod;"), out
        assert "{" not in line and "\x1b[" not in line, line
    d = daemon(config).start(wait_started=False)
    log = config.parent / "vigil.log"
    wait_until(lambda: log.exists() and "daemon.started" in log.read_text(), 15, "the log")
    events = [json.loads(x)["event"] for x in log.read_text().splitlines()]
    assert events.index("plugin.failed") < events.index("daemon.started")
    assert d.stop() == 0
    assert d.log.read_text() == "", "nothing on stdout: the config names the log file"


def test_on_a_terminal_the_daemon_lists_counts_and_rounds_figures(write_config) -> None:
    config = write_config("""
        [daemon]
        state_dir = "state"
        http = ""
        log_results = "all"
        [checks.sys]
        type = "system"
        interval = "1s"
    """)
    _, out = run_in_terminal([*vigil_command(), "run", "-c", str(config)], 15,
                             until="load1_per_core")
    started = next(x for x in out.splitlines() if "daemon.started" in x)
    assert "vigil.plugins" not in started and "items" in started, started
    result = next(x for x in out.splitlines() if "load1_per_core" in x)
    figures = [word for word in result.replace(",", " ").replace("}", " ").split()
               if word.replace(".", "").isdigit() and "." in word]
    assert figures and all(len(f.split(".")[1]) <= 3 for f in figures), result


def test_heal_without_a_daemon_says_each_step_once(write_config) -> None:
    config = write_config(f"""
        [daemon]
        state_dir = "state"
        [services.bad]
        manager = "command"
        start = ["{sys.executable}", "-c", "import sys; sys.exit('no such database')"]
        [checks.bad]
        type = "tcp"
        port = {free_port()}
        service = "bad"
    """)
    done = run_vigil("heal", "bad", "-c", str(config))
    said = done.stdout + done.stderr
    assert done.returncode == 2
    assert said.count("heal.failed") == 1 and said.count("heal.started") == 1, said
    assert "no such database" in said, said


def test_heal_never_runs_beside_a_daemon_it_cannot_reach(write_config, daemon,
                                                         tmp_path) -> None:
    config = write_config(f"""
        [daemon]
        state_dir = "state"
        http = ""
        [services.web]
        manager = "command"
        start = ["{sys.executable}", "-c", "import time; time.sleep(60)"]
        [checks.web]
        type = "tcp"
        port = {free_port()}
        service = "web"
        interval = "1h"
    """)
    d = daemon(config).start()
    d.wait_for("daemon.started")
    (tmp_path / "state" / "control.sock").unlink()
    done = run_vigil("heal", "web", "-c", str(config))
    assert done.returncode == 2, done
    assert f"a daemon runs this config (PID {d.pid})" in done.stderr, done.stderr
    assert "control.sock: No such file or directory" in done.stderr
    assert "healing web directly" not in done.stderr
    heals_before = len(d.events("heal.started"))
    time.sleep(0.2)
    assert len(d.events("heal.started")) == heals_before


def test_counts_say_runs_and_problems_not_every_run_as_ok(write_config, daemon) -> None:
    config = write_config(f"""
        [daemon]
        state_dir = "state"
        http = ""
        [checks.db]
        type = "tcp"
        port = {free_port()}
        interval = "200ms"
    """)
    d = daemon(config).start()
    d.wait_for("check.result", count=3, check="db")
    assert d.stop() == 0
    counts = json.loads(run_vigil("status", "--json", "-c", str(config)).stdout)[
        "checks"]["db"]["counts"]
    assert "ok" not in counts and counts["runs"] == counts["status.CRIT"], counts


@pytest.fixture
def served(write_config, daemon, tmp_path):
    port = free_port()
    (tmp_path / "token").write_text("s3cret\n")
    config = write_config(f"""
        [daemon]
        state_dir = "state"
        http = "127.0.0.1:{port}"
        http_token_file = "token"
        [services.web]
        manager = "command"
        start = ["true"]
        restarts = 4
        within = "20m"
        [checks.db]
        type = "tcp"
        port = {free_port()}
        interval = "200ms"
        service = "web"
    """)
    d = daemon(config).start()
    wait_until(lambda: call(port, "/livez")[0] == 200, 10, "the HTTP surface")
    return d, port, config


def test_http_words_budgets_uptime_and_a_slow_client_gets_408(served, tmp_path) -> None:
    _d, port, config = served
    auth = {"Authorization": "Bearer s3cret"}
    status, _, body = call(port, "/api/v1/checks", headers={"Authorization": "Bearer nope"})
    assert status == 401 and json.loads(body)["error"] == "the token is wrong"
    assert "required" in json.loads(call(port, "/api/v1/checks")[2])["error"]
    wait_until(lambda: json.loads(call(port, "/api/v1/checks", headers=auth)[2])[
        "checks"]["db"]["uptime_24h"] == 0.0, 10, "the 24 h uptime in the API")
    service = json.loads(call(port, "/api/v1/services/web", headers=auth)[2])
    assert (service["restarts"], service["within"]) == (4, 1200.0)

    with socket.create_connection(("127.0.0.1", port), timeout=20) as conn:
        conn.sendall(b"GET /livez HTTP/1.1\r\n")
        began = time.monotonic()
        answer = b""
        try:
            while time.monotonic() - began < 15 and not answer:
                conn.sendall(b"X")
                readable = conn.recv(4096) if _ready(conn, 0.5) else b""
                answer += readable
        except OSError:
            pass
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout"), answer
    assert 9 < time.monotonic() - began < 14

    (tmp_path / "token").write_text("")
    empty = run_vigil("config", "validate", "-c", str(config))
    assert empty.returncode == 1 and "token is empty: write the token into it" in empty.stderr


def _ready(conn: socket.socket, seconds: float) -> bool:
    import select

    return bool(select.select([conn], [], [], seconds)[0])


def test_event_streams_never_take_the_probes_connections(served) -> None:
    from vigil._web.http import MAX_CONNECTIONS, MAX_STREAMS

    _, port, _ = served
    streams = []

    def stream() -> bytes:
        conn = socket.create_connection(("127.0.0.1", port), timeout=5)
        conn.sendall(b"GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Authorization: Bearer s3cret\r\n\r\n")
        streams.append(conn)
        return conn.recv(64)

    try:
        assert MAX_STREAMS >= MAX_CONNECTIONS
        for _ in range(MAX_STREAMS):
            assert stream().startswith(b"HTTP/1.1 200"), "a stream opens"
        # Streams have a budget of their own: a new one takes the oldest's place (a tab
        # long closed, or a client holding streams it never reads).
        assert stream().startswith(b"HTTP/1.1 200"), "the newest stream opens"
        oldest = streams[0]
        oldest.settimeout(5)
        while oldest.recv(65536):
            pass  # what it was sent before it was ended; then the end
        assert call(port, "/livez")[0] == 200
        assert call(port, "/health", headers={"Authorization": "Bearer s3cret"})[0] in (
            200, 503)
    finally:
        for conn in streams:
            conn.close()


def test_summaries_count_in_words(tmp_path) -> None:
    from vigil import plural
    from vigil.plugins.docs import Docs, DocsOptions

    assert [plural(1, "event"), plural(0, "event"), plural(2, "event")] == [
        "1 event", "0 events", "2 events"]
    (tmp_path / "a.md").write_text("# A\n[x](missing.md)\n")
    docs = Docs("docs", DocsOptions(root=str(tmp_path), require_sections=["Usage"]))
    docs.update()
    summary = docs.run().summary
    assert "1 broken link (a.md -> missing.md)" in summary, summary
    assert "1 file missing sections (a.md: Usage)" in summary, summary
