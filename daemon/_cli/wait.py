"""``vigil wait [TARGET...]``: the deploy gate. Runs the matching checks now, and again
each second, until every one has passed for ``--stable`` in a row: exit 0; 1 at the
timeout, naming what still fails (or why a check did not run: under maintenance, or
paced by its floor); 3 when nothing matches. Through the running daemon when there is
one (it runs the checks and streams their results), else by itself."""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
import time
from collections.abc import Callable
from typing import TextIO

from vigil._agent import control
from vigil._agent.control import Message
from vigil._cli import floor
from vigil._cli.status import load
from vigil._config.sections import CheckSpec, Config
from vigil._engine.gate import Gate, maintained, paced
from vigil._engine.runner import Runner
from vigil._kit.visible import shown
from vigil._store.maintenance import Window

SPINNER = "|/-\\"


def matching(cfg: Config, targets: list[str]) -> list[str]:
    """The enabled checks the targets name: a service's guards, or a glob's matches;
    every enabled check without targets."""
    enabled = sorted(name for name, spec in cfg.checks.items() if spec.enabled)
    if not targets:
        return enabled
    return [name for name in enabled
            if any(cfg.checks[name].service == t or fnmatch.fnmatchcase(name, t)
                   for t in targets)]


def cmd_wait(args: argparse.Namespace) -> int:
    cfg = load(args)
    names = matching(cfg, args.targets)
    if not names:
        print(f"vigil: no check matches {' '.join(args.targets) or 'anything'} (checks: "
              f"{', '.join(sorted(cfg.checks)) or 'none'})", file=sys.stderr)
        return 3
    board = Board(names, sys.stdout if not args.json else None)
    answer = gate(cfg, names, args.timeout, args.stable, board)
    if args.json:
        print(json.dumps(answer, indent=2))
    elif answer.get("ok"):
        print(f"healthy: {len(names)} check(s) passed for {args.stable:g}s in a row")
    else:
        for name, standing in answer.get("checks", {}).items():
            if standing["stable_s"] < args.stable:
                # A pass that has not lasted --stable yet says so, or "OK" would read as
                # healthy.
                lasted = (f" (passing for {standing['stable_s']:g}s of --stable "
                          f"{args.stable:g}s)" if standing["status"] in ("OK", "WARN") else "")
                print(f"not healthy after {args.timeout:g}s: {name} {_why(standing)}{lasted}",
                      file=sys.stderr)
    return 0 if answer.get("ok") else 1


def _why(standing: Message) -> str:
    """A check's last result, and why the run asked for did not come."""
    held = standing.get("held") or ""
    if standing["status"] == "not run yet" and held:
        return f"waits: {held}"
    said = f"{standing['status']} - {shown(standing['summary'])}"
    return f"{said}; it waits: {held}" if held else said


def gate(cfg: Config, names: list[str], timeout: float, stable: float, board: Board
         ) -> Message:
    """Wait for ``names`` through the running daemon, or here when none answers."""
    request = {"command": "wait", "checks": names, "timeout": timeout, "stable": stable}
    try:
        answer = control.request(cfg.daemon.state_dir, request, board.show)
    except control.Unreachable:
        answer = wait_here(cfg, names, timeout, stable, board.show)
    board.close()
    return answer


def wait_here(cfg: Config, names: list[str], timeout: float, stable: float,
              show: Callable[[Message], None]) -> Message:
    """No daemon runs: run the checks here, each second, as it would (a check that loads
    its service no sooner than its floor, and not while its service is under
    maintenance)."""
    gate, runner = Gate(names, stable), Runner()
    windows, saved = floor.saved(cfg)
    began: dict[str, float] = {}
    for name in names:
        if (last := floor.last_run(cfg.checks[name], saved)) is not None:
            # Its last run, by whoever made it, counts, and starts its floor.
            gate.seed(name, last)
            began[name] = floor.began(last)
    deadline = time.monotonic() + timeout
    while not gate.healthy(time.time()) and time.monotonic() < deadline:
        turn = time.monotonic()
        for name in names:
            spec = cfg.checks[name]
            why = _held(spec, windows, began.get(name))
            if why is not None:
                if gate.hold(name, why):
                    show({"event": "wait.held", "check": name, "reason": why})
                continue
            began[name] = time.monotonic()
            outcome = runner.run(spec.check, spec.timeout)
            result = outcome.result
            gate.saw(name, result.status.name, result.summary, time.time())
            if spec.floor:
                floor.note(cfg, name, outcome)
            show({"event": "wait.result", "check": name, "status": result.status.name,
                  "summary": result.summary,
                  "stable_s": round(gate.stable_for(name, time.time()), 1)})
        time.sleep(max(0.0, 1.0 - (time.monotonic() - turn)))
    return gate.answer(time.time())


def _held(spec: CheckSpec, windows: list[Window], began: float | None) -> str | None:
    """Why ``spec`` does not run here now, as the daemon would hold it."""
    service = spec.service
    if type(spec.check).min_interval and service is not None:
        window = next((w for w in windows if w.covers(spec.name, service)), None)
        if window is not None:
            return maintained(window)
    if began is not None and (wait := began + spec.floor - time.monotonic()) > 0:
        return paced(spec.floor, time.time() + wait)
    return None


class Board:
    """Progress: on a terminal one line per check, redrawn in place; else a line per
    result; nothing for --json."""

    def __init__(self, names: list[str], out: TextIO | None) -> None:
        self.lines = {name: f"  {name}: not run yet" for name in names}
        self.out, self.live, self.turn = out, bool(out and out.isatty()), 0

    def show(self, event: Message) -> None:
        if self.out is None or event.get("event") not in ("wait.result", "wait.held"):
            return
        self.turn += 1
        if event["event"] == "wait.held":
            line = f"{event['check']}: waits - {event['reason']}"
        else:
            line = (f"{event['check']}: {event['status']} ({event['stable_s']:g}s) - "
                    f"{shown(str(event['summary']))[:80]}")
        if not self.live:
            print(line, file=self.out, flush=True)
            return
        self.lines[event["check"]] = f"{SPINNER[self.turn % 4]} {line}"
        self.out.write("\x1b[s" + "\n".join(f"\x1b[2K{text}" for text in self.lines.values())
                       + "\x1b[u")
        self.out.flush()

    def close(self) -> None:
        if self.live and self.out is not None:
            self.out.write("\n" * len(self.lines))
