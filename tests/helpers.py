"""What the tests share: the real ``vigil`` command, a daemon under test read back from
its JSON log, waiting instead of sleeping, free ports, required programs. The fixtures
that use them are in conftest.py."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import pty
import random
import select
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import tomllib
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import psutil
import pytest

if TYPE_CHECKING:
    from vigil._store.records import Snapshot

ROOT = Path(__file__).resolve().parent.parent
NAGIOS_DIR = Path("/usr/lib/nagios/plugins")


def vigil_command() -> list[str]:
    """The installed console script, as a user runs it."""
    script = Path(sys.executable).with_name("vigil")
    if not script.exists():
        pytest.fail(f"no vigil console script beside {sys.executable}: run pip install -e .")
    return [str(script)]


def run_vigil(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
              timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*vigil_command(), *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=timeout)


#: The test plugins (misbehaving checks, the flag manager), for PYTHONPATH.
FIXTURES = str(Path(__file__).parent / "fixtures")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(port: int, timeout: float = 0.2) -> bool:
    """Whether something accepts TCP connections on this loopback port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def event_time(record: dict[str, Any]) -> float:
    return datetime.fromisoformat(record["timestamp"]).timestamp()


def rerun_delay(d: Daemon, check: str, event: dict[str, Any], timeout: float = 5) -> float:
    """Seconds from ``event`` to the first result of ``check`` logged after it."""
    since = event_time(event)

    def after() -> list[float]:
        return [t for r in d.events("check.result", check=check) if (t := event_time(r)) >= since]

    wait_until(after, timeout, f"a run of {check} after {event['event']}")
    return after()[0] - since


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> float:
    """Poll until predicate() is truthy; the seconds it took. The daemon saves and acts
    on its own time, so tests wait for what they expect rather than sleep."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.02)
    raise AssertionError(f"not within {timeout}s: {what}")


def run_in_terminal(argv: list[str], seconds: float, until: str = "") -> tuple[int | None, str]:
    """Run ``argv`` on a pseudo-terminal, as a user at a terminal would, for at most
    ``seconds`` or until its output holds ``until``; (exit code or None, output)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(argv, stdin=follower, stdout=follower, stderr=follower)
    os.close(follower)
    output = b""
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline and not (until and until.encode() in output):
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(leader, 4096)
                except OSError:  # the program closed the terminal: it has exited
                    break
                output += chunk
            elif proc.poll() is not None:
                break
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        code = proc.wait(10)
        os.close(leader)
    return code, output.decode(errors="replace")


def readline_within(proc: subprocess.Popen[str], seconds: float) -> str:
    """A line of the process's output, or a failure instead of a hang."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], seconds)
    assert ready, f"no line within {seconds}s"
    return proc.stdout.readline()


def need_program(name: str, package: str) -> str:
    """The path of a required external program; a clear failure (never a skip) otherwise."""
    path = shutil.which(name) or shutil.which(name, path=str(NAGIOS_DIR))
    if path is None:
        pytest.fail(f"{name} is missing: install the Debian package {package!r} "
                    "(tests/run.sh does this when run as root)")
    return path


def assert_never_healed_nor_shown(d: Daemon, config: Path, service: str, check: str,
                                  secrets: list[str]) -> None:
    """A check failing on bad credentials: one heal.skipped, no heal, and not one of the
    secrets in the log, `vigil status`, `vigil check`, `vigil history` or the state
    database (its file and its journal)."""
    from vigil._config import loader as config_mod
    from vigil._store.database import read_state_at

    skipped = d.wait_for("heal.skipped", service=service, timeout=15)[0]
    assert skipped["reason"].startswith("a restart would not help: authentication failed")
    d.wait_for("check.result", count=5, check=check)
    assert not d.events("heal.started")
    state_dir = config_mod.load(str(config)).daemon.state_dir

    def saved_summary() -> str:
        state = read_state_at(state_dir)
        last = state["checks"][check]["last"] if state else None
        return str(last and last["summary"])

    wait_until(lambda: "authentication failed" in saved_summary(), 10,
               "the failure in the saved state")
    outputs = [d.log.read_text(), run_vigil("status", "-c", str(config)).stdout,
               run_vigil("status", "--json", "-c", str(config)).stdout,
               run_vigil("check", check, "-c", str(config)).stdout,
               run_vigil("check", check, "--json", "-c", str(config)).stdout,
               run_vigil("history", check, "--json", "-c", str(config)).stdout,
               *(path.read_bytes().decode("utf-8", "replace")
                 for path in state_dir.glob("state.db*"))]
    assert "authentication failed" in outputs[3] and "authentication failed" in outputs[5]
    for text in outputs:
        for secret in secrets:
            assert secret not in text


class Daemon:
    """``vigil run`` as a real subprocess, its JSON log read back line by line.

    ``prefix`` runs it inside another namespace (``nsenter ...``): signals then go to
    vigil itself, the child of nsenter, which does not forward them. ``command`` is the
    vigil to run (default: this environment's console script)."""

    def __init__(self, config: Path, log: Path, prefix: list[str] | None = None,
                 command: list[str] | None = None) -> None:
        self.config = config
        #: stdout: nothing but JSON lines (empty when the config names a log_file).
        self.log = log
        #: stderr, kept apart, so that a traceback cannot hide among the JSON.
        self.stderr = log.with_suffix(".stderr")
        #: Every log_file the config named since the start (a reload may move it).
        self.log_files: list[Path] = []
        self.prefix = prefix or []
        self.command = command or vigil_command()
        self.proc: subprocess.Popen[bytes] | None = None
        self.pid = 0

    def _note_log_file(self) -> None:
        """Read the config's [daemon] log_file: its lines are the daemon's too."""
        try:
            named = tomllib.loads(self.config.read_text()).get("daemon", {}).get("log_file")
        except (OSError, ValueError):
            return
        if isinstance(named, str) and named != "-":
            path = self.config.parent / os.path.expanduser(named)
            if path not in self.log_files:
                self.log_files.append(path)

    def outputs(self) -> list[Path]:
        """Where the daemon writes its log lines, oldest place first."""
        return [self.log, *self.log_files]

    def lines(self) -> list[str]:
        return [line for path in self.outputs() if path.exists()
                for line in path.read_text(encoding="utf-8").splitlines()]

    def start(self, wait_started: bool = True) -> Daemon:
        self._note_log_file()
        self.proc = subprocess.Popen(
            [*self.prefix, *self.command, "run", "-c", str(self.config)],
            stdout=self.log.open("ab"), stderr=self.stderr.open("ab"),
        )
        self.pid = self.proc.pid
        if self.prefix:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.pid == self.proc.pid:
                children = psutil.Process(self.proc.pid).children()
                self.pid = children[0].pid if children else self.proc.pid
                time.sleep(0.02)
        if wait_started:
            self.wait_for("daemon.started", timeout=20)
        return self

    def problems(self) -> list[str]:
        """What a healthy daemon never writes, in any of its outputs (stdout, stderr, its
        log files): a line that is not a JSON object, or a traceback."""
        return [p for path in [*self.outputs(), self.stderr] for p in log_problems(path)]

    def events(self, event: str | None = None, **fields: Any) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for line in self.lines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if event and record.get("event") != event:
                continue
            if all(record.get(k) == v for k, v in fields.items()):
                found.append(record)
        return found

    def wait_for(self, event: str, count: int = 1, timeout: float = 15,
                 **fields: Any) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.events(event, **fields)
            if len(found) >= count:
                return found
            if self.proc and self.proc.poll() is not None:
                break
            time.sleep(0.05)
        tail = "\n".join(self.lines())[-3000:]
        if self.stderr.exists() and (errors := self.stderr.read_text(errors="replace")):
            tail += f"\nstderr:\n{errors[-2000:]}"
        raise AssertionError(f"{count} x {event} {fields} not seen in {timeout}s; "
                             f"log tail:\n{tail}")

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        if signum == signal.SIGHUP:
            self._note_log_file()  # a reload may name another
        os.kill(self.pid, signum)

    def stop(self, timeout: float = 10) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self.proc.kill()
            self.proc.wait()


def log_problems(path: Path) -> list[str]:
    """Each line of a daemon's output file that is not a JSON object, and any traceback."""
    if not path.exists():
        return []
    return output_problems(path.name, path.read_text(encoding="utf-8", errors="replace"))


def output_problems(where: str, text: str) -> list[str]:
    """Each line of what a daemon wrote that is not a JSON object, and any traceback."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            found.append(f"{where}:{number}: not a JSON object: {line[:200]}")
    if "Traceback" in text:
        found.append(f"{where}: a traceback: {text[-2000:]}")
    return found


def reap_command_services(config: Path) -> None:
    """Kill what a daemon under test started through the `command` manager: such
    services outlive vigil by design, and a failed test must not leak them."""
    # Read only [daemon] state_dir: loading the whole config would load its plugins here.
    from vigil._store.database import read_state_at

    try:
        state_dir = tomllib.loads(config.read_text())["daemon"]["state_dir"]
        state = read_state_at(config.parent / os.path.expanduser(state_dir))
        services = state["services"] if state else {}
    except (OSError, ValueError, KeyError, TypeError, sqlite3.Error):
        return
    for entry in services.values():
        pgid = (entry.get("manager_state") or {}).get("pgid")
        if entry.get("manager") == "command" and pgid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)


def redis_argv(port: int, folder: Path, *extra: str) -> list[str]:
    return [need_program("redis-server", "redis-server"), "--port", str(port),
            "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(folder),
            "--daemonize", "no", *extra]


def with_daemon_keys(toml: str, **keys: str) -> str:
    """The config with these ``[daemon]`` keys (TOML values): right under the header when
    there is one (no line before it moves), else in a new section at the end."""
    added = "".join(f"{key} = {value}\n" for key, value in keys.items())
    lines = toml.splitlines(keepends=True)
    for index, line in enumerate(lines):
        if line.strip() == "[daemon]":
            lines.insert(index + 1, added)
            return "".join(lines)
    return toml.rstrip("\n") + "\n[daemon]\n" + added


def saved_state(state_dir: Path) -> Snapshot:
    """What the state database in ``state_dir`` holds, as `vigil status --json` shows it."""
    from vigil._store.database import read_state_at

    state = read_state_at(state_dir)
    assert state is not None, f"no state database in {state_dir}"
    return state


def saved_pid(state_dir: Path, service: str) -> int:
    """The PID the healer saved for a `command` service, once the writer committed it."""
    def pid() -> int | None:
        entry = saved_state(state_dir)["services"].get(service)
        return entry["manager_state"].get("pid") if entry else None

    wait_until(pid, 10, f"the PID of {service} in the saved state")
    return int(pid() or 0)


#: 30 fast checks, FAILING from their first result, and a config that loads them.
KILLED_CONFIG = '[daemon]\nstate_dir = "state"\nplugins = ["misbehaving"]\n' + "".join(
    f'[checks.c{i}]\ntype = "fixed"\nstatus = "CRIT"\ninterval = "100ms"\nfall = 1\n'
    for i in range(30))


@dataclass
class KillReport:
    #: How many checks `vigil status --json` showed FAILING after each kill.
    failing_after_each: list[int] = field(default_factory=list)
    #: c0's run count after each kill: it only ever grows.
    runs: list[int] = field(default_factory=list)
    #: state.unreadable events seen.
    unreadable: list[dict[str, Any]] = field(default_factory=list)


def kill_and_restart(config: Path, make: Callable[[Path], Daemon], kills: int,
                     rng: random.Random) -> KillReport:
    """Start the daemon on ``config`` (KILLED_CONFIG), wait until its 30 checks are saved
    FAILING, then ``kills`` times: restart it, SIGKILL it at a random moment up to 1.5 s
    later, and read what `vigil status --json` finds."""
    first = make(config).start()
    # Saved, not only seen: `vigil status` asks the running daemon.
    saved = config.parent / "state"
    wait_until(lambda: sum(entry["state"] == "FAILING" for entry in
                           saved_state(saved)["checks"].values()) == 30,
               15, "30 FAILING checks saved")
    first.signal(signal.SIGKILL)
    report = KillReport()
    for _ in range(kills):
        d = make(config).start()
        time.sleep(rng.uniform(0, 1.5))
        d.signal(signal.SIGKILL)
        assert d.proc is not None
        d.proc.wait()
        report.unreadable += d.events("state.unreadable")
        report.failing_after_each.append(_failing(config))
        report.runs.append(saved_state(config.parent / "state")["checks"]["c0"]["counts"]
                           .get("runs", 0))
    return report


def _failing(config: Path) -> int:
    data = json.loads(run_vigil("status", "--json", "-c", str(config)).stdout)
    return sum(entry["state"] == "FAILING" for entry in data.get("checks", {}).values())


@contextlib.contextmanager
def prometheus_server(config: Path, folder: Path) -> Iterator[Callable[..., Any]]:
    """Debian's Prometheus on a free loopback port with ``config``; yields ``get(path,
    query)`` for its HTTP API (the ``data`` of the answer, None while it cannot say)."""
    binary = shutil.which("prometheus")
    assert binary, "install the Debian package prometheus"
    port = free_port()
    server = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={folder / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def get(path: str, query: str = "") -> Any:
        url = f"http://127.0.0.1:{port}{path}" + (f"?query={quote(query)}" if query else "")
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                return json.load(answer)["data"]
        except OSError:
            return None

    try:
        yield get
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)


class Receiver:
    """A webhook receiver on a loopback port: every POST's path, headers and body
    (JSON when it is), in order. ``start`` and ``stop`` make it come and go."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.posts: list[dict[str, Any]] = []
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> Receiver:
        posts = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    body: Any = json.loads(raw)
                except ValueError:
                    body = raw.decode()
                posts.append({"path": self.path, "headers": dict(self.headers), "body": body})
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def at(self, path: str) -> list[Any]:
        return [p["body"] for p in self.posts if p["path"] == path]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def call(port: int, path: str, method: str = "GET", headers: dict[str, str] | None = None,
         body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        answer = conn.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read()
    finally:
        conn.close()


@contextlib.contextmanager
def listening(port: int) -> Iterator[None]:
    """Something accepting connections on ``port``: the tcp check passes meanwhile."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(16)

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                sock.accept()[0].close()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield
    finally:
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()


@contextlib.contextmanager
def alertmanager(folder: Path, hook: str) -> Iterator[int]:
    """Debian's Alertmanager on a free loopback port, routing every alert to ``hook``
    at once (no waiting to group) and never repeating one on its own."""
    binary = shutil.which("prometheus-alertmanager")
    assert binary, "install the Debian package prometheus-alertmanager"
    port = free_port()
    config = folder / "alertmanager.yml"
    config.write_text(f"""
route:
  receiver: hook
  group_by: [alertname, check]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 24h
receivers:
  - name: hook
    webhook_configs:
      - url: {hook}
        send_resolved: true
""")
    server = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.path={folder / 'am'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: answers(port), 20, "Alertmanager to listen")
        yield port
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)


def am_alerts(port: int) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/alerts", timeout=5) as got:
        return list(json.load(got))


def am_silences(port: int) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/silences", timeout=5) as got:
        return list(json.load(got))


def statuses(bodies: list[dict[str, Any]]) -> list[str]:
    """The status of each alert in webhook bodies (Alertmanager's payload), in order."""
    return [alert["status"] for body in bodies for alert in body["alerts"]]


def run_times(seconds: float, days: float, until: float) -> list[float]:
    """Times every ``seconds`` over the ``days`` before ``until``."""
    return [until - days * 86400 + i * seconds for i in range(int(days * 86400 / seconds))]


def write_history(folder: Path, checks: int, times: list[float],
                  status_of: Callable[[int, float], int], now: float,
                  duration_of: Callable[[int], float] = lambda i: 5.0,
                  counts_of: Callable[[int], dict[str, int] | None] = lambda i: None,
                  maintenance_of: Callable[[float], bool] = lambda at: False,
                  ) -> sqlite3.Connection:
    """A history in the state database in ``folder``: a result of checks ``c0``,
    ``c1``... at each time, written through the store's writer, then rolled up at
    ``now`` as the writer rolls them; the writer's connection. ``status_of(n, at)``
    gives each result's status code, ``n`` counting the runs of all checks in the order
    they came; ``maintenance_of(at)`` whether the result came under maintenance."""
    from vigil._store import history
    from vigil._store.store import Store

    store = Store(folder, history.Retention(3600, 2 * 86400, 30 * 86400))
    store.load()
    conn = store.writer.connect()
    conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                     [(f"rolled_{step}", str(int(times[0] // step * step)))
                      for step in history.STEPS])
    for c in range(checks):
        for i, at in enumerate(times):
            store.result(f"c{c}", at + c * 0.001, status_of(i * checks + c, at),
                         duration_of(i), {}, "", maintenance_of(at), counts_of(i))
        store.writer._commit(store._take())
    history.roll_up(conn, now)
    return conn


@contextlib.contextmanager
def slow_http(port: int, delay: float) -> Iterator[dict[str, float]]:
    """An HTTP server on ``port`` that waits ``switch["delay"]`` seconds before each
    answer, and answers 500 to every ``switch["fail_every"]``-th request (0: never);
    change either while it runs. ``switch["most_in_flight"]``: the most requests it
    was answering at once; with ``switch["gather"]`` set, the next requests wait (10 s
    at most) until that many are in flight, once: a client's concurrency shown whatever
    the machine's pace."""
    switch = {"delay": delay, "fail_every": 0, "served": 0, "in_flight": 0,
              "most_in_flight": 0, "gather": 0}
    lock = threading.Condition()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with lock:
                switch["in_flight"] += 1
                switch["most_in_flight"] = max(switch["most_in_flight"], switch["in_flight"])
                lock.notify_all()
                if switch["gather"]:
                    lock.wait_for(lambda: switch["in_flight"] >= switch["gather"], 10)
                    switch["gather"] = 0
            try:
                time.sleep(switch["delay"])
                with lock:
                    switch["served"] += 1
                    fail = (switch["fail_every"]
                            and switch["served"] % switch["fail_every"] == 0)
                self.send_response(500 if fail else 200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            finally:
                with lock:
                    switch["in_flight"] -= 1

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield switch
    finally:
        server.shutdown()
        server.server_close()
