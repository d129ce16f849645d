"""Many hosts through an existing engine: three vigil agents, a real Prometheus loaded
with what `vigil export prometheus` prints, and its rule for a failing check firing."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

from tests.helpers import free_port, prometheus_server, run_vigil, wait_until


def test_exported_rules_and_config_pass_promtool_and_fire_for_a_failing_check(
        write_config, daemon, tmp_path) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "install the Debian package prometheus (it has promtool)"
    agents = []
    for index in range(3):
        http = free_port()
        # Each agent checks its own HTTP port, but the third a port nobody listens on.
        target = free_port() if index == 2 else http
        config = write_config(f"""
            [daemon]
            state_dir = "state{index}"
            http = "127.0.0.1:{http}"
            [checks.db]
            type = "tcp"
            port = {target}
            interval = "500ms"
            fall = 1
        """, name=f"agent{index}.toml")
        agents.append((daemon(config).start(), http))
    for agent, _ in agents:
        agent.wait_for("check.result", check="db")

    rules, config = tmp_path / "vigil-rules.yml", tmp_path / "prometheus.yml"
    exported = run_vigil("export", "prometheus", "rules", "--for", "0s")
    assert exported.returncode == 0, exported.stderr
    rules.write_text(exported.stdout)
    targets = [arg for _, http in agents for arg in ("--target", f"127.0.0.1:{http}")]
    exported = run_vigil("export", "prometheus", "config", *targets, "--rules", str(rules),
                         "--interval", "1s")
    assert exported.returncode == 0, exported.stderr
    config.write_text(exported.stdout)
    for kind, path in (("rules", rules), ("config", config)):
        checked = subprocess.run([promtool, "check", kind, str(path)], capture_output=True,
                                 text=True, timeout=30)
        assert checked.returncode == 0, checked.stdout + checked.stderr

    failing = f"127.0.0.1:{agents[2][1]}"
    with prometheus_server(config, tmp_path) as get:
        def firing() -> list[dict[str, Any]]:
            alerts = (get("/api/v1/alerts") or {}).get("alerts", [])
            return [a for a in alerts if a["state"] == "firing"]

        wait_until(firing, 60, "the rule for the failing check to fire")
        wait_until(lambda: len((get("/api/v1/query", "up") or {}).get("result", [])) == 3,
                   30, "all three agents scraped")
        labels = [a["labels"] for a in firing()]
        assert [(x["alertname"], x["check"], x["instance"], x["severity"]) for x in labels] \
            == [("VigilCheckFailing", "db", failing, "warning")]
