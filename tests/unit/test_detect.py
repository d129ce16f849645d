"""``vigil init --detect`` asks every plugin's vigil_detect hook, each isolated."""

from __future__ import annotations

import importlib
import sys
import tomllib

import pytest

from tests.helpers import FIXTURES
from vigil._cli.init import detect
from vigil._config.plugins import Plugins

sys.path.insert(0, FIXTURES)


def test_detect_collects_every_plugin_and_survives_a_broken_one(monkeypatch) -> None:
    # By module name, as [daemon] plugins imports it.
    misbehaving = importlib.import_module("misbehaving")

    monkeypatch.setenv("VIGIL_TEST_DETECT", "1")
    plugins = Plugins(["misbehaving"])
    plugins.manager.register(misbehaving.BrokenDetector(), name="broken")
    findings = detect(plugins)
    found = next(f for f in findings.items if f.name == "fixture_found")
    assert found.plugin == "misbehaving" and found.note == "found by the test plugin"
    sections = tomllib.loads(findings.toml())
    assert sections["checks"]["fixture_found"] == {"type": "fixed"}


@pytest.mark.parametrize("service", [None, {"manager": "systemd", "unit": "x.service"}])
def test_found_services_are_guarded_by_their_check(service) -> None:
    from vigil._cli.init import Findings, Found

    text = Findings([Found("db", {"type": "tcp", "port": 1}, service, "a db")]).toml()
    data = tomllib.loads(text)
    assert text.startswith("# detected by : a db\n")
    assert data["checks"]["db"].get("service") == ("db" if service else None)
