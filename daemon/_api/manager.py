"""The interface of a service manager: what vigil needs to heal a service.

Implementations live in ``service/`` and come from plugins through the
``vigil_service_managers(register)`` hook, so a third party can add docker or
supervisord the way the built-in systemd, launchd, brew and command managers are added.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NotRequired, TypedDict

from vigil._kit import proc
from vigil._kit.redact import redact

#: Bytes of a command's output kept for a failed heal's event: the end, where errors are.
OUTPUT_TAIL = 2000
#: ... and for a heal that worked: a few last lines, not the service's access log.
BRIEF_TAIL = 300


#: What a watcher saw of a death, or what a failed start left (``start_failed``): fields
#: of the event that says it, in the manager's own words.
Seen = dict[str, Any]


class CommandFields(TypedDict):
    """What a heal event says of the command it ran."""

    command: str
    exit_code: int | None
    timed_out: bool
    output: str
    command_s: float
    port: NotRequired[int]


@dataclass
class Action:
    """What one service-manager command did."""

    argv: list[str]
    returncode: int | None
    output: str
    timed_out: bool = False
    duration_s: float = 0.0
    #: The port the service was started on, when vigil chose one.
    port: int | None = None

    @property
    def ok(self) -> bool:
        """Whether the command exited 0 in time."""
        return self.returncode == 0 and not self.timed_out

    def fields(self, tail: int = OUTPUT_TAIL) -> CommandFields:
        """For a heal event: the command, its exit code and the last ``tail`` characters
        of its output."""
        fields: CommandFields = {
            "command": redact(" ".join(self.argv)), "exit_code": self.returncode,
            "timed_out": self.timed_out, "output": redact(self.output[-tail:]),
            "command_s": round(self.duration_s, 3)}
        if self.port is not None:
            fields["port"] = self.port
        return fields


class ServiceManager:
    """Base class of service managers; subclasses implement the four verbs.

    ``self.options`` holds the manager's own keys of the ``[services.NAME]`` section
    (an instance of ``Options`` when the class declares that dataclass); ``self.timeout``
    is the service's ``start_timeout``; ``self.state`` is a dict persisted across
    daemon restarts, for managers that must remember something (a PID); ``state_dir``
    is vigil's state folder, for files a manager keeps (a program's output).
    """

    Options: ClassVar[type | None] = None
    #: Whether :meth:`watch` tells a stop from a death: ``"deliberate": True`` in what it
    #: reports of a service stopped on purpose (systemd says so; a process's exit does
    #: not). The service's ``respect_stops`` applies only then: elsewhere it is a config
    #: error, since every exit is healed.
    tells_stops: ClassVar[bool] = False

    def __init__(self, name: str, options: Any, timeout: float = 30.0) -> None:
        self.name = name
        self.options = options
        self.timeout = timeout
        self.state: dict[str, Any] = {}
        self.state_dir: Path | None = None
        #: What stops the watch that :meth:`watch` started (``watch_pid`` and
        #: ``watch_unit`` return it).
        self.stop_watching: Callable[[], None] | None = None

    def start(self) -> Action:
        """Start the service (it is not running); return what the command did, or an
        ``Action`` you build (``Action(argv, 0, "started")``) for one done in-process.
        Its time counts against the service's ``start_timeout``."""
        raise NotImplementedError

    def stop(self) -> Action:
        """Stop the service, before a start on another port."""
        raise NotImplementedError

    def restart(self) -> Action:
        """Restart the service (it runs, or vigil cannot tell); as for ``start``."""
        raise NotImplementedError

    def is_running(self) -> bool | None:
        """True or False when the manager knows; None when it cannot tell."""
        raise NotImplementedError

    def details(self) -> dict[str, str]:
        """What the manager itself says of the service, for a failed heal's event
        (systemd: ``systemctl show``); empty when it says nothing more."""
        return {}

    def watch(self, exited: Callable[[Seen], None]) -> bool:
        """Start telling ``exited(seen)``, from any thread, the moment the service dies
        (``seen``: what was seen, for the ``service.exited`` event); whether this manager
        can. When it cannot, vigil learns of a death from the checks, on their interval."""
        return False

    def unwatch(self) -> None:
        """Stop what :meth:`watch` started."""
        if self.stop_watching is not None:
            self.stop_watching()
            self.stop_watching = None

    def start_failed(self) -> Seen | None:
        """Asked every quarter second while vigil waits for a started service's check
        to pass: what shows that the start has already failed (the program exited, the
        unit is ``failed``), as fields of the ``heal.failed`` event; None while the
        service may still come up. The heal then fails at once, not at start_timeout."""
        return None

    def describe(self) -> str:
        """One line for logs and ``vigil status``: ``systemd unit postgresql@15-main``."""
        return f"{type(self).__name__} {self.name}"

    def port_problem(self) -> str | None:
        """Why this manager cannot start its service on a port vigil chooses (the
        service's ``ports`` key), or None when it can, through :meth:`use_port`."""
        return f"the {type(self).__name__.lower()} manager cannot pass a port to its service"

    def asks_for_port(self) -> str | None:
        """The key of this manager's options that takes a port from vigil (a ``{port}``
        placeholder), or None. Such a service must have ``ports``: without them the
        placeholder would start the program with an empty argument."""
        return None

    def use_port(self, port: int) -> None:
        """Make the next start use ``port``; ``self.state["port"]`` already holds it."""
        raise NotImplementedError

    def run(self, argv: list[str], timeout: float | None = None,
            env: dict[str, str] | None = None) -> Action:
        """Run one command as every manager must: argv list, no shell, a timeout."""
        try:
            done = proc.run_command(argv, self.timeout if timeout is None else timeout,
                            max_output=OUTPUT_TAIL, env=env, keep_tail=True)
        except OSError as exc:  # the program itself is missing or not executable
            return Action(list(argv), 127, f"cannot run {argv[0]}: {exc.strerror or exc}")
        output = "\n".join(part for part in (done.stdout.strip(), done.stderr.strip()) if part)
        return Action(done.argv, done.returncode, output, done.timed_out, done.duration_s)
