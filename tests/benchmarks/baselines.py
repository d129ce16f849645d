"""What baselines cost: 1,000 checks with three watched series each (the duration and
two metrics), a run every 30 s, every 5-minute window scored.

    .venv/bin/python -m tests.benchmarks.baselines [--checks 1000] [--windows 24]

The daemon's own ``Baselines`` takes every run as the check table hands it over (on the
workers' threads in the daemon: here on one) and closes the windows each second, as its
thread does; the clock is played forward. CPU is the thread's own time for all of it,
over the windows' simulated length. Memory is what tracemalloc sees the baselines hold
once every detector has learnt (its state is fixed in size from then on).

Target (issue 28; README, Benchmarks): under 1% of a core on average, under 5 MB of
memory."""

from __future__ import annotations

import argparse
import math
import random
import tempfile
import time
import tracemalloc
from pathlib import Path

from tests.benchmarks import announce, verdict
from vigil._api.check import Result, Status
from vigil._baseline.watch import Baselines
from vigil._config.loader import parse
from vigil._config.sections import CheckSpec
from vigil._engine.runner import Outcome

INTERVAL, WINDOW = 30.0, 300.0


def play(checks: dict[str, CheckSpec], folder: Path, windows: int, trace: bool
         ) -> tuple[float, int, int]:
    """(CPU seconds, or bytes held when ``trace``; runs; series scored) of ``windows``
    windows played forward."""
    rng = random.Random(28)
    if trace:
        tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0] if trace else 0
    baselines = Baselines(folder)  # no history there: each learns from the runs
    baselines.install(checks, WINDOW)
    baselines._stop.set()  # the clock is played here, not by its thread
    now = time.time() // WINDOW * WINDOW
    start_cpu, runs = time.thread_time(), 0
    specs = list(checks.values())
    for _ in range(windows):
        for second in range(int(WINDOW)):
            at = now + second
            for spec in specs[second % int(INTERVAL)::int(INTERVAL)]:
                latency = 2 * math.exp(rng.gauss(0, 0.1))
                baselines.observe(spec, Outcome(Result(Status.OK, "up", {
                    "latency_ms": latency, "connections": 10 + rng.random()}), latency + 0.2),
                    at, held=False)
                runs += 1
            baselines.close_windows(at)
        now += WINDOW
    cost = time.thread_time() - start_cpu
    if trace:
        cost = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
    scored = sum(view.last is not None for v in baselines.snapshot().values()
                 for view in v.values())
    baselines.close()
    return cost, runs, scored


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--windows", type=int, default=36)
    args = parser.parse_args()
    announce(__doc__)
    folder = Path(tempfile.mkdtemp(prefix="vigil-baselines-"))
    # A type whose metrics only a run can tell (a Nagios plugin's perfdata), so that the
    # played results may carry any: the config is never run.
    sections = "".join(f'[checks.c{i}]\ntype = "exec"\ncommand = ["true"]\n'
                       f'baseline = ["duration", "latency_ms", "connections"]\n'
                       for i in range(args.checks))
    config = parse(str(folder / "vigil.toml"), f'[daemon]\nstate_dir = "{folder}"\n{sections}')
    cpu, runs, scored = play(config.checks, folder, args.windows, trace=False)
    held = play(config.checks, folder, 2 * 12, trace=True)[0]
    series = args.checks * 3
    share = cpu / (args.windows * WINDOW) * 100
    print(f"{args.checks} checks x 3 series, a run every {INTERVAL:g}s, {args.windows} "
          f"windows of {WINDOW:g}s: {runs} runs, {scored} series scored")
    return verdict([
        (share < 1, f"CPU {cpu:.2f}s over {args.windows * WINDOW:g}s: {share:.3f}% of a "
                    "core (target < 1%)"),
        (held < 5 * 2**20, f"memory held: {held / 2**20:.2f} MB, {held / series:.0f} bytes "
                           "a series (target < 5 MB)"),
    ])


if __name__ == "__main__":
    raise SystemExit(main())
