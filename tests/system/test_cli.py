"""The real ``vigil`` command, run as a user runs it."""

from __future__ import annotations

import json
import os
import plistlib
import select
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import (
    FIXTURES,
    ROOT,
    free_port,
    listening,
    readline_within,
    run_vigil,
    vigil_command,
    wait_until,
)


def env_with_fixtures() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": FIXTURES}


@pytest.fixture
def fixed_config(write_config):
    return write_config("""
        [daemon]
        state_dir = "state"
        plugins = ["misbehaving"]
        [checks.ok]
        type = "fixed"
        [checks.warn]
        type = "fixed"
        status = "WARN"
        [checks.crit]
        type = "fixed"
        status = "CRIT"
        [checks.unknown]
        type = "fixed"
        status = "UNKNOWN"
        [checks.boom]
        type = "boom"
        [checks.hang]
        type = "hang"
        timeout = "500ms"
    """)


@pytest.mark.parametrize(("name", "code"), [("ok", 0), ("warn", 1), ("crit", 2), ("unknown", 3)])
def test_check_prints_nagios_line_and_exits_with_its_code(fixed_config, name, code) -> None:
    done = run_vigil("check", name, "-c", str(fixed_config), env=env_with_fixtures())
    status = ["OK", "WARN", "CRIT", "UNKNOWN"][code]
    assert done.returncode == code, done.stderr
    assert done.stdout.strip() == f"{name} {status} - told to be {status} | value=1.5ms"


def test_check_json(fixed_config) -> None:
    done = run_vigil("check", "warn", "--json", "-c", str(fixed_config), env=env_with_fixtures())
    data = json.loads(done.stdout)
    assert done.returncode == 1
    assert data["status"] == "WARN" and data["code"] == 1
    assert data["metrics"] == {"value_ms": 1.5}


def test_check_that_raises_or_hangs_is_unknown(fixed_config) -> None:
    done = run_vigil("check", "boom", "-c", str(fixed_config), env=env_with_fixtures())
    assert done.returncode == 3
    assert "check raised RuntimeError: boom" in done.stdout and "Traceback" not in done.stderr
    done = run_vigil("check", "hang", "-c", str(fixed_config), env=env_with_fixtures(),
                     timeout=10)
    assert done.returncode == 3 and "timed out after 0.5s" in done.stdout


def test_check_of_unknown_name_is_unknown(fixed_config) -> None:
    done = run_vigil("check", "nope", "-c", str(fixed_config), env=env_with_fixtures())
    assert done.returncode == 3
    assert "no check named 'nope'" in done.stdout and "known: boom, crit" in done.stdout


def test_plugins_lists_origin_and_check_types(fixed_config) -> None:
    done = run_vigil("plugins", "--json", "-c", str(fixed_config), env=env_with_fixtures())
    assert done.returncode == 0, done.stderr
    by_name = {p["name"]: p for p in json.loads(done.stdout)}
    assert by_name["vigil.plugins.tcp"]["origin"] == "builtin"
    assert by_name["vigil.plugins.tcp"]["check_types"] == ["tcp"]
    assert by_name["misbehaving"]["origin"] == "config [daemon] plugins"
    kinds = ["picky", "fragile", "hang", "wedge", "boom", "odd", "fixed"]
    assert by_name["misbehaving"]["check_types"] == kinds
    text = run_vigil("plugins", "-c", str(fixed_config), env=env_with_fixtures()).stdout
    line = next(line for line in text.splitlines() if line.startswith("misbehaving "))
    assert line.endswith(f"check types: {', '.join(kinds)}; service managers: flag, raising")
    assert "service managers: systemd" in text
    # One column for what each offers, however long the origins are.
    assert len({line.index("check types:") for line in text.splitlines()
                if "check types:" in line}) == 1, text


def test_plugin_that_fails_to_import_is_reported_by_name(write_config) -> None:
    path = write_config("""
        [daemon]
        state_dir = "state"
        plugins = ["no_such_module_here"]
        [checks.sys]
        type = "system"
        cpu = false
        warn_pct = 100
        crit_pct = 100
    """)
    done = run_vigil("plugins", "--json", "-c", str(path))
    assert done.returncode == 0
    broken = [p for p in json.loads(done.stdout) if p["name"] == "no_such_module_here"]
    assert "ModuleNotFoundError" in broken[0]["error"]
    assert "plugin.failed" in done.stderr
    check = run_vigil("check", "sys", "-c", str(path))
    # Thresholds out of reach (and no CPU reading): OK on any host, however busy.
    assert check.returncode == 0 and check.stdout.startswith("sys OK - "), check.stdout


def test_init_writes_a_valid_config_and_never_clobbers(tmp_path: Path) -> None:
    done = run_vigil("init", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    written = (tmp_path / "config.toml").read_text()
    assert written.startswith("# vigil configuration")
    assert run_vigil("config", "validate", cwd=tmp_path).returncode == 0
    (tmp_path / "config.toml").write_text("# mine\n")
    again = run_vigil("init", cwd=tmp_path)
    assert again.returncode == 1 and "--force" in again.stderr
    assert (tmp_path / "config.toml").read_text() == "# mine\n"
    forced = run_vigil("init", "--force", cwd=tmp_path)
    assert forced.returncode == 0
    assert (tmp_path / "config.toml.bak").read_text() == "# mine\n"
    assert (tmp_path / "config.toml").read_text() == written


def test_config_lookup_order(tmp_path: Path, write_config) -> None:
    explicit = write_config('[checks.from_c]\ntype = "system"\n', "explicit.toml")
    from_env = write_config('[checks.from_env]\ntype = "system"\n', "env.toml")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    (cwd / "config.toml").write_text('[checks.from_cwd]\ntype = "system"\n')
    env = {**os.environ, "VIGIL_CONFIG": str(from_env)}

    def source(*args: str, cwd: Path, env: dict[str, str]) -> str:
        done = run_vigil("config", "validate", *args, cwd=cwd, env=env)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert str(explicit) in source("-c", str(explicit), cwd=cwd, env=env)
    assert str(from_env) in source(cwd=cwd, env=env)
    plain = {k: v for k, v in env.items() if k != "VIGIL_CONFIG"}
    assert source(cwd=cwd, env=plain).startswith("config.toml: valid")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "<packaged defaults>: valid" in source(cwd=empty, env=plain)


def test_vigil_config_env_pointing_nowhere_is_an_error(tmp_path: Path) -> None:
    env = {**os.environ, "VIGIL_CONFIG": str(tmp_path / "missing.toml")}
    done = run_vigil("config", "validate", cwd=tmp_path, env=env)
    assert done.returncode == 1 and "does not exist" in done.stderr


def test_shipped_config_is_valid_and_its_checks_run() -> None:
    done = run_vigil("config", "validate", "-c", str(ROOT / "config.toml"), cwd=ROOT)
    assert done.returncode == 0, done.stderr
    done = run_vigil("check", "system", "--json", "-c", str(ROOT / "config.toml"), cwd=ROOT)
    data = json.loads(done.stdout)
    assert {"cpu_pct", "memory_pct", "disk_root_pct", "load1"} <= data["metrics"].keys()


def test_usage_errors_exit_2() -> None:
    done = run_vigil("frobnicate")
    assert done.returncode == 2 and "invalid choice" in done.stderr


def test_status_without_a_daemon(write_config) -> None:
    path = write_config('[daemon]\nstate_dir = "state"\n[checks.s]\ntype = "system"\n')
    done = run_vigil("status", "-c", str(path))
    assert done.returncode == 3
    assert "vigil is not running" in done.stdout


def test_status_says_what_the_running_daemon_sees_now(write_config, daemon, tmp_path,
                                                      monkeypatch) -> None:
    monkeypatch.setenv("PYTHONPATH", FIXTURES)
    # Nothing that a check's run writes happens here (an hour's interval): what status
    # shows comes from the daemon, which the state database lags.
    taken, spare = free_port(), free_port()
    starts = tmp_path / "starts"
    slow_start = ("import pathlib, sys, time, http.server\n"
                  f"pathlib.Path({str(starts)!r}).write_text('started')\n"
                  "time.sleep(3)\n"
                  "http.server.test(http.server.SimpleHTTPRequestHandler, "
                  "port=int(sys.argv[1]), bind='127.0.0.1')\n")
    config = write_config(f"""
        [daemon]
        state_dir = "state"
        plugins = ["misbehaving"]
        [services.app]
        manager = "command"
        start = ["{sys.executable}", "-c", {json.dumps(slow_start)}, "{{port}}"]
        ports = [{taken}, {spare}]
        start_timeout = "20s"
        [checks.web]
        type = "fixed"
        interval = "1h"
        [checks.app]
        type = "tcp"
        port = {spare}
        service = "app"
        interval = "1h"
        fast_interval = "250ms"
        fall = 1
    """)

    def status() -> dict[str, Any]:
        done = run_vigil("status", "--json", "-c", str(config))
        assert done.returncode == 0, done.stdout + done.stderr
        answer: dict[str, Any] = json.loads(done.stdout)
        assert answer["source"] == "daemon", answer
        return answer

    with listening(taken):
        d = daemon(config).start()
        wait_until(starts.exists, 15, "the heal's start on the spare port")
        during = status()["services"]["app"]
        assert during["healing"] and during["manager_state"]["port"] == spare, during
        d.wait_for("heal.succeeded", service="app", timeout=20)
    assert status()["checks"]["web"]["state"] == "OK"
    held = run_vigil("maintenance", "start", "web", "--for", "10m", "-c", str(config))
    assert held.returncode == 0, held.stderr
    assert status()["checks"]["web"]["state"] == "MAINTENANCE"
    text = run_vigil("status", "-c", str(config)).stdout
    assert next(line for line in text.splitlines() if line.startswith("web ")).split()[1] == (
        "MAINTENANCE")
    run_vigil("maintenance", "end", "web", "-c", str(config))
    assert status()["checks"]["web"]["state"] == "OK"
    d.stop()
    after = json.loads(run_vigil("status", "--json", "-c", str(config)).stdout)
    assert after["source"] == "database" and not after["running"]


def test_logs_filters_pretty_raw_and_follows(write_config, tmp_path: Path) -> None:
    path = write_config('[daemon]\nstate_dir = "state"\nlog_file = "vigil.log"\n'
                        '[checks.s]\ntype = "system"\n')
    log = tmp_path / "vigil.log"
    records = [
        {"timestamp": "2026-01-01T10:00:00.000Z", "level": "info", "event": "check.result",
         "check": "a", "status": "OK", "summary": "fine"},
        {"timestamp": "2026-01-01T10:00:01.000Z", "level": "warning",
         "event": "check.state_changed", "check": "b", "from": "OK", "to": "FAILING"},
    ]
    log.write_text("".join(json.dumps(r) + "\n" for r in records) + "not json\n")
    pretty = run_vigil("logs", "-c", str(path))
    assert pretty.returncode == 0, pretty.stderr
    assert pretty.stdout.splitlines() == [
        "10:00:00.000 info    check.result [a] OK - fine",
        '10:00:01.000 warning check.state_changed [b]  from="OK" to="FAILING"',
    ]
    only_b = run_vigil("logs", "--check", "b", "--json", "-c", str(path))
    assert [json.loads(line) for line in only_b.stdout.splitlines()] == records[1:]
    warnings = run_vigil("logs", "--level", "warning", "-c", str(path))
    assert "check.result" not in warnings.stdout and "state_changed" in warnings.stdout

    follower = subprocess.Popen([*vigil_command(), "logs", "-f", "-n", "0", "--json",
                                 "-c", str(path)], stdout=subprocess.PIPE, text=True)
    try:
        # Lines written before the follower has read to the end are its backlog (of
        # which -n 0 shows none): write until one comes through, instead of sleeping.
        assert follower.stdout is not None
        for attempt in range(40):
            with log.open("a") as f:
                f.write(json.dumps({**records[0], "summary": f"new {attempt}"}) + "\n")
            if select.select([follower.stdout], [], [], 0.25)[0]:
                break
        assert json.loads(readline_within(follower, 10))["summary"].startswith("new ")
        # logrotate moves the file away and a new one starts: the follower goes with it.
        log.rename(tmp_path / "vigil.log.1")
        log.write_text(json.dumps({**records[0], "summary": "after rotation"}) + "\n")
        summary = ""
        while summary.startswith("new ") or not summary:
            summary = json.loads(readline_within(follower, 10))["summary"]
        assert summary == "after rotation"
    finally:
        follower.kill()
        follower.wait()


def test_logs_on_a_mac_read_the_launch_agents_stdout_file(write_config, tmp_path, monkeypatch,
                                                          capsys, in_process_cli) -> None:
    # launchd cannot run here; what matters is that `vigil logs` reads the file the
    # installed plist names as StandardOutPath.
    from vigil.service._install import LaunchdInstaller

    path = write_config('[daemon]\nstate_dir = "state"\n[checks.s]\ntype = "system"\n')
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setenv("HOME", str(tmp_path))
    plist = plistlib.loads(LaunchdInstaller(True, str(path)).render())
    stdout_path = Path(plist["StandardOutPath"])
    assert in_process_cli(["logs", "--user", "-c", str(path)]) == 1
    assert f"no log yet at {stdout_path}" in capsys.readouterr().err
    stdout_path.parent.mkdir(parents=True)
    record = {"timestamp": "2026-01-01T10:00:00.000Z", "level": "info",
              "event": "check.result", "check": "s", "status": "OK", "summary": "fine"}
    stdout_path.write_text(json.dumps(record) + "\n")
    assert in_process_cli(["logs", "--user", "--json", "-c", str(path)]) == 0
    assert json.loads(capsys.readouterr().out) == record


def test_logs_to_stdout_without_journalctl_says_what_to_set(write_config, tmp_path) -> None:
    # (With journalctl, test_healing_systemd reads the installed unit's journal.)
    path = write_config('[daemon]\nstate_dir = "state"\n[checks.s]\ntype = "system"\n')
    bare = tmp_path / "bin"  # a PATH without journalctl
    bare.mkdir()
    done = run_vigil("logs", "-c", str(path), env={**os.environ, "PATH": str(bare)})
    assert done.returncode == 1 and "no journalctl here" in done.stderr
    assert "[daemon] log_file" in done.stderr


def test_every_command_takes_c_before_or_after_it(tmp_path: Path, write_config) -> None:
    """The README promises `-c FILE` for every command: a command that reads no config
    (anomalies, plugin new) takes it too, rather than failing as a usage error."""
    import argparse

    from vigil._cli.parser import parser

    commands = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert [name for name, sub in commands.choices.items()
            if "-c" not in sub._option_string_actions] == []
    config = write_config('[daemon]\nstate_dir = "state"\n')
    series = tmp_path / "series.csv"
    series.write_text("2026-01-01 00:00:00,1\n")
    for args in (["anomalies", str(series), "-c", str(config)],
                 ["-c", str(config), "anomalies", str(series)],
                 ["plugin", "new", "demo", "--dir", str(tmp_path / "demo"), "-c", str(config)]):
        done = run_vigil(*args)
        assert done.returncode == 0, (args, done.stderr)


# Output far past a pipe's buffer (3,000 lines of 300 bytes): vigil is still writing
# when the reader leaves.
@pytest.mark.parametrize("command", [["logs", "-n", "3000"], ["logs", "-n", "3000", "--json"]])
def test_a_reader_that_leaves_early_gets_no_traceback(write_config, tmp_path,
                                                      command: list[str]) -> None:
    # `vigil logs | head -1`: the pipe closes while vigil still writes.
    path = write_config('[daemon]\nstate_dir = "state"\nlog_file = "vigil.log"\n')
    line = json.dumps({"timestamp": "2026-01-01T10:00:00.000Z", "level": "info",
                       "event": "check.result", "check": "a", "summary": "x" * 200})
    (tmp_path / "vigil.log").write_text((line + "\n") * 3000)
    reader = subprocess.Popen([*vigil_command(), *command, "-c", str(path)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert reader.stdout is not None and reader.stderr is not None
    assert reader.stdout.read(1)
    reader.stdout.close()
    code = reader.wait(30)
    said = reader.stderr.read().decode()
    assert "Traceback" not in said and code == 0, (code, said)
