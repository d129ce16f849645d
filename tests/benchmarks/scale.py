"""1,000 TCP checks every 5 s, vigil beside Monit doing the same work in the same run:
CPU per check run, runs lost, schedule lag, and how fast vigil's log grows.

    .venv/bin/python -m tests.benchmarks.scale [--checks 1000] [--seconds 40]

Each tool checks a listener of its own, which counts the connections it accepts: that
is each tool's number of runs. CPU is each process's user+system seconds over the same
window, after a warm-up. Lag (vigil) is each run's distance from its own rhythm, from
the raw results in vigil's history. The log figure is the growth of vigil's log file
at the default level over the window, scaled to an hour.

Target (README, Benchmarks; issue 11 for the lag): no run skipped, missed, timed out or
in error; vigil's CPU per run at most 2x Monit's; lag p99 under 250 ms; the log under
1 MB an hour."""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from tests.benchmarks import anchor, announce, verdict


class Listener:
    """Accepts and closes connections, counting them."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(4096)
        self.port = self.server.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()


def start_monit(folder: Path, checks: int, interval: int, port: int) -> subprocess.Popen[bytes]:
    monit = anchor("monit", "monit")
    rc = folder / "monitrc"
    rc.write_text(
        f"set daemon {interval}\nset logfile {folder}/monit.log\nset pidfile {folder}/monit.pid\n"
        f"set idfile {folder}/monit.id\nset statefile {folder}/monit.state\n" +
        "".join(f"check host h{i} with address 127.0.0.1\n"
                f"    if failed port {port} type tcp with timeout 2 seconds then alert\n"
                for i in range(checks)))
    rc.chmod(0o600)
    return subprocess.Popen([monit, "-I", "-c", str(rc)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def start_vigil(folder: Path, checks: int, interval: int, port: int) -> subprocess.Popen[bytes]:
    config = folder / "config.toml"
    config.write_text(
        f'[daemon]\nstate_dir = "{folder}/state"\nlog_file = "{folder}/vigil.log"\n' +
        "".join(f'[checks.tcp{i}]\ntype = "tcp"\nport = {port}\ninterval = "{interval}s"\n'
                f'timeout = "2s"\n' for i in range(checks)))
    vigil = str(Path(sys.executable).with_name("vigil"))
    return subprocess.Popen([vigil, "run", "-c", str(config)])


def cpu(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


def counts(folder: Path) -> dict[str, int]:
    """vigil's own counters, summed over its checks (runs, skipped, missed, timeout...)."""
    vigil = str(Path(sys.executable).with_name("vigil"))
    out = subprocess.run([vigil, "status", "--json", "-c", str(folder / "config.toml")],
                         capture_output=True, text=True, timeout=60).stdout
    total: dict[str, int] = {}
    for check in json.loads(out)["checks"].values():
        for key, value in check["counts"].items():
            total[key] = total.get(key, 0) + value
    return total


def lags(folder: Path, interval: float, since_ms: int) -> list[float]:
    db = sqlite3.connect(f"file:{folder}/state/state.db?mode=ro", uri=True)
    runs: dict[int, list[int]] = {}
    for check, at in db.execute("SELECT check_id, at FROM results WHERE at >= ? ORDER BY at",
                                (since_ms,)):
        runs.setdefault(check, []).append(at)
    db.close()
    return sorted(abs(b - a - interval * 1000) for times in runs.values()
                  for a, b in itertools.pairwise(times))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--interval", type=int, default=5)
    parser.add_argument("--warmup", type=float, default=10)
    args = parser.parse_args()
    announce(__doc__)
    folder = Path(tempfile.mkdtemp(prefix="vigil-scale-"))
    for_monit, for_vigil = Listener(), Listener()
    procs = [start_monit(folder, args.checks, args.interval, for_monit.port),
             start_vigil(folder, args.checks, args.interval, for_vigil.port)]
    try:
        monit, vigil = (psutil.Process(p.pid) for p in procs)
        time.sleep(args.warmup)
        log = folder / "vigil.log"
        before = (cpu(monit), cpu(vigil), for_monit.accepted, for_vigil.accepted,
                  log.stat().st_size, counts(folder), int(time.time() * 1000))
        time.sleep(args.seconds)
        after = (cpu(monit), cpu(vigil), for_monit.accepted, for_vigil.accepted,
                 log.stat().st_size, counts(folder))
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)
    monit_cpu, vigil_cpu = after[0] - before[0], after[1] - before[1]
    monit_runs, vigil_runs = after[2] - before[2], after[3] - before[3]
    lost = {key: after[5].get(key, 0) - before[5].get(key, 0)
            for key in ("skipped", "missed", "timeout", "error")}
    lag = lags(folder, args.interval, before[6])
    growth = (after[4] - before[4]) * 3600 / args.seconds
    shutil.rmtree(folder, ignore_errors=True)
    per_monit = monit_cpu / max(1, monit_runs) * 1e6
    per_vigil = vigil_cpu / max(1, vigil_runs) * 1e6
    p99 = lag[min(len(lag) - 1, int(0.99 * len(lag)))] if lag else float("nan")
    print(f"{args.checks} TCP checks every {args.interval}s, {args.seconds:g}s measured "
          f"after {args.warmup:g}s warm-up")
    print(f"monit: {monit_runs} runs, {monit_cpu:.2f} CPU-s, {per_monit:.0f} us per run")
    print(f"vigil: {vigil_runs} runs, {vigil_cpu:.2f} CPU-s, {per_vigil:.0f} us per run")
    return verdict([
        (not any(lost.values()), f"no run lost: {lost}"),
        (per_vigil <= 2 * per_monit,
         f"vigil/monit CPU per run {per_vigil / per_monit:.2f}x (target <= 2x)"),
        (p99 < 250, f"vigil lag p50 {lag[len(lag) // 2] if lag else float('nan'):.1f} ms, "
                    f"p99 {p99:.1f} ms (target p99 < 250)"),
        (growth < 1e6, f"vigil log growth {growth / 1e6:.3f} MB an hour (target < 1)"),
    ])


if __name__ == "__main__":
    sys.exit(main())
