"""Resident memory of ``vigil run`` on the default config.toml, sampled once it has run
a while. Target (DESIGN.md): at most 30 MB; supervisord is about 25 MB, Monit 8 MB.

    .venv/bin/python -m tests.benchmarks.memory [--seconds 20] [-c CONFIG]"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("-c", "--config", default=str(ROOT / "config.toml"))
    args = parser.parse_args()
    vigil = str(Path(sys.executable).with_name("vigil"))
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen([vigil, "run", "-c", args.config], stdout=log,
                                stderr=subprocess.STDOUT, cwd=ROOT)
        samples = []
        try:
            deadline = time.monotonic() + args.seconds
            while time.monotonic() < deadline and proc.poll() is None:
                samples.append(psutil.Process(proc.pid).memory_info().rss)
                time.sleep(0.5)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(15)
    if not samples:
        print("vigil exited at once; run it by hand to see why")
        return 1
    mb = [s / 1048576 for s in samples]
    print(f"vigil run -c {args.config}: RSS at start {mb[0]:.1f} MB, after {args.seconds:g}s "
          f"{mb[-1]:.1f} MB, peak {max(mb):.1f} MB (target <= 30 MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
