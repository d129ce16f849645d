"""``vigil heal SERVICE``: through the running daemon, or directly when none runs, never
beside one; its progress as lines a person reads."""

from __future__ import annotations

import argparse
import logging
import sqlite3
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, TextIO

from vigil._agent import runtime
from vigil._agent.control import Message
from vigil._cli.status import load
from vigil._config.sections import Config
from vigil._kit.visible import shown
from vigil._store.records import DaemonInfo, State

if TYPE_CHECKING:
    from vigil._heal.healstate import Progress


def cmd_heal(args: argparse.Namespace) -> int:
    cfg = load(args)
    if args.service not in cfg.services:
        known = ", ".join(cfg.services) or "none declared"
        print(f"vigil: no service named {args.service!r} (known: {known})", file=sys.stderr)
        return 2
    answer = heal(cfg, args.service)
    if "error" in answer:
        print(f"vigil: {answer['error']}", file=sys.stderr)
        return 2
    if not answer.get("ok"):
        why = answer.get("reason", answer.get("outcome"))
        print(f"vigil: heal of {args.service} did not succeed: {why}",
              file=sys.stderr)
        return 2
    return 0


def heal(cfg: Config, service: str, out: TextIO = sys.stdout) -> Message:
    """Heal through the running daemon, or directly when none runs, showing progress."""
    from vigil._agent import control

    show = _progress_printer(out)
    try:
        return control.request(cfg.daemon.state_dir, {"command": "heal", "service": service},
                               lambda event: show(event.pop("event", "?"), **event))
    except control.Unreachable as exc:
        running = runtime.find(cfg.source) or _daemon_of(cfg)
        if running:
            # Never heal beside a running daemon: two healers of one service race.
            return {"ok": False, "error": f"a daemon runs this config (PID {running['pid']}) "
                    f"but does not answer on its control socket ({exc}); not healing beside "
                    "it"}
        print(f"no daemon runs (none answers on {cfg.daemon.state_dir / control.SOCKET}): "
              f"healing {service} directly", file=sys.stderr)
    # The progress lines say what the heal's log lines would: not both.
    logging.getLogger("vigil.heal").setLevel(logging.CRITICAL)
    return heal_here(cfg, service, show)


def _daemon_of(cfg: Config) -> DaemonInfo | None:
    """The daemon that writes this config's state database, if it still runs."""
    from vigil._agent.runtime import daemon_alive
    from vigil._store import database

    try:
        state = database.read_state_at(cfg.daemon.state_dir)
    except (sqlite3.Error, OSError, ValueError):
        return None
    if state is None:
        return None
    return state["daemon"] if daemon_alive(state["daemon"]) else None


def _progress_printer(out: TextIO) -> Any:
    live = out.isatty()

    def show(event: str, **fields: Any) -> None:
        service = fields.get("service", "")
        if event == "heal.waiting":
            line = (f"waiting for {service}: {fields['elapsed_s']:.0f}s of "
                    f"{fields['timeout_s']:g}s")
            # On a terminal, one line that counts up; in a pipe, one line per step.
            out.write(f"\r\033[K{line}" if live else f"{line}\n")
            out.flush()
            return
        detail = fields.get("action") or ""
        reason = fields.get("reason", "")
        if event == "heal.succeeded":
            reason = f"check passes after {fields['recovery_s']:.1f}s"
        elif event == "heal.failed" and (said := str(fields.get("output") or "").strip()):
            reason = f"{reason}: {said.splitlines()[-1][:200]}"  # the command's last words
        text = f"{event} {service} {detail} {shown(str(reason))}".rstrip()
        out.write(f"\r\033[K{text}\n" if live else f"{text}\n")
        out.flush()

    return show


def heal_here(cfg: Config, service: str, progress: Progress) -> Message:
    """A heal with no daemon running: the daemon's own healing code, with a small loop
    that runs the service's checks until every one has passed. The outcome, as the
    daemon's control socket would answer it."""
    from vigil._engine.runner import Runner
    from vigil._heal.healer import Healer
    from vigil._store.store import Store

    store = Store(cfg.daemon.state_dir, cfg.daemon.retention())
    saved = store.load()
    guards = [spec for spec in cfg.checks.values()
              if spec.service == service and spec.enabled]
    runner = Runner()
    stop = threading.Event()
    #: The guards whose latest run here failed (none ran before the heal).
    failing: set[str] = set()

    def poll(name: str) -> None:
        deadline = time.monotonic() + cfg.services[name].start_timeout
        while not stop.is_set() and time.monotonic() < deadline:
            for spec in guards:
                result = runner.run(spec.check, spec.timeout).result
                passing = result.status.passing
                (failing.discard if passing else failing.add)(spec.name)
                healer.observe(spec.name, name, result,
                               State.OK if passing else State.FAILING)
            if healer.services[name].passed.is_set():
                return
            stop.wait(min(spec.fast_interval for spec in guards))

    def wake(name: str) -> list[str]:
        if guards:
            threading.Thread(target=poll, args=(name,), daemon=True).start()
        return [spec.name for spec in guards]

    healer = Healer(failing=lambda _name: frozenset(failing), wake=wake, record=store.heal)
    healer.install(cfg.services, saved.get("services", {}), cfg.daemon.state_dir)
    healer.reset(service)
    try:
        outcome = healer.heal(service, "operator asked (vigil heal)", progress=progress)
    finally:
        stop.set()
    store.services({**saved.get("services", {}), **healer.snapshot()})
    store.close()
    return {"ok": outcome.ok, **outcome.record()}
