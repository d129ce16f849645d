"""Where vigil looks for its config and keeps its runtime folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vigil import ConfigError
from vigil._config import loader as _config
from vigil._config.sections import PACKAGED
from vigil._kit import paths as _paths


def test_config_lookup_order(tmp_path: Path, monkeypatch) -> None:
    # As a user who is not root: -c, $VIGIL_CONFIG, ./config.toml, the platform folder,
    # then the packaged defaults.
    monkeypatch.setattr(_paths, "_is_root", lambda: False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    assert _config.find_source(None) == PACKAGED
    platform = tmp_path / "xdg" / "vigil" / "config.toml"
    platform.parent.mkdir(parents=True)
    platform.write_text("")
    assert _config.find_source(None) == str(platform)
    (tmp_path / "config.toml").write_text("")
    assert _config.find_source(None) == "config.toml"
    env = tmp_path / "env.toml"
    env.write_text("")
    monkeypatch.setenv("VIGIL_CONFIG", str(env))
    assert _config.find_source(None) == str(env)
    explicit = tmp_path / "explicit.toml"
    explicit.write_text("")
    assert _config.find_source(str(explicit)) == str(explicit)
    os.remove(env)
    with pytest.raises(ConfigError, match="does not exist"):
        _config.find_source(None)  # a named file that is missing is never skipped


def test_a_runtime_folder_that_cannot_be_written_is_reported(tmp_path, monkeypatch) -> None:
    from structlog.testing import capture_logs

    from vigil._agent import runtime as _runtime
    from vigil._agent.agent import Agent

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setattr(_runtime, "runtime_dir", lambda: blocker / "vigil")
    (tmp_path / "c.toml").write_text('[daemon]\nstate_dir = "s"\n')
    agent = Agent(_config.load(str(tmp_path / "c.toml")))
    with capture_logs() as logged:
        agent._announce()
    (event,) = [e for e in logged if e["event"] == "runtime.unavailable"]
    assert event["log_level"] == "warning" and "config on disk" in event["hint"]
    assert str(blocker) in event["path"]
