"""Every hook of hookspecs.py is documented in plugins/README.md with its signature,
and called by the core with the arguments that signature names."""

from __future__ import annotations

import importlib
import threading
from pathlib import Path

from tests.helpers import ROOT, wait_until
from vigil import hookspecs
from vigil._cli.init import detect
from vigil._config import loader as _config
from vigil._config.plugins import Plugins
from vigil._engine.checktable import CheckTable
from vigil._engine.runner import Runner
from vigil._heal.healer import Healer
from vigil._store.store import Store

GUIDE = ROOT / "plugins" / "README.md"


RECORDER = """
from vigil import AlertSink, Check, Result, ServiceManager, Status, hookimpl

CALLS = []


def record(hook, **kwargs):
    CALLS.append((hook, sorted(kwargs)))


class Flip(Check):
    def run(self):
        self.runs = getattr(self, "runs", 0) + 1
        return Result(Status.OK if self.runs == 1 else Status.CRIT, "flip")


class Nothing(ServiceManager):
    pass


class Quiet(AlertSink):
    def send(self, alert):
        pass


@hookimpl
def vigil_check_types(register):
    record("vigil_check_types", register=register)
    register("flip", Flip)


@hookimpl
def vigil_service_managers(register):
    record("vigil_service_managers", register=register)
    register("nothing", Nothing)


@hookimpl
def vigil_alert_sinks(register):
    record("vigil_alert_sinks", register=register)
    register("quiet", Quiet)


@hookimpl
def vigil_detect(add):
    record("vigil_detect", add=add)


@hookimpl
def vigil_check_result(check, result, state):
    record("vigil_check_result", check=check, result=result, state=state)


@hookimpl
def vigil_state_changed(check, old, new, result):
    record("vigil_state_changed", check=check, old=old, new=new, result=result)
"""


def hooks() -> list[str]:
    found = [name for name in vars(hookspecs) if name.startswith("vigil_")]
    assert len(found) >= 5, found
    return found


def test_every_hook_is_documented_with_its_full_signature() -> None:
    manager = Plugins().manager
    guide = GUIDE.read_text()
    for hook in hooks():
        argnames = getattr(manager.hook, hook).spec.argnames
        heading = f"### `{hook}({', '.join(argnames)})`"
        assert heading in guide, f"plugins/README.md lacks {heading}"


def test_every_hook_is_called_by_the_core_with_its_arguments(tmp_path: Path,
                                                             monkeypatch) -> None:
    (tmp_path / "recorder.py").write_text(RECORDER)
    monkeypatch.syspath_prepend(str(tmp_path))
    config = tmp_path / "config.toml"
    config.write_text('[daemon]\nstate_dir = "s"\nplugins = ["recorder"]\n'
                      '[checks.rec]\ntype = "flip"\ninterval = "1h"\nfall = 1\n')
    cfg = _config.load(str(config))
    detect(cfg.plugins)
    stopping = threading.Event()
    healer = Healer(failing=lambda _s: (), wake=lambda _s: [])
    table = CheckTable(Runner(stopping), healer, stopping, Store(tmp_path))
    table.install(cfg, {})
    table.scheduler.start({})  # pacing needs a running scheduler; no job of its own
    recorded = importlib.import_module("recorder").CALLS
    results = lambda: sum(hook == "vigil_check_result" for hook, _ in recorded)  # noqa: E731
    try:
        table.run("rec")
        # The run ends on a worker thread: the hooks are called there.
        wait_until(lambda: results() == 1, 5, "the first run's hooks")
        table.run("rec")
        wait_until(lambda: results() == 2, 5, "the second run's hooks")
    finally:
        table.scheduler.shutdown()
    calls = dict(recorded)
    manager = cfg.plugins.manager
    for hook in hooks():
        assert hook in calls, f"the core never called {hook}"
        assert calls[hook] == sorted(getattr(manager.hook, hook).spec.argnames), hook


def test_a_misspelled_hook_fails_its_plugin_with_the_name_it_meant(tmp_path: Path,
                                                                   monkeypatch) -> None:
    (tmp_path / "typo.py").write_text(
        "from vigil import Check, hookimpl\n\n"
        "class Nop(Check):\n    pass\n\n"
        "@hookimpl\ndef vigil_check_type(register):\n    register('nop', Nop)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins = Plugins(["typo"])
    error = plugins.infos["typo"].error
    assert error is not None and error.startswith(
        "unknown hook 'vigil_check_type' (did you mean 'vigil_check_types'?)"), error
    assert "nop" not in plugins.check_types
    assert not plugins.manager.is_registered(importlib.import_module("typo"))


def test_every_command_of_the_parser_has_its_function() -> None:
    import argparse

    from vigil._cli.main import COMMANDS
    from vigil._cli.parser import parser

    sub = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) == set(COMMANDS)
    for command, (module, function) in COMMANDS.items():
        found = getattr(importlib.import_module(f"vigil._cli.{module}"), function, None)
        assert callable(found), f"{command}: vigil._cli.{module}.{function}"
