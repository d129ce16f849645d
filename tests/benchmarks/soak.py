"""A long run: 1,000 checks (tcp, http and exec mixed) every 5 s for 30 minutes, the
HTTP surface scraped every 5 s, and a `command` service killed every minute. Each minute
it prints vigil's resident memory, open files, threads and state database size.

    .venv/bin/python -m tests.benchmarks.soak [--minutes 30] [--checks 1000]

Goals (issue 23): after the first 5 minutes RSS grows by less than 2 MB; files and
threads stay flat; every kill is healed; no run is lost (no check skipped, missed or
timed out). Absolute figures: there is no anchor for a soak."""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil

from tests.benchmarks.scale import Listener
from tests.helpers import answers, free_port, reap_command_services

#: Of every 20 checks: 16 tcp, 3 http, 1 exec.
MIX = ("tcp",) * 16 + ("http",) * 3 + ("exec",)
WARMUP_MINUTES = 5


class Target(ThreadingHTTPServer):
    """The http checks' target: a burst of checks due together must not find its listen
    backlog (http.server's default is 5) full, or their connects wait for SYN retries
    and the runs time out in the benchmark, not in vigil."""

    request_queue_size = 1024
    daemon_threads = True


class Quiet(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *_args: Any) -> None:
        pass


def config_text(folder: Path, checks: int, tcp: int, web: int, port: int, app: int) -> str:
    sections = [f'[daemon]\nstate_dir = "{folder}/state"\nlog_file = "{folder}/vigil.log"\n'
                f'http = "127.0.0.1:{port}"\n',
                f'[services.app]\nmanager = "command"\nstart = ["{sys.executable}", "-m", '
                f'"http.server", "{{port}}", "--bind", "127.0.0.1"]\nports = [{app}]\n'
                'restarts = 1000\nbackoff = "0s"\n',
                '[checks.app]\ntype = "tcp"\nservice = "app"\ninterval = "1s"\n'
                f'port = {app}\n'
                'fall = 2\n']
    for i in range(checks - 1):
        kind = MIX[i % len(MIX)]
        option = {"tcp": f"port = {tcp}", "http": f'url = "http://127.0.0.1:{web}/"',
                  "exec": 'command = ["true"]'}[kind]
        sections.append(f'[checks.{kind}{i:04}]\ntype = "{kind}"\n{option}\n'
                        'interval = "5s"\ntimeout = "3s"\n')
    return "\n".join(sections)


def scrape(port: int, stop: threading.Event, failures: list[str]) -> None:
    while not stop.wait(5):
        for path in ("/metrics", "/health"):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("GET", path)
                conn.getresponse().read()
                conn.close()
            except OSError as exc:
                failures.append(f"{path}: {exc}")


def app_pid(state: Path) -> int | None:
    import sqlite3

    try:
        conn = sqlite3.connect(f"file:{state}/state.db?mode=ro", uri=True)
        row = conn.execute("SELECT data FROM services WHERE name = 'app'").fetchone()
        conn.close()
    except sqlite3.Error:
        return None
    return json.loads(row[0]).get("manager_state", {}).get("pid") if row else None


def problems(port: int) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("vigil_check_problems_total{"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=30)
    parser.add_argument("--checks", type=int, default=1000)
    args = parser.parse_args()
    tcp = Listener()
    web = Target(("127.0.0.1", 0), Quiet)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="vigil-soak-") as name:
        folder = Path(name)
        config = folder / "config.toml"
        config.write_text(config_text(folder, args.checks, tcp.port, web.server_address[1],
                                      port, free_port()))
        vigil = subprocess.Popen([str(Path(sys.executable).with_name("vigil")), "run", "-c",
                                  str(config)], stdout=subprocess.DEVNULL)
        stop, failures = threading.Event(), list[str]()
        try:
            deadline = time.monotonic() + 60
            while not answers(port) and time.monotonic() < deadline:
                time.sleep(0.5)
            scraper = threading.Thread(target=scrape, args=(port, stop, failures), daemon=True)
            scraper.start()
            proc = psutil.Process(vigil.pid)
            kills, rows = 0, []
            print("minute  rss_mb  files  threads  state_mb  kills  heals  problems")
            for minute in range(1, args.minutes + 1):
                time.sleep(30)
                pid = app_pid(folder / "state")
                if pid:
                    try:
                        os.kill(pid, signal.SIGKILL)
                        kills += 1
                    except ProcessLookupError:
                        pass
                time.sleep(30)
                db = sum(p.stat().st_size for p in (folder / "state").glob("state.db*"))
                heals = (folder / "vigil.log").read_text().count('"heal.succeeded"')
                row = (minute, proc.memory_info().rss / 1e6, proc.num_fds(),
                       proc.num_threads(), db / 1e6, kills, heals, problems(port))
                rows.append(row)
                print("{:>6}  {:>6.1f}  {:>5}  {:>7}  {:>8.1f}  {:>5}  {:>5}  {:>8.0f}".format(
                    *row), flush=True)
        finally:
            stop.set()
            vigil.send_signal(signal.SIGTERM)
            vigil.wait(30)
            reap_command_services(config)  # the app outlives vigil, by design
            web.shutdown()
    settled = [r for r in rows if r[0] >= WARMUP_MINUTES] or rows
    # RSS moves by a megabyte or two from one minute to the next (a scrape, a rollup, a
    # trim): the trend is the mean of the last five minutes against the first five
    # after the warm-up; the one-minute figures are printed beside it.
    window = min(5, len(settled))
    growth = (sum(r[1] for r in settled[-window:]) - sum(r[1] for r in settled[:window])) \
        / window
    files = {r[2] for r in settled}
    threads = {r[3] for r in settled}
    # The first heal starts the service: every kill after it is healed once more.
    healed = rows[-1][6] - 1 >= rows[-1][5] - 1
    print(f"RSS, mean of the last {window} minutes against minutes {settled[0][0]}-"
          f"{settled[window - 1][0]}: {growth:+.2f} MB (target < 2; minute {settled[0][0]} to "
          f"{settled[-1][0]}: {settled[-1][1] - settled[0][1]:+.2f} MB); open files "
          f"{min(files)}-{max(files)}, threads {min(threads)}-{max(threads)} (flat); "
          f"{rows[-1][5]} kills, {rows[-1][6] - 1} heals after them; runs lost "
          f"{rows[-1][7]:.0f}; scrape failures {len(failures)}")
    ok = growth < 2 and healed and rows[-1][7] == 0 and not failures
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
