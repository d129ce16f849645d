"""40 SIGKILLs at random moments while 30 fast checks run, each followed by a restart.

    .venv/bin/python -m tests.benchmarks.kills [--kills 40] [--seed N]

Target (issue 11): after every kill `vigil status --json` reads the state with all 30
checks still FAILING; no restart finds the state unreadable; the run counters never go
back; no daemon writes a traceback or a line that is not JSON."""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path

from tests.benchmarks import announce, verdict
from tests.helpers import KILLED_CONFIG, Daemon, kill_and_restart, with_daemon_keys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=40)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    announce(__doc__)
    folder = Path(tempfile.mkdtemp(prefix="vigil-kills-"))
    config = folder / "config.toml"
    config.write_text(with_daemon_keys(KILLED_CONFIG, log_results="\"all\"", http="\"\""))
    # The daemons load the test plugin that the config names from here.
    os.environ["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent / "fixtures")
    started: list[Daemon] = []

    def make(path: Path) -> Daemon:
        started.append(Daemon(path, folder / f"daemon{len(started)}.log"))
        return started[-1]

    seed = args.seed if args.seed is not None else random.randrange(2**32)
    try:
        report = kill_and_restart(config, make, args.kills, random.Random(seed))
    finally:
        for d in started:
            d.kill()
    problems = [p for d in started for p in d.problems()]
    shutil.rmtree(folder, ignore_errors=True)
    kept = sum(n == 30 for n in report.failing_after_each)
    print(f"{args.kills} SIGKILLs (seed {seed})")
    for problem in problems:
        print(f"  daemon output problem: {problem}")
    return verdict([
        (kept == args.kills, f"all 30 FAILING states read back after {kept} of {args.kills} "
                             "kills"),
        (not report.unreadable, f"state.unreadable: {len(report.unreadable)}"),
        (report.runs == sorted(report.runs), "the runs of c0 after each kill never went "
                                             f"back: {report.runs == sorted(report.runs)}"),
        (not problems, f"daemon output problems: {len(problems)}"),
    ])


if __name__ == "__main__":
    sys.exit(main())
