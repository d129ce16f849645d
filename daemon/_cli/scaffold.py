"""``vigil plugin new NAME``: a plugin package that installs and passes its own tests as
written: a typed module with a check type, a service manager and/or an alert sink, a
pytest file on ``vigil.testing``, a pyproject with the ``vigil`` entry point, a README.
The parts are small working examples an author edits, not blanks to fill."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

NAME = re.compile(r"^[a-z][a-z0-9_]*$")

PYPROJECT = """\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "vigil-{dist}"
version = "0.1.0"
description = "A vigil plugin: {what}"
requires-python = ">=3.11"
dependencies = ["vigil-daemon"]

[project.optional-dependencies]
test = ["pytest", "mypy"]

[project.entry-points.vigil]
{name} = "{module}"

[tool.setuptools]
py-modules = ["{module}"]
"""

HEAD = '''\
"""vigil plugin {name}: {what}."""

from __future__ import annotations

{imports}'''

CHECK = '''

@dataclass
class {cls}CheckOptions:
    #: The file that must exist (relative to the config file).
    path: Path
    #: Its smallest healthy size, in bytes.
    min_bytes: int = 1


class {cls}Check(Check):
    """OK while ``path`` exists with at least ``min_bytes``; CRIT otherwise."""

    Options = {cls}CheckOptions
    options: {cls}CheckOptions

    def run(self) -> Result:
        try:
            size = self.options.path.stat().st_size
        except FileNotFoundError:
            return Result(Status.CRIT, f"{{self.options.path}} is missing")
        status = Status.OK if size >= self.options.min_bytes else Status.CRIT
        return Result(status, f"{{self.options.path}} has {{size}} bytes", {{"size_bytes": size}})


@hookimpl
def vigil_check_types(register: RegisterCheck) -> None:
    register("{name}", {cls}Check)
'''

MANAGER = '''

@dataclass
class {cls}ManagerOptions:
    #: The program that is the service, as an argv list: it runs in the foreground.
    argv: list[str]


class {cls}Manager(ServiceManager):
    """Runs ``argv`` as the service, in a session of its own, and watches its PID: vigil
    asks for the watch again after every start."""

    Options = {cls}ManagerOptions
    options: {cls}ManagerOptions

    def start(self) -> Action:
        child = subprocess.Popen(self.options.argv, start_new_session=True,
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        self.state["pid"] = child.pid
        log.info("{name}.started", service=self.name, pid=child.pid)
        return Action(self.options.argv, 0, f"started as PID {{child.pid}}")

    def stop(self) -> Action:
        pid = self.state.pop("pid", None)
        if pid:
            kill_process_group(pid, signal.SIGTERM)
        return Action(["kill", str(pid)], 0, "stopped")

    def restart(self) -> Action:
        self.stop()
        return self.start()

    def is_running(self) -> bool | None:
        pid = self.state.get("pid")
        if not pid:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    def watch(self, exited: Callable[[dict[str, Any]], None]) -> bool:
        pid = self.state.get("pid")
        self.stop_watching = watch_pid(pid, lambda: exited({{"pid": pid}})) if pid else None
        return self.stop_watching is not None


@hookimpl
def vigil_service_managers(register: RegisterManager) -> None:
    register("{name}", {cls}Manager)
'''

SINK = '''

@dataclass
class {cls}SinkOptions:
    #: Where alerts are appended, one JSON object per line.
    path: Path


class {cls}Sink(AlertSink):
    """Appends each alert to a file: swap the write for your chat's or pager's API."""

    Options = {cls}SinkOptions
    options: {cls}SinkOptions

    def send(self, alert: Alert) -> None:
        try:
            with self.options.path.open("a", encoding="utf-8") as out:
                out.write(json.dumps(alert.to_dict()) + "\\n")
        except OSError as exc:
            raise SinkError(f"cannot write {{self.options.path}}: {{exc}}") from None


@hookimpl
def vigil_alert_sinks(register: RegisterSink) -> None:
    register("{name}", {cls}Sink)
'''

TESTS = {
    "head": '''\
"""The tests of {name}, on vigil.testing: `pip install -e '.[test]'`, then `pytest`."""

from __future__ import annotations

{imports}''',
    "check": '''

def test_the_check_passes_on_a_file_and_fails_without_it(tmp_path: Path) -> None:
    found = tmp_path / "found"
    found.write_text("data")
    assert run_check(make_check("{name}", {{"path": str(found)}})).status is Status.OK
    missing = run_check(make_check("{name}", {{"path": str(tmp_path / "none")}}))
    assert missing.status is Status.CRIT and "is missing" in missing.summary


def test_a_bad_option_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        make_check("{name}", {{"path": "x", "min_bytes": "many"}})
    assert caught.value.issues[0].key == "checks.test.min_bytes"
''',
    "manager": '''

def test_the_manager_starts_watches_and_stops_its_program() -> None:
    manager = make_manager("{name}", {{"argv": [sys.executable, "-c",
                                              "import time; time.sleep(60)"]}})
    assert manager.start().ok and manager.is_running()
    with watch_deaths(manager) as deaths:
        assert deaths.watching
        os.kill(manager.state["pid"], signal.SIGKILL)
        assert deaths.wait(1)[0]["pid"] == manager.state["pid"]
    assert manager.stop().ok and manager.is_running() is False
''',
    "sink": '''

def test_the_sink_writes_each_alert(tmp_path: Path) -> None:
    out = tmp_path / "alerts.jsonl"
    sink = make_sink("{name}", {{"path": str(out)}})
    deliver(sink, make_alert("db"))
    deliver(sink, make_alert("db", "resolved"))
    sent = [json.loads(line) for line in out.read_text().splitlines()]
    assert [alert["status"] for alert in sent] == ["firing", "resolved"]
''',
}

README = """\
# vigil-{dist}

A plugin for vigil, the self-healing health-check agent (the `vigil-daemon` package):
{what}.

Install it beside vigil (`pip install .` in vigil's environment), then configure what it
offers:

```toml
{config}```

`vigil plugins` lists it (`{name}`, from its entry point). Its tests use `vigil.testing`,
and it type-checks as vigil's own plugins do:

```
pip install -e '.[test]'
pytest
mypy --strict {module}.py
```

mypy sees vigil when vigil is installed from a package, or from a checkout in
setuptools' strict editable mode (`pip install --config-settings editable_mode=strict -e
/path/to/vigil`): a plain `pip install -e` of vigil hides it from type checkers.
"""

CONFIG = {
    "check": '[checks.{name}]\ntype = "{name}"\npath = "/var/backups/db.dump"\n',
    "manager": '[services.{name}]\nmanager = "{name}"\nargv = ["/usr/bin/my-server", '
               '"--port", "8080"]\n',
    "sink": '[alerts.{name}]\ntype = "{name}"\npath = "/var/log/vigil-alerts.jsonl"\n',
}


def _from(module: str, names: set[str]) -> str:
    """``from module import names``, one name a line once it is long, as ruff writes it."""
    ordered = sorted(names, key=lambda n: (not n[0].isupper(), n))
    line = f"from {module} import {', '.join(ordered)}\n"
    if len(line) <= 100:
        return line
    return f"from {module} import (\n" + "".join(f"    {n},\n" for n in ordered) + ")\n"


def _imports(parts: list[str]) -> str:
    names = {"hookimpl"}
    stdlib = {"from dataclasses import dataclass"}
    if "check" in parts or "sink" in parts:
        stdlib.add("from pathlib import Path")
    if "check" in parts:
        names |= {"Check", "RegisterCheck", "Result", "Status"}
    if "manager" in parts:
        names |= {"Action", "RegisterManager", "ServiceManager", "get_logger",
                  "kill_process_group", "watch_pid"}
        stdlib |= {"import os", "import signal", "import subprocess",
                   "from collections.abc import Callable", "from typing import Any"}
    if "sink" in parts:
        names |= {"Alert", "AlertSink", "RegisterSink", "SinkError"}
        stdlib |= {"import json"}
    plain = sorted(line for line in stdlib if line.startswith("import "))
    froms = sorted(line for line in stdlib if line.startswith("from "))
    text = "\n".join(plain + froms) + "\n\n" + _from("vigil", names)
    if "manager" in parts:
        text += "\nlog = get_logger()\n"
    return text


def _test_imports(parts: list[str]) -> str:
    kit = set()
    vigil_names = set()
    stdlib = set()
    if "check" in parts:
        kit |= {"make_check", "run_check"}
        vigil_names |= {"ConfigError", "Status"}
        stdlib |= {"from pathlib import Path"}
    if "manager" in parts:
        kit |= {"make_manager", "watch_deaths"}
        stdlib |= {"import os", "import signal", "import sys"}
    if "sink" in parts:
        kit |= {"deliver", "make_alert", "make_sink"}
        stdlib |= {"import json", "from pathlib import Path"}
    plain = sorted(line for line in stdlib if line.startswith("import "))
    froms = sorted(line for line in stdlib if line.startswith("from "))
    text = "\n".join(plain + froms) + "\n\n"
    if "check" in parts:
        text += "import pytest\n\n"
    if vigil_names:
        text += _from("vigil", vigil_names)
    return text + _from("vigil.testing", kit)


def render(name: str, parts: list[str]) -> dict[str, str]:
    """The package's files by path, for a plugin ``name`` with ``parts`` (of "check",
    "manager", "sink")."""
    module, dist = f"vigil_{name}", name.replace("_", "-")
    cls = "".join(word.capitalize() for word in name.split("_"))
    what = " and ".join({"check": "a check type", "manager": "a service manager",
                         "sink": "an alert sink"}[part] for part in parts)
    keys = {"name": name, "module": module, "dist": dist, "cls": cls, "what": what}
    code = HEAD.format(**keys, imports=_imports(parts)) + "".join(
        {"check": CHECK, "manager": MANAGER, "sink": SINK}[part].format(**keys)
        for part in parts)
    tests = TESTS["head"].format(**keys, imports=_test_imports(parts)) + "".join(
        TESTS[part].format(**keys) for part in parts)
    config = "".join(CONFIG[part].format(**keys) for part in parts)
    return {"pyproject.toml": PYPROJECT.format(**keys), f"{module}.py": code,
            f"tests/test_{name}.py": tests,
            "README.md": README.format(**keys, config=config)}


def cmd_plugin(args: argparse.Namespace) -> int:
    name = args.name
    if not NAME.match(name):
        print(f"vigil: {name!r} is not a plugin name: lower-case letters, digits and _, "
              "starting with a letter (it names the check type, the module vigil_NAME and "
              "the package vigil-NAME)", file=sys.stderr)
        return 2
    parts = [part for part in ("check", "manager", "sink") if getattr(args, part)] or [
        "check"]
    folder = Path(args.dir or f"vigil-{name.replace('_', '-')}")
    if folder.exists():
        print(f"vigil: {folder} exists; choose another name or --dir", file=sys.stderr)
        return 1
    for path, text in render(name, parts).items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text(text, encoding="utf-8")
    print(f"wrote {folder}/ ({', '.join(parts)}): cd {folder}; pip install -e '.[test]'; "
          f"pytest; mypy --strict vigil_{name}.py")
    return 0
