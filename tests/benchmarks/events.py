"""An ``events`` check over a file receiving 1,000 events a second (DSPy validations:
signature, ok, latency, error), beside the same vigil whose events file stays quiet, in
the same run: whether the check keeps its schedule, and what the events cost in CPU
(a figure for the README, with no target).

    .venv/bin/python -m tests.benchmarks.events [--seconds 30] [--rate 1000]

Target (issue 16): the schedule kept: a run for every second of the window but one
(interval 1 s), and no two runs more than 1.5 s apart.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil

from tests.benchmarks import announce, verdict

CONFIG = """[daemon]
state_dir = "{folder}/state-{name}"
log_file = "{folder}/{name}.log"
log_results = "all"
http = ""
[checks.validations]
type = "events"
path = "{events}"
interval = "1s"
window = "5m"
group_by = "signature"
ok_field = "ok"
latency_field = "latency_ms"
error_field = "error"
failure_rate_warn_pct = 20
latency_p95_warn_ms = 2000
spike_factor = 5
"""
SIGNATURES = ["QA", "Summarize", "Classify", "Extract", "Plan"]


def write(path: Path, rate: int, stop: threading.Event) -> int:
    """Append ``rate`` events a second in 10 ms batches until told to stop."""
    written, rng, start = 0, random.Random(7), time.monotonic()
    with open(path, "a", buffering=1 << 16) as out:
        while not stop.is_set():
            due = int((time.monotonic() - start) * rate)
            now = datetime.now(UTC).isoformat()
            for _ in range(due - written):
                ok = rng.random() > 0.05
                out.write(json.dumps({"ts": now, "signature": rng.choice(SIGNATURES),
                                      "ok": ok, "latency_ms": round(rng.lognormvariate(5, 0.5)),
                                      "error": None if ok else "parse error"}) + "\n")
            out.flush()
            written = due
            time.sleep(0.01)
    return written


def results(log: Path) -> list[dict[str, object]]:
    found = []
    for line in log.read_text().splitlines():
        record = json.loads(line)
        if record.get("event") == "check.result":
            found.append(record)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rate", type=int, default=1000)
    args = parser.parse_args()
    announce(__doc__)
    vigil = str(Path(sys.executable).with_name("vigil"))
    with tempfile.TemporaryDirectory() as folder:
        procs = {}
        for name in ("busy", "quiet"):
            events = Path(folder) / f"{name}.jsonl"
            events.touch()
            config = Path(folder) / f"{name}.toml"
            config.write_text(CONFIG.format(folder=folder, name=name, events=events))
            procs[name] = subprocess.Popen([vigil, "run", "-c", str(config)])
        time.sleep(3)  # both started and through their first runs
        stop = threading.Event()
        written: list[int] = []
        writer = threading.Thread(target=lambda: written.append(
            write(Path(folder) / "busy.jsonl", args.rate, stop)))
        cpu = {n: psutil.Process(p.pid).cpu_times() for n, p in procs.items()}
        began = time.time()
        writer.start()
        time.sleep(args.seconds)
        stop.set()
        writer.join()
        ended = time.time()
        used = {n: sum(psutil.Process(p.pid).cpu_times()[:2]) - sum(cpu[n][:2])
                for n, p in procs.items()}
        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)
            proc.wait(15)
        runs = [r for r in results(Path(folder) / "busy.log")
                if began <= datetime.fromisoformat(str(r["timestamp"])).timestamp() <= ended]
    times = [datetime.fromisoformat(str(r["timestamp"])).timestamp() for r in runs]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    durations = [float(str(r["duration_ms"])) for r in runs] or [float("nan")]
    counted = runs[-1]["metrics"]["events"] if runs else 0  # type: ignore[index]
    extra = used["busy"] - used["quiet"]
    print(f"{written[0]} events in {args.seconds:g}s ({written[0] / args.seconds:.0f}/s); "
          f"the check counted {counted:g} in its 5m window")
    print(f"runs: {len(runs)} in {ended - began:.1f}s (interval 1s); run time median "
          f"{statistics.median(durations):.1f} ms, max {max(durations):.1f} ms")
    print(f"CPU: busy vigil {used['busy']:.2f}s, quiet vigil {used['quiet']:.2f}s over "
          f"{args.seconds:g}s: the events cost {100 * extra / args.seconds:.1f}% of a core, "
          f"{1000 * extra / max(written[0], 1) * 1000:.1f} ms per 1,000 events")
    longest = max(gaps, default=float("inf"))
    return verdict([
        (len(runs) >= int(ended - began) - 1,
         f"{len(runs)} runs in {ended - began:.1f}s (target >= {int(ended - began) - 1})"),
        (longest <= 1.5, f"longest gap between runs {longest:.2f}s (target <= 1.5)"),
    ])


if __name__ == "__main__":
    sys.exit(main())
