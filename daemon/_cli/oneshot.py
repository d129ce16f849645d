"""Heal a service from the command line when no daemon runs: the daemon's own healing
code, with a small loop that runs the service's checks until one passes."""

from __future__ import annotations

import threading
import time

from vigil._agent.control import Message
from vigil._config.sections import Config
from vigil._engine.runner import Runner
from vigil._heal.healer import Healer, Progress
from vigil._store.records import State
from vigil._store.store import Store


def heal(cfg: Config, service: str, progress: Progress) -> Message:
    """The heal's outcome, as the daemon's control socket would answer it."""
    store = Store(cfg.daemon.state_dir, cfg.daemon.retention())
    saved = store.load()
    guards = [spec for spec in cfg.checks.values() if spec.service == service]
    runner = Runner()
    stop = threading.Event()

    def poll(name: str) -> None:
        deadline = time.monotonic() + cfg.services[name].start_timeout
        while not stop.is_set() and time.monotonic() < deadline:
            for spec in guards:
                result = runner.run(spec.check, spec.timeout).result
                healer.observe(spec.name, name, result, State.OK if result.status.passing
                               else State.FAILING)
                if result.status.passing:
                    return
            stop.wait(min(spec.fast_interval for spec in guards))

    def wake(name: str) -> int:
        if guards:
            threading.Thread(target=poll, args=(name,), daemon=True).start()
        return len(guards)

    healer = Healer(unhealthy=lambda _name: False, wake=wake, record=store.heal)
    healer.install(cfg.services, saved.get("services", {}), cfg.daemon.state_dir)
    healer.reset(service)
    try:
        outcome = healer.heal(service, "operator asked (vigil heal)", progress=progress)
    finally:
        stop.set()
    store.services({**saved.get("services", {}), **healer.snapshot()})
    store.close()
    return {"ok": outcome.ok, **outcome.record()}
