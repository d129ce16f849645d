"""The daemon: runs checks through the scheduler, keeps their state, and handles
signals in one place (supervisord's way: handlers only queue, the main loop acts)."""

from __future__ import annotations

import collections
import contextlib
import os
import select
import signal
import socket
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import psutil
import structlog

from vigil._agent import logs, runtime
from vigil._agent.control import ControlServer, Message, Send
from vigil._agent.sdnotify import Notifier
from vigil._agent.windows import Windows
from vigil._alerts.alerter import Alerter
from vigil._alerts.outbox import Outbox
from vigil._alerts.remediation import Remediator
from vigil._api.errors import ConfigError
from vigil._config import loader as config_mod
from vigil._config.sections import Config
from vigil._engine.checktable import CheckTable
from vigil._engine.gate import Gate
from vigil._engine.runner import Runner
from vigil._heal.healer import Healer
from vigil._kit import memory, proc
from vigil._kit.words import plural
from vigil._slo.watch import SloWatch
from vigil._store.database import SCHEMA
from vigil._store.records import DaemonInfo, ServiceEntry, Snapshot, State
from vigil._store.store import Store
from vigil._web.surface import HttpSurface

if TYPE_CHECKING:
    from vigil._baseline.watch import Baselines
    from vigil._web.api import WebApi

log = structlog.get_logger("vigil")

#: How often the main loop wakes to save state, even when no signal arrives.
TICK = 0.5
#: How often the log gets a daemon.summary line.
SUMMARY_EVERY = 300.0
#: How often freed memory is handed back to the system (``memory.trim``).
TRIM_EVERY = 60.0
#: How often `vigil wait` runs the checks it waits for.
WAIT_RERUN = 1.0
#: How long a heal's outcome waits for the state database before it is logged anyway
#: (a full disk must not hold heals up).
PERSIST_WAIT = 2.0


class Agent:
    def __init__(self, config: Config, config_arg: str | None = None) -> None:
        self.config = config
        self.config_arg = config_arg
        # Fixed for the life of the process: the state database and the control socket live here.
        self.state_dir = config.daemon.state_dir
        self.store = Store(self.state_dir, config.daemon.retention())
        self.stopping = threading.Event()
        self.runner = Runner(self.stopping)
        # The healer asks the check table about guards; the table tells the healer results.
        self.healer = Healer(lambda service: self.checks.failing(service),
                             lambda service: self.checks.wake(service), self.store.heal,
                             watch=True)
        self.checks = CheckTable(self.runner, self.healer, self.stopping, self.store)
        self.scheduler = self.checks.scheduler
        self.control = ControlServer(self.state_dir, self._control)
        self.healer.events = self.checks.events
        self.healer.maintenance = self.checks.maintenance
        self.windows = Windows(self.state_dir, self.checks)
        self.healer.hold, self.healer.release = self.windows.hold, self.windows.release
        self.healer.persist = self._persist
        self.alerter = Alerter(self.checks, self.healer, Outbox(self.store.path),
                               self.checks.events)
        self.remediator = Remediator(self.checks, self.healer, self.alerter.remediation)
        self.objectives = SloWatch(self.state_dir, self.checks.events)
        #: Made with the first check that has a baseline: a daemon without one does not
        #: carry their modules.
        self.baselines: Baselines | None = None
        self.alerter.burns.watch = self.objectives
        self.http = HttpSurface(self._web_api)
        self.notifier = Notifier()
        self._signals: collections.deque[int] = collections.deque()
        # Saved with the state, so that `vigil status` can tell this process from a
        # later one that got the same PID.
        self.identity: DaemonInfo = {
            "pid": os.getpid(), "create_time": psutil.Process().create_time(),
            "started": datetime.now(UTC).isoformat()}
        #: The services' state as last handed to the store.
        self._services: dict[str, ServiceEntry] | None = None
        self._saving = threading.Lock()
        self._summarised = time.monotonic()
        #: When freed memory was last handed back: at the first tick, what starting up
        #: left (the config's parsing, the plugins' loading), then every TRIM_EVERY.
        self._trimmed = 0.0

    # -- lifecycle -------------------------------------------------------------------

    def run(self) -> int:
        memory.limit_arenas()  # before the first thread
        self._restore()
        wake, written = self._take_signals()
        self.alerter.install(self.config.alerts)
        self.alerter.start()
        self.remediator.install(self.config.remediation)
        self.objectives.install(self.config.slos, self.config.daemon.retention(),
                                self.config.daemon.slo_interval)
        self._watch_baselines(self.config)
        self.windows.schedules = self.config.schedules
        self.windows.tick()  # before the first check runs: nothing it covers heals
        self.scheduler.start(self.checks.intervals())
        self.control.start()
        self._serve(self.config)
        log.info("daemon.started", pid=os.getpid(), config=self.config.source,
                 state_dir=str(self.state_dir), checks=len(self.checks.enabled()),
                 services=len(self.config.services), plugins=sorted(self.config.plugins.infos),
                 watchdog_s=self.notifier.watchdog)
        self._announce()
        self.notifier.send("READY=1", f"STATUS={self.summary()}")
        status, pinged = "", 0.0
        while not self.stopping.is_set():
            # A signal wakes this at once (its number is written to the wakeup socket);
            # otherwise the tick does.
            if select.select([wake], [], [], TICK)[0]:
                with contextlib.suppress(BlockingIOError):
                    wake.recv(4096)
            while self._signals:
                self._handle(self._signals.popleft())
            if step := self.scheduler.keep_time():
                self.checks.clock_stepped(step)
                self.healer.clock_stepped(step)
            self._save()
            self.remediator.tick(time.time())
            self.windows.tick()
            if (line := self.summary()) != status:
                status = line
                self.notifier.send(f"STATUS={line}")
            self._log_summary()
            if time.monotonic() - self._trimmed >= TRIM_EVERY:
                self._trimmed = time.monotonic()
                memory.trim()
            pinged = self._watchdog(pinged)
        self._shutdown()
        signal.set_wakeup_fd(-1)
        wake.close()
        written.close()
        return 0

    def _restore(self) -> None:
        """The checks and services as the state database left them, saved back at once:
        `vigil status` finds every check (with its restored state) once started."""
        saved = self.store.load()
        self.checks.install(self.config, saved.get("checks", {}))
        self.healer.install(self.config.services, saved.get("services", {}), self.state_dir)
        self.store.daemon({**self.identity, "config": self.config.source})
        self._save()
        self.store.start()
        self.store.flush()

    def _take_signals(self) -> tuple[socket.socket, socket.socket]:
        """Install the signal handlers, which only queue (a handler that took a lock the
        main loop holds could deadlock it). Python writes each signal's number to the
        second socket of the pair returned, which wakes the main loop waiting on the
        first; both stay open for the life of the loop."""
        wake, written = socket.socketpair()
        for sock in (wake, written):
            sock.setblocking(False)
        signal.set_wakeup_fd(written.fileno(), warn_on_full_buffer=False)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
            signal.signal(signum, self._queue_signal)
        return wake, written

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
        states = +self.checks.states  # the states no check is in left out
        line = f"{plural(sum(states.values()), 'check')}: " + ", ".join(
            f"{count} {state}" for state, count in sorted(states.items()))
        healing = [name for name in self.healer.services if self.healer.healing(name)]
        given_up = [n for n, rt in self.healer.services.items() if rt.given_up]
        if healing:
            line += f"; healing {', '.join(healing)}"
        if given_up:
            line += f"; gave up on {', '.join(given_up)}"
        return line

    def _log_summary(self) -> None:
        """Every SUMMARY_EVERY, one line with the count of checks per state: the log at
        the default level says nothing of checks that stay healthy."""
        now = time.monotonic()
        if now - self._summarised < SUMMARY_EVERY:
            return
        self._summarised = now
        enabled = self.checks.enabled().values()
        states = collections.Counter(rt.machine.state.value for rt in enabled)
        log.info("daemon.summary", checks=len(enabled), states=dict(sorted(states.items())),
                 runs=sum(rt.counts["runs"] for rt in enabled),
                 failing=sorted(rt.spec.name for rt in enabled
                                if rt.machine.state is State.FAILING)[:20])

    def _queue_signal(self, signum: int, _frame: Any) -> None:
        self._signals.append(signum)

    def _handle(self, signum: int) -> None:
        if signum in (signal.SIGTERM, signal.SIGINT):
            log.info("daemon.stopping", signal=signal.Signals(signum).name)
            self.stopping.set()
        elif signum == signal.SIGHUP:
            self.reload()
        elif signum == signal.SIGUSR1:
            log.info("daemon.run_all", checks=len(self.checks.enabled()))
            self.scheduler.run_all_now()

    def _shutdown(self) -> None:
        self.notifier.send("STOPPING=1", "STATUS=stopping")
        self.objectives.close()
        if self.baselines is not None:
            self.baselines.close()
        self.control.stop()
        self.http.close()
        self.scheduler.shutdown()
        # Listed before their processes are stopped: what still ran at the stop (and did
        # not end within half a second: a run under way is no hang).
        still_running = self.runner.hung(grace=0.5)
        self.healer.close()
        self.alerter.close()
        proc.stop_all()
        self.checks.close()
        self._save()
        self.store.close()
        runtime.withdraw(self.config.source)
        log.info("daemon.stopped", hung_checks=still_running)

    def reload(self) -> None:
        try:
            new = config_mod.load(self.config_arg)
        except ConfigError as exc:
            log.error("config.rejected", errors=[str(i) for i in exc.issues],
                      kept=self.config.source)
            return
        old_names = set(self.checks.runtimes)
        if new.daemon.state_dir != self.state_dir:
            log.warning("config.restart_needed", key="daemon.state_dir",
                        running=str(self.state_dir), wanted=str(new.daemon.state_dir),
                        reason="the state folder changes only at restart")
        self.notifier.send("RELOADING=1")
        logs.configure(new.daemon.log_level, new.daemon.log_file,
                       group=new.daemon.group_read)
        self.checks.install(new, {})
        self.healer.install(new.services, {}, self.state_dir)
        self.alerter.install(new.alerts)
        self.remediator.install(new.remediation)
        self.objectives.install(new.slos, new.daemon.retention(), new.daemon.slo_interval)
        self._watch_baselines(new)
        self._serve(new)
        self.config = new
        self.windows.schedules, self.windows.read_at = new.schedules, 0.0
        self.scheduler.set_checks(self.checks.intervals())
        names = set(self.checks.runtimes)
        log.info("config.reloaded", config=new.source, checks=len(names),
                 added=sorted(names - old_names), removed=sorted(old_names - names))
        # The page takes the new set of checks and services from this.
        self.checks.events.publish("config.reloaded", checks=sorted(names))
        self._announce()
        self.notifier.send("READY=1", f"STATUS={self.summary()}")

    def _watch_baselines(self, config: Config) -> None:
        checks = {name: rt.spec for name, rt in self.checks.runtimes.items()
                  if rt.spec.enabled}
        if self.baselines is None and any(spec.baseline for spec in checks.values()):
            from vigil._baseline.watch import Baselines

            self.baselines = self.checks.baselines = Baselines(self.state_dir, self.store)
        if self.baselines is not None:
            self.baselines.install(checks, config.daemon.baseline_window)
        else:  # nothing watched: no word of an earlier daemon's baselines stays
            self.store.baselines({})

    def _serve(self, config: Config) -> None:
        """The HTTP surface as ``config`` wants it (the web modules only when it is on)."""
        address = config.daemon.http_address()
        if address is None and self.http.api is None:
            self.http.apply(None, None)
            return
        from vigil._web.access import access_of

        self.http.apply(address, access_of(config.daemon))
        daemon = config.daemon
        # The file the token is in: its own, or the config that holds it inline.
        holder = daemon.http_token_file or (config.source if daemon.http_token else "")
        if holder and os.path.isfile(holder):
            with contextlib.suppress(OSError):
                if (mode := os.stat(holder).st_mode) & 0o044:
                    log.warning("http.token_readable", path=holder, mode=oct(mode & 0o777),
                                hint=f"other users can read it; chmod 600 {holder}")

    def _web_api(self) -> WebApi:
        """The endpoints, made (and their modules imported) once HTTP is on."""
        from vigil._web.access import access_of
        from vigil._web.api import WebApi

        return WebApi(self.checks, self.healer, self.checks.events, self.state_dir,
                      access_of(self.config.daemon), lambda: self.scheduler.last_progress,
                      self.alerter.stats, lambda: list(self.objectives.reports.values()),
                      lambda: self.baselines.snapshot() if self.baselines else {},
                      lambda: self.baselines.forecasts() if self.baselines else {})

    def _announce(self) -> None:
        """Tell `vigil status` and `vigil logs` what this daemon runs with, whatever the
        config on disk says later."""
        try:
            runtime.announce(self.config.source, self.identity, self.state_dir,
                             self.config.daemon.log_file)
        except OSError as exc:
            log.warning("runtime.unavailable", path=str(exc.filename or ""), error=str(exc),
                        hint="vigil status and vigil logs read the config on disk instead")

    def _control(self, request: Message, send: Send) -> Message:
        command = request.get("command")
        if command == "status":
            return {"ok": True, "state": self._status()}
        if command == "silences":
            self.alerter.silences_changed()
            return {"ok": True}
        if command == "wait":
            return self._wait(request, send)
        if command == "maintenance":
            self.windows.refresh()
            return {"ok": True}
        if command != "heal":
            return {"ok": False, "error": f"unknown command {command!r}"}
        service = str(request.get("service"))
        if service not in self.healer.services:
            known = ", ".join(self.healer.services) or "none"
            return {"ok": False, "error": f"no service named {service!r} (known: {known})"}
        outcome = self.healer.requested(service, "vigil heal",
                                        progress=lambda event, **f: send({"event": event, **f}))
        return {"ok": outcome.ok, **outcome.record()}

    def _status(self) -> Snapshot:
        """`vigil status`: every check and service as this daemon sees them now (the
        state database is written only when something changes)."""
        info: DaemonInfo = {**self.identity, "config": self.config.source,
                            "updated": datetime.now(UTC).isoformat()}
        return {"schema": SCHEMA, "daemon": info, "checks": self.checks.view(),
                "services": self.healer.snapshot()}

    def _wait(self, request: Message, send: Send) -> Message:
        """`vigil wait`: run the named checks now and every WAIT_RERUN until each has
        passed for ``stable`` seconds in a row, or ``timeout`` passed; each result goes
        back as it comes, and once why a check asked to run does not (``held``)."""
        names = [n for n in request.get("checks", []) if n in self.checks.enabled()]
        gate = Gate(names, float(request.get("stable", 10.0)))
        view = self.checks.view()
        for name in names:
            if self.checks.runtimes[name].spec.floor:
                gate.seed(name, view[name]["last"])
        deadline = time.monotonic() + float(request.get("timeout", 300.0))
        listener = self.checks.events.listen()
        try:
            rerun = 0.0
            while not gate.healthy(time.time()) and time.monotonic() < deadline:
                if time.monotonic() - rerun >= WAIT_RERUN:
                    rerun = time.monotonic()
                    for name in names:
                        self.checks.run_now(name)
                        if gate.hold(name, self.checks.held(name)):  # said once
                            send({"event": "wait.held", "check": name,
                                  "reason": gate.standing[name].held})
                for event in listener.take(0.25):
                    if event.get("event") == "check.result" and event["check"] in names:
                        gate.saw(event["check"], event["status"], event["summary"],
                                 event["at"])
                        send({"event": "wait.result", **{k: event[k] for k in (
                            "check", "status", "summary")},
                              "stable_s": round(gate.stable_for(event["check"], time.time()),
                                                1)})
        finally:
            self.checks.events.forget(listener)
        return gate.answer(time.time())

    # -- state -----------------------------------------------------------------------

    def _save(self) -> None:
        """Hand the services' state to the store when it changed (the check table hands
        over each check's as it runs). The store's writer commits it."""
        with self._saving:  # the main loop's tick, and a heal that just ended
            services = self.healer.snapshot()
            if services != self._services:
                self._services = services
                self.store.services(services)

    def _persist(self) -> None:
        """The services' state committed now: a heal's outcome, before it is logged."""
        self._save()
        self.store.flush(timeout=PERSIST_WAIT)
