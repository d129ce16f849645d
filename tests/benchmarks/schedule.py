"""1,000 cheap checks (TCP connects to a local listener) at a 5 s interval: does any
run get skipped or missed, and how far do runs drift from their rhythm?

    .venv/bin/python -m tests.benchmarks.schedule [--checks 1000] [--seconds 60]

Lag is measured as each run's distance from its own schedule: the gap between two
runs of one check minus the interval (the first run of each check sets its phase).
Target (DESIGN.md): no run skipped or missed, lag p99 < 250 ms, on 2 cores."""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path


def listener() -> tuple[socket.socket, int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4096)

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.close()

    threading.Thread(target=accept, daemon=True).start()
    return server, server.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--interval", type=float, default=5)
    args = parser.parse_args()
    server, port = listener()
    folder = Path(tempfile.mkdtemp(prefix="vigil-sched-"))
    log = folder / "vigil.log"
    config = folder / "config.toml"
    config.write_text(
        f'[daemon]\nstate_dir = "{folder}/state"\nlog_file = "{log}"\n' +
        "".join(f'[checks.tcp{i}]\ntype = "tcp"\nport = {port}\ninterval = '
                f'"{args.interval:g}s"\ntimeout = "2s"\n' for i in range(args.checks)))
    vigil = str(Path(sys.executable).with_name("vigil"))
    proc = subprocess.Popen([vigil, "run", "-c", str(config)])
    time.sleep(args.seconds)
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    server.close()

    runs: dict[str, list[float]] = defaultdict(list)
    problems: defaultdict[str, int] = defaultdict(int)
    lines = log.read_text().splitlines()
    for line in lines:
        event = json.loads(line)
        if event["event"] == "check.result":
            runs[event["check"]].append(datetime.fromisoformat(event["timestamp"]).timestamp())
            if event["status"] != "OK":
                problems["not OK"] += 1
        elif event["event"] in ("check.skipped", "check.missed", "check.timeout"):
            problems[event["event"]] += 1
    shutil.rmtree(folder, ignore_errors=True)
    lags = sorted(abs(b - a - args.interval) * 1000 for times in runs.values()
                  for a, b in itertools.pairwise(times))
    total = sum(len(t) for t in runs.values())
    expected = args.checks * int(args.seconds / args.interval)
    p = lambda q: lags[min(len(lags) - 1, int(q * len(lags)))] if lags else float("nan")  # noqa: E731
    print(f"{args.checks} checks every {args.interval:g}s for {args.seconds:g}s: {total} runs "
          f"(about {expected} expected), skipped/missed/timeouts/not OK: "
          f"{dict(problems) or 'none'}")
    print(f"lag ms: p50 {p(0.5):.1f}  p99 {p(0.99):.1f}  max {lags[-1] if lags else 0:.1f}  "
          "(target p99 < 250)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
