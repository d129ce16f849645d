"""Every kind of config mistake gives an error naming the file, the key and the line."""

from __future__ import annotations

import os
from pathlib import Path

from tests.helpers import FIXTURES, run_vigil
from vigil._config import loader as config

HEAD = '[daemon]\nstate_dir = "state"\n'


def test_every_error_is_listed_at_once_by_the_command(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(HEAD + "[checks.a]\ntype = 'tcp'\nport = 'x'\ninterval = 'soon'\n"
                    "[checks.b]\ntype = 'nope'\n[checks.c]\ntype = 'system'\nservice = 'db'\n")
    done = run_vigil("config", "validate", "-c", str(path))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    for expected in (f"{path}:5: checks.a.port", f"{path}:6: checks.a.interval",
                     f"{path}:8: checks.b.type", f"{path}:11: checks.c.service"):
        assert expected in done.stderr, done.stderr
    assert "4 errors" in done.stderr


def test_bad_toml_through_the_command_has_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[daemon\n")
    done = run_vigil("config", "validate", "-c", str(path))
    assert done.returncode == 1
    assert "not valid TOML" in done.stderr and "Traceback" not in done.stderr


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    done = run_vigil("config", "validate", "-c", str(tmp_path / "nope.toml"))
    assert done.returncode == 1
    assert "does not exist" in done.stderr and "Traceback" not in done.stderr


def test_valid_config_passes(tmp_path: Path) -> None:
    path = tmp_path / "ok.toml"
    path.write_text(HEAD + "[services.db]\nmanager='systemd'\nunit='pg'\n"
                    "[checks.a]\ntype='tcp'\nport=5432\nservice='db'\ninterval='250ms'\n")
    done = run_vigil("config", "validate", "-c", str(path))
    assert done.returncode == 0, done.stderr
    assert "valid (1 check, 1 service)" in done.stdout
    cfg = config.load(str(path))
    assert cfg.checks["a"].interval == 0.25
    assert cfg.checks["a"].fall == 3
    assert cfg.daemon.state_dir == tmp_path / "state"


def test_a_plugins_raising_options_give_no_traceback_in_any_command(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(HEAD + 'log_file = "vigil.log"\nplugins = ["misbehaving"]\n'
                    "[checks.a]\ntype = 'picky'\nn = -1\n")
    env = {**os.environ, "PYTHONPATH": FIXTURES}
    for command in (["config", "validate"], ["run"], ["check", "a"]):
        done = run_vigil(*command, "-c", str(path), env=env, timeout=30)
        assert "Traceback" not in done.stdout + done.stderr, command
        said = done.stdout + done.stderr
        assert "checks.a: PickyOptions rejected these options: ValueError: n must be >= 0 " \
               "(plugin 'misbehaving')" in said, (command, said)
        assert done.returncode in (1, 3), command  # invalid config; UNKNOWN for `check`
    listed = run_vigil("plugins", "-c", str(path), env=env)
    assert listed.returncode == 0 and "Traceback" not in listed.stderr
    assert "picky" in listed.stdout
