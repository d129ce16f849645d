"""``vigil slo [NAME]``: each objective's SLI over its window, the error budget left (as a
share, and as time at the last hour's burn), the burn rates and ok/ticket/page, counted
from the state database. Exits 0 when every one is ok, 1 for a ticket, 2 for a page."""

from __future__ import annotations

import argparse
import json
import sys
import time

from vigil._cli.status import read_database, running_config
from vigil._config import loader as config_mod
from vigil._kit.durations import format_duration
from vigil._slo.burn import STATUSES, WINDOWS
from vigil._slo.objectives import Objectives, Report


def cmd_slo(args: argparse.Namespace) -> int:
    cfg = config_mod.load(args.config)  # the objectives must read: a mistake is the answer
    settings, _ = running_config(args)
    slos = cfg.slos
    if args.name:
        if args.name not in slos:
            print(f"vigil: no objective named {args.name!r} in {cfg.source} (objectives: "
                  f"{', '.join(sorted(slos)) or 'none: add [slos.NAME]'})", file=sys.stderr)
            return 64
        slos = {args.name: slos[args.name]}
    keep = settings.retention()
    if keep is None or not slos:  # none to burn: a script reads an empty list
        if args.json:
            print(json.dumps({"slos": []}))
        else:
            print(f"no objectives in {cfg.source} (add [slos.NAME]; see the README's "
                  "Objectives)")
        return 0
    reports = read_database(settings, lambda conn: Objectives(slos, keep).evaluate(
        conn, time.time()))
    if args.json:
        print(json.dumps({"slos": [r.as_json() for r in reports]}, indent=2))
    else:
        print("\n".join(_line(r) for r in reports))
    return max(STATUSES.index(r.status) for r in reports)


def _line(report: Report) -> str:
    sli = "no runs yet" if report.sli is None else f"{report.sli * 100:.3f}%"
    left = (f", about {_roughly(report.seconds_left)} left at the 1h burn"
            if report.seconds_left is not None else "")
    burns = "  ".join(f"{name} {report.burn_rate[name]:.2f}" for name in WINDOWS)
    firing = "".join(f"\n    {c.severity}: burning over {c.factor(report.window):g}x over "
                     f"{c.long} and {c.short}{note}"
                     for conditions, note in ((report.firing, ""),
                                              (report.held, ", held back: too little data"))
                     for c in conditions)
    scarce = report.too_little_data
    return (f"{report.name}: {report.status.upper()}  objective {report.objective * 100:g}% "
            f"over {format_duration(report.window)}, SLI {sli} ({report.good}/{report.total})"
            f"\n    budget {report.budget_left()}{left}"
            f"\n    burn rate  {burns}{firing}"
            + (f"\n    too little data: {scarce}" if scarce else ""))


def _roughly(seconds: float) -> str:
    """A time left in its largest whole unit: ``26m``, not ``1586s``."""
    for unit in (86400, 3600, 60):
        if seconds >= 2 * unit:
            return format_duration(round(seconds / unit) * unit)
    return format_duration(round(seconds))
