"""Time from a service's death to its answering again, under a real (private) systemd.

    .venv/bin/python -m tests.benchmarks.recovery [--kills 10]

A unit with Restart=no (so only the watcher can bring it back) serves HTTP on a free
loopback port. It is SIGKILLed --kills times; each time the script measures how long
until the port answers again, first with vigil watching it (interval 1s, fall 2), then
with Monit, its anchor, at the same settings (`set daemon 1`, `for 2 cycles`); without
Debian's `monit` it stops before measuring anything. It prints the median and p95 of
each beside the bound interval x fall + the service's own start time. Not part of the
test suite."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from tests.benchmarks import anchor
from tests.helpers import answers, free_port
from tests.private_systemd import PrivateSystemd

UNIT = "bench-web.service"


def wait(predicate, timeout: float) -> float:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise TimeoutError("gave up waiting")
        time.sleep(0.005)
    return time.monotonic() - start


def start_time(systemd: PrivateSystemd, port: int, rounds: int = 5) -> float:
    times = []
    for _ in range(rounds):
        systemd.run("systemctl", "stop", UNIT)
        began = time.monotonic()
        systemd.run("systemctl", "start", UNIT)
        times.append(time.monotonic() - began + wait(lambda: answers(port), 10))
    return statistics.median(times)


def kills(systemd: PrivateSystemd, port: int, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        wait(lambda: answers(port), 30)
        time.sleep(1.5)  # let the watcher see it healthy again
        systemd.run("systemctl", "kill", "-s", "KILL", "--kill-whom=main", UNIT)
        began = time.monotonic()
        wait(lambda: not answers(port), 5)
        samples.append(time.monotonic() - began + wait(lambda: answers(port), 30))
    return samples


def report(name: str, samples: list[float], bound: float) -> float:
    """Print the samples' figures; their median."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    print(f"{name:<6} kills={len(samples)}  median={statistics.median(samples):.2f}s  "
          f"p95={p95:.2f}s  min={ordered[0]:.2f}s  max={ordered[-1]:.2f}s  "
          f"(bound {bound:.2f}s, target median <= {bound + 0.5:.2f}s)")
    return statistics.median(samples)


def watch(systemd: PrivateSystemd, argv: list[str], folder: Path, port: int,
          count: int) -> list[float]:
    log = (folder / f"{Path(argv[0]).name}.out").open("wb")
    proc = subprocess.Popen([*systemd.prefix(), *argv], stdout=log, stderr=subprocess.STDOUT)
    try:
        time.sleep(2)
        return kills(systemd, port, count)
    finally:
        # nsenter does not forward signals: signal the watcher itself, its child.
        for child in psutil.Process(proc.pid).children():
            child.send_signal(signal.SIGTERM)
        proc.wait(15)
        log.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10)
    args = parser.parse_args()
    monit = anchor("monit", "monit")
    folder = Path(tempfile.mkdtemp(prefix="vigil-bench-"))
    port = free_port()
    systemd = PrivateSystemd().boot()
    try:
        systemd.write_unit(UNIT, f"""
            [Unit]
            DefaultDependencies=no
            StartLimitIntervalSec=0
            [Service]
            ExecStart={sys.executable} -m http.server {port} --bind 127.0.0.1
            Restart=no
        """)
        own = start_time(systemd, port)
        bound = 1.0 * 2 + own
        print(f"service start time (systemctl start -> answering): {own:.3f}s")
        config = folder / "vigil.toml"
        config.write_text(f'[daemon]\nstate_dir = "{folder}/state"\n'
                          f'log_file = "{folder}/vigil.log"\n'
                          f'[services.web]\nmanager = "systemd"\nunit = "{UNIT}"\n'
                          'restarts = 1000\nbackoff = "0s"\n'
                          f'[checks.web]\ntype = "tcp"\nport = {port}\nservice = "web"\n'
                          'interval = "1s"\nfall = 2\nrise = 1\ntimeout = "1s"\n')
        vigil = str(Path(sys.executable).with_name("vigil"))
        vigil_median = report("vigil", watch(systemd, [vigil, "run", "-c", str(config)],
                                             folder, port, args.kills), bound)
        rc = folder / "monitrc"
        rc.write_text(f"set daemon 1\nset logfile {folder}/monit.log\n"
                      f"set pidfile {folder}/monit.pid\nset idfile {folder}/monit.id\n"
                      f"set statefile {folder}/monit.state\n"
                      f"check host web with address 127.0.0.1\n"
                      f"  if failed port {port} type tcp for 2 cycles then exec "
                      f'"/bin/systemctl start {UNIT}"\n'
                      "     repeat every 1 cycles\n")
        os.chmod(rc, 0o600)
        monit_median = report("monit", watch(systemd, [monit, "-I", "-c", str(rc)], folder,
                                             port, args.kills), bound)
        print(f"vigil/monit median: {vigil_median / monit_median:.2f}x (target <= 0.35)")
    finally:
        systemd.poweroff()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
