"""Check type ``exec``: run any Nagios-compatible plugin.

Exit code 0-3 is the status, the first line the summary, perfdata the metrics."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

from vigil import (
    Check,
    ConfigError,
    RegisterCheck,
    Result,
    Status,
    hookimpl,
    redact,
    run_command,
    split_plugin_output,
)

# Where distributions install monitoring-plugins, so `command = ["check_disk", ...]` works.
PLUGIN_DIRS = (
    "/usr/lib/nagios/plugins",
    "/usr/lib/monitoring-plugins",
    "/usr/lib64/nagios/plugins",
    "/usr/local/libexec/nagios",
    "/opt/homebrew/sbin",
    "/usr/local/sbin",
)


@dataclass
class ExecOptions:
    command: list[str]
    #: Bytes of output kept; a plugin that writes more is cut, never buffered whole.
    max_output: int = 8192

    def __post_init__(self) -> None:
        if not self.command:
            raise ConfigError("command", "must name a program: [\"check_tcp\", \"-p\", \"80\"]")
        found = find_program(self.command[0])
        if found is None:
            raise ConfigError("command", f"program {self.command[0]!r} not found on PATH or in "
                              f"{', '.join(PLUGIN_DIRS)} (Debian: apt install "
                              "monitoring-plugins-basic)")
        self.command = [found, *self.command[1:]]


def find_program(program: str) -> str | None:
    if os.sep in program:
        return program if os.access(program, os.X_OK) else None
    return shutil.which(program) or shutil.which(program, path=os.pathsep.join(PLUGIN_DIRS))


class Exec(Check):
    Options = ExecOptions
    options: ExecOptions

    def run(self) -> Result:
        # Finish a little before the core's deadline, so the kill is ours and reported.
        done = run_command(self.options.command, self.timeout * 0.95, self.options.max_output)
        program = os.path.basename(self.options.command[0])
        if done.timed_out:
            return Result(Status.UNKNOWN, f"{program} timed out after "
                                          f"{done.duration_s:.1f}s; process group killed")
        summary, metrics, perfdata = split_plugin_output(done.stdout)
        if not summary:
            summary = done.stderr.strip().splitlines()[0] if done.stderr.strip() else (
                f"{program} exited {done.returncode} with no output")
        assert done.returncode is not None
        status = Status.from_code(done.returncode)
        if done.returncode > 3 or done.returncode < 0:
            summary = f"{program} exited {done.returncode}: {summary}"
        return Result(status, redact(summary), metrics,
                      {"exit_code": done.returncode, "output": redact(done.stdout[:1000])},
                      perfdata=perfdata)


@hookimpl
def vigil_check_types(register: RegisterCheck) -> None:
    register("exec", Exec)
