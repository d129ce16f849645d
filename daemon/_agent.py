"""The daemon: runs checks through the scheduler, keeps their state, and handles
signals in one place (supervisord's way: handlers only queue, the main loop acts)."""

from __future__ import annotations

import collections
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psutil
import structlog

from vigil import _config as config_mod
from vigil import _logs as logs
from vigil import _proc as proc
from vigil import _runtime as runtime
from vigil._check import Result, Status
from vigil._config import CheckSpec, Config
from vigil._control import ControlServer, Send
from vigil._errors import ConfigError
from vigil._healer import Healer
from vigil._runner import Runner
from vigil._scheduler import Scheduler
from vigil._sdnotify import Notifier
from vigil._statemachine import CheckState, State
from vigil._store import Store

log = structlog.get_logger("vigil")

#: How often the main loop wakes to save state, even when no signal arrives.
TICK = 0.5


@dataclass
class CheckRuntime:
    spec: CheckSpec
    machine: CheckState
    last: dict[str, Any] | None = None
    counts: collections.Counter[str] = field(default_factory=collections.Counter)

    @property
    def failing_now(self) -> bool:
        # Not yet run counts as failing: a dependency is trusted only once it passed.
        return not self.last or not Status[self.last["status"]].passing


class Agent:
    def __init__(self, config: Config, config_arg: str | None = None) -> None:
        self.config = config
        self.config_arg = config_arg
        # Fixed for the life of the process: the state file and the control socket live here.
        self.state_dir = config.daemon.state_dir
        self.store = Store(self.state_dir)
        self.stopping = threading.Event()
        self.runner = Runner(self.stopping)
        self.scheduler = Scheduler(self._run_check, self._run_lost)
        self.healer = Healer(self._service_unhealthy, self._wake_service)
        self.control = ControlServer(self.state_dir, self._control)
        self.notifier = Notifier()
        self.checks: dict[str, CheckRuntime] = {}
        self._lock = threading.Lock()
        self._dirty = threading.Event()
        self._signals: collections.deque[int] = collections.deque()
        self._wake = threading.Event()
        # Written into every state save, so that `vigil status` can tell this process
        # from a later one that got the same PID.
        self.identity = {"pid": os.getpid(), "create_time": psutil.Process().create_time(),
                         "started": datetime.now(UTC).isoformat()}

    # -- lifecycle -------------------------------------------------------------------

    def run(self) -> int:
        saved = self.store.load()
        self._install_checks(self.config, saved.get("checks", {}))
        self.healer.install(self.config.services, saved.get("services", {}), self.state_dir)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
            signal.signal(signum, self._queue_signal)
        self.scheduler.start({n: rt.spec.interval for n, rt in self._enabled().items()})
        self.control.start()
        log.info("daemon.started", pid=os.getpid(), config=self.config.source,
                 state_dir=str(self.state_dir), checks=len(self._enabled()),
                 services=len(self.config.services), plugins=sorted(self.config.plugins.infos),
                 watchdog_s=self.notifier.watchdog)
        self._save()
        self._announce()
        self.notifier.send("READY=1", f"STATUS={self.summary()}")
        status, pinged = "", 0.0
        while not self.stopping.is_set():
            self._wake.wait(TICK)
            self._wake.clear()
            while self._signals:
                self._handle(self._signals.popleft())
            if self._dirty.is_set():
                self._save()
            if (line := self.summary()) != status:
                status = line
                self.notifier.send(f"STATUS={line}")
            pinged = self._watchdog(pinged)
        self._shutdown()
        return 0

    def _watchdog(self, pinged: float) -> float:
        """WATCHDOG=1 at half the watchdog period, but only while the scheduler's own
        heartbeat job keeps running: a wedged scheduler must get vigil restarted."""
        period = self.notifier.watchdog
        now = time.monotonic()
        if period is None or now - pinged < period / 2:
            return pinged
        if now - self.scheduler.last_progress > max(3.0, period / 2):
            log.error("daemon.wedged", since_s=round(now - self.scheduler.last_progress, 1),
                      reason="the scheduler stopped making progress; no watchdog ping")
            return now
        self.notifier.send("WATCHDOG=1")
        return now

    def summary(self) -> str:
        enabled = self._enabled()
        states = collections.Counter(rt.machine.state.value for rt in enabled.values())
        line = f"{len(enabled)} checks: " + ", ".join(
            f"{count} {state}" for state, count in sorted(states.items()))
        healing = [name for name in self.healer.services if self.healer.healing(name)]
        given_up = [n for n, rt in self.healer.services.items() if rt.given_up]
        if healing:
            line += f"; healing {', '.join(healing)}"
        if given_up:
            line += f"; gave up on {', '.join(given_up)}"
        return line

    def _queue_signal(self, signum: int, _frame: Any) -> None:
        self._signals.append(signum)
        self._wake.set()

    def _handle(self, signum: int) -> None:
        if signum in (signal.SIGTERM, signal.SIGINT):
            log.info("daemon.stopping", signal=signal.Signals(signum).name)
            self.stopping.set()
        elif signum == signal.SIGHUP:
            self.reload()
        elif signum == signal.SIGUSR1:
            log.info("daemon.run_all", checks=len(self._enabled()))
            self.scheduler.run_all_now()

    def _shutdown(self) -> None:
        self.notifier.send("STOPPING=1", "STATUS=stopping")
        self.control.stop()
        self.scheduler.shutdown()
        # Listed before their processes are stopped: what was still running at the stop.
        still_running = self.runner.hung()
        proc.stop_all()
        with self._lock:
            for rt in self.checks.values():
                self._close(rt)
        self._save()
        runtime.withdraw(self.config.source)
        log.info("daemon.stopped", hung_checks=still_running)

    def reload(self) -> None:
        try:
            new = config_mod.load(self.config_arg)
        except ConfigError as exc:
            log.error("config.rejected", errors=[str(i) for i in exc.issues],
                      kept=self.config.source)
            return
        old_names = set(self.checks)
        if new.daemon.state_dir != self.state_dir:
            log.warning("config.restart_needed", key="daemon.state_dir",
                        running=str(self.state_dir), wanted=str(new.daemon.state_dir),
                        reason="the state folder changes only at restart")
        self.notifier.send("RELOADING=1")
        logs.configure(new.daemon.log_level, new.daemon.log_file)
        self._install_checks(new, {})
        self.healer.install(new.services, {}, self.state_dir)
        self.config = new
        self.scheduler.set_checks({n: rt.spec.interval for n, rt in self._enabled().items()})
        log.info("config.reloaded", config=new.source, checks=len(self.checks),
                 added=sorted(set(self.checks) - old_names),
                 removed=sorted(old_names - set(self.checks)))
        self._announce()
        self.notifier.send("READY=1", f"STATUS={self.summary()}")
        self._dirty.set()

    def _announce(self) -> None:
        """Tell `vigil status` and `vigil logs` what this daemon runs with, whatever the
        config on disk says later."""
        try:
            runtime.announce(self.config.source, self.identity, self.state_dir,
                             self.config.daemon.log_file)
        except OSError as exc:
            log.warning("runtime.unavailable", path=str(exc.filename or ""), error=str(exc),
                        hint="vigil status and vigil logs read the config on disk instead")

    def _install_checks(self, config: Config, saved: dict[str, Any]) -> None:
        """Swap in the checks of ``config``; a check that keeps its name and type keeps
        its state and last result, from the running daemon or from the state file."""
        runtimes = {}
        with self._lock:
            for name, spec in config.checks.items():
                machine = CheckState(spec.fall, spec.rise)
                old = self.checks.get(name)
                if old and old.spec.type == spec.type:
                    machine.restore(old.machine.to_dict())
                    runtimes[name] = CheckRuntime(spec, machine, old.last, old.counts)
                    continue
                entry = saved.get(name, {})
                if entry.get("type") == spec.type:
                    machine.restore(entry)
                runtimes[name] = CheckRuntime(spec, machine, entry.get("last"),
                                              collections.Counter(entry.get("counts", {})))
            for name, rt in self.checks.items():
                if runtimes.get(name, rt).spec.check is not rt.spec.check:
                    self._close(rt)
            self.checks = runtimes

    def _enabled(self) -> dict[str, CheckRuntime]:
        return {n: rt for n, rt in self.checks.items() if rt.spec.enabled}

    @staticmethod
    def _close(rt: CheckRuntime) -> None:
        try:
            rt.spec.check.close()
        except Exception as exc:
            log.error("check.error", check=rt.spec.name, error=f"close() raised {exc}")

    # -- one run ---------------------------------------------------------------------

    def _run_check(self, name: str) -> None:
        rt = self.checks.get(name)
        if rt is None or self.stopping.is_set():
            return
        spec = rt.spec
        outcome = self.runner.run(spec.check, spec.timeout)
        if self.stopping.is_set():
            return
        result = outcome.result
        status = result.status.name
        if outcome.kind == "timeout":
            log.warning("check.timeout", check=name, timeout_s=spec.timeout, summary=result.summary)
        elif outcome.kind == "error":
            log.error("check.error", check=name, error=outcome.error)
        duration_ms = round(outcome.duration_ms, 2)
        with self._lock:
            transition = rt.machine.observe(result.status)
            rt.counts["runs"] += 1
            rt.counts[outcome.kind] += 1
            rt.last = {**result.to_dict(), "duration_ms": duration_ms,
                       "at": datetime.now(UTC).isoformat()}
        level = log.info if result.status.passing else log.warning
        level("check.result", check=name, status=status, summary=result.summary,
              duration_ms=duration_ms, metrics=result.metrics, state=rt.machine.state.value)
        if transition:
            old, new = transition
            level = log.warning if new is State.FAILING else log.info
            level("check.state_changed", check=name, **{"from": old.value, "to": new.value},
                  status=status, summary=result.summary)
            self.config.plugins.notify("vigil_state_changed", check=name, old=old.value,
                                       new=new.value, result=result)
        self.config.plugins.notify("vigil_check_result", check=name, result=result,
                                   state=rt.machine.state.value)
        if spec.service:
            self.healer.observe(name, spec.service, result, rt.machine.state)
        self._pace(rt, result)
        self._dirty.set()

    def _run_lost(self, name: str, why: str) -> None:
        rt = self.checks.get(name)
        if rt is None:
            return
        with self._lock:  # snapshot() copies the counts from the main loop
            rt.counts[why] += 1
        reason = "previous run still running" if why == "skipped" else "ran too late"
        log.warning(f"check.{why}", check=name, reason=reason, **{why: rt.counts[why]})
        self._dirty.set()

    def _pace(self, rt: CheckRuntime, result: Result) -> None:
        """Fast confirmation (HAProxy's fastinter): after a first failure, re-run at the
        fast interval until the check is confirmed FAILING or passes; likewise while a
        heal of its service waits for it to pass."""
        spec = rt.spec
        healing = spec.service is not None and self.healer.healing(spec.service)
        fast = not result.status.passing and (rt.machine.state is not State.FAILING or healing)
        wanted = spec.fast_interval if fast else spec.interval
        if self.scheduler.pace(spec.name) != wanted:
            self.scheduler.set_interval(spec.name, wanted)

    def _guards(self, service: str) -> list[CheckRuntime]:
        return [rt for rt in self._enabled().values() if rt.spec.service == service]

    def _service_unhealthy(self, service: str) -> bool:
        return any(rt.failing_now for rt in self._guards(service))

    def _wake_service(self, service: str) -> int:
        """Right after a heal command: run the service's checks now, then fast."""
        guards = self._guards(service)
        for rt in guards:
            self.scheduler.set_interval(rt.spec.name, rt.spec.fast_interval, now=True)
        return len(guards)

    def _control(self, request: dict[str, Any], send: Send) -> dict[str, Any]:
        if request.get("command") != "heal":
            return {"ok": False, "error": f"unknown command {request.get('command')!r}"}
        service = str(request.get("service"))
        if service not in self.healer.services:
            known = ", ".join(self.healer.services) or "none"
            return {"ok": False, "error": f"no service named {service!r} (known: {known})"}
        log.info("heal.requested", service=service, by="vigil heal")
        self.healer.reset(service)
        outcome = self.healer.heal(service, "operator asked (vigil heal)",
                                   progress=lambda event, **f: send({"event": event, **f}))
        self._dirty.set()
        return {"ok": outcome["outcome"] == "heal.succeeded", **outcome}

    # -- state -----------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            checks = {
                name: {
                    "type": rt.spec.type,
                    "enabled": rt.spec.enabled,
                    "service": rt.spec.service,
                    "interval_s": rt.spec.interval,
                    **rt.machine.to_dict(),
                    "last": rt.last,
                    "counts": dict(rt.counts),
                }
                for name, rt in self.checks.items()
            }
        return {
            "daemon": {**self.identity, "updated": datetime.now(UTC).isoformat(),
                       "config": self.config.source},
            "checks": checks,
            "services": self.healer.snapshot(),
        }

    def _save(self) -> None:
        self._dirty.clear()
        try:
            self.store.write(self.snapshot())
        except OSError as exc:
            log.error("state.write_failed", path=str(self.store.path), error=str(exc))
            self._dirty.set()
