"""Many hosts through an existing engine: three vigil agents and a fourth that is down,
a real Prometheus loaded with what `vigil export prometheus` prints (the README's
commands), and every one of its rules firing where it should: a failing check, heals
that fail, healing given up, an alert sink that cannot be reached, an agent down."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.request
from typing import Any

from tests.helpers import free_port, listening, prometheus_server, run_vigil, wait_until


def test_exported_rules_and_config_pass_promtool_and_fire_for_a_failing_check(
        write_config, daemon, tmp_path) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "install the Debian package prometheus (it has promtool)"
    agents = []
    # The third agent's db goes down for good once Prometheus watches: its start fails
    # (heals fail, then healing gives up), and its alert sink cannot be reached.
    db = free_port()
    serving = listening(db)
    serving.__enter__()
    broken = f"""
            [services.db]
            manager = "command"
            start = ["{sys.executable}", "-c", "import sys; sys.exit('no such database')"]
            restarts = 1
            backoff = "0s"
            [alerts.hook]
            type = "webhook"
            url = "http://127.0.0.1:{free_port()}/"
    """
    for index in range(3):
        http = free_port()
        # Each agent checks its own HTTP port, but the third the db above.
        target = db if index == 2 else http
        config = write_config(f"""
            [daemon]
            state_dir = "state{index}"
            http = "127.0.0.1:{http}"
            [checks.db]
            type = "tcp"
            port = {target}
            interval = "500ms"
            fall = 1
            {'service = "db"' if index == 2 else ""}
            {broken if index == 2 else ""}
        """, name=f"agent{index}.toml")
        agents.append((daemon(config).start(), http))
    down = f"127.0.0.1:{free_port()}"  # an agent that does not answer
    for agent, _ in agents:
        agent.wait_for("check.result", check="db")

    rules, config = tmp_path / "vigil-rules.yml", tmp_path / "prometheus.yml"
    exported = run_vigil("export", "prometheus", "rules", "--for", "0s")
    assert exported.returncode == 0, exported.stderr
    rules.write_text(exported.stdout)
    targets = [arg for _, http in agents for arg in ("--target", f"127.0.0.1:{http}")]
    targets += ["--target", down]
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
        # Every agent scraped while db is up: the heal counters are seen at 0 first.
        wait_until(lambda: len((get("/api/v1/query", 'vigil_heals_total{service="db"}')
                                or {}).get("result", [])) == 2, 60, "db's heal counters")
        serving.__exit__(None, None, None)
        agents[2][0].wait_for("heal.gave_up", service="db", timeout=30)
        def firing() -> list[dict[str, Any]]:
            alerts = (get("/api/v1/alerts") or {}).get("alerts", [])
            return [a for a in alerts if a["state"] == "firing"]

        expected = {("VigilCheckFailing", failing, "warning"),
                    ("VigilHealsFailing", failing, "warning"),
                    ("VigilHealingGaveUp", failing, "critical"),
                    ("VigilAlertSinkDown", failing, "warning"),
                    ("VigilAgentDown", down, "critical")}

        def fired() -> set[tuple[str, str, str]]:
            return {(a["labels"]["alertname"], a["labels"]["instance"],
                     a["labels"]["severity"]) for a in firing()}

        wait_until(lambda: fired() == expected, 90, f"exactly these rules to fire: {expected}")
        wait_until(lambda: len((get("/api/v1/query", "up") or {}).get("result", [])) == 4,
                   30, "all four agents scraped")
        labels = {a["labels"]["alertname"]: a["labels"] for a in firing()}
        assert labels["VigilCheckFailing"]["check"] == "db"
        assert labels["VigilHealingGaveUp"]["service"] == "db"
        assert labels["VigilAlertSinkDown"]["sink"] == "hook"


def test_export_config_warns_of_a_token_it_does_not_pass_and_refuses_a_bad_target(
        write_config, tmp_path) -> None:
    config = write_config('[daemon]\nstate_dir = "state"\nhttp = "127.0.0.1:8787"\n'
                          'http_token = "s3cret"\n')
    bare = run_vigil("export", "prometheus", "config", "-c", str(config))
    assert bare.returncode == 0 and "127.0.0.1:8787" in bare.stdout
    assert "warning: this config sets http_token" in bare.stderr
    assert "--token-file" in bare.stderr and "s3cret" not in bare.stderr + bare.stdout
    token = tmp_path / "vigil.token"
    token.write_text("s3cret\n")
    given = run_vigil("export", "prometheus", "config", "--token-file", str(token), "-c",
                      str(config))
    assert given.returncode == 0 and given.stderr == ""
    assert "credentials_file" in given.stdout
    for target in ("nocolon", "web1:", "web1:http", "web1:70000", ":8787"):
        bad = run_vigil("export", "prometheus", "config", "--target", target, "-c", str(config))
        assert bad.returncode == 2 and "is not HOST:PORT" in bad.stderr, (target, bad.stderr)
        assert "Traceback" not in bad.stderr and bad.stdout == ""


def test_exported_rules_leave_a_check_under_maintenance_out_in_promtool(
        write_config, daemon, tmp_path) -> None:
    """Two checks of an agent FAILING, one under maintenance: promtool, fed what the
    agent's /metrics said (ten minutes as it was under the window, ten as it was after),
    fires VigilCheckFailing for the other one only, then for both; never for a check
    flagged by vigil_check_maintenance."""
    promtool = shutil.which("promtool")
    assert promtool, "install the Debian package prometheus (it has promtool)"
    http = free_port()
    failing = "".join(f'[checks.{name}]\ntype = "tcp"\nport = {free_port()}\n'
                      'interval = "300ms"\nfall = 1\n' for name in ("held", "open"))
    config = write_config(f'[daemon]\nstate_dir = "state"\nhttp = "127.0.0.1:{http}"\n'
                          + failing)
    opened = run_vigil("maintenance", "start", "held", "--for", "1h", "-c", str(config))
    assert opened.returncode == 0, opened.stderr
    d = daemon(config).start()

    def scraped() -> dict[str, float]:
        """Each sample of the check states and maintenance flags, as Prometheus would
        label it: the agent's instance and job added."""
        with urllib.request.urlopen(f"http://127.0.0.1:{http}/metrics", timeout=5) as got:
            text = got.read().decode()
        found = {}
        for line in text.splitlines():
            if line.startswith(("vigil_check_state{", "vigil_check_maintenance{")):
                series, _, value = line.rpartition(" ")
                found[series[:-1] + ',instance="agent",job="vigil"}'] = float(value)
        return found

    def failing_now(check: str) -> bool:
        return scraped().get(f'vigil_check_state{{check="{check}",state="FAILING",'
                             'instance="agent",job="vigil"}') == 1.0

    wait_until(lambda: failing_now("open"), 10, "open FAILING")
    under = scraped()
    assert under['vigil_check_maintenance{check="held",instance="agent",job="vigil"}'] == 1.0
    assert run_vigil("maintenance", "end", "held", "-c", str(config)).returncode == 0
    wait_until(lambda: failing_now("held"), 10, "held FAILING once the window ended")
    after = scraped()
    assert d.stop() == 0

    exported = run_vigil("export", "prometheus", "rules", "--for", "1m", "-c", str(config))
    assert exported.returncode == 0, exported.stderr
    rules = tmp_path / "rules.yml"
    rules.write_text(exported.stdout)

    def fires(*checks: str) -> list[dict[str, Any]]:
        return [{"exp_labels": {"check": check, "state": "FAILING", "instance": "agent",
                                "job": "vigil", "severity": "warning"},
                 "exp_annotations": {
                     "summary": f"{check} is FAILING on agent",
                     "description": "vigil confirmed the check failing (fall results in a "
                                    "row); its own alerts say what healing tried."}}
                for check in checks]

    # And the rule's own `unless`: a series FAILING and flagged under maintenance at
    # once (an agent shows MAINTENANCE as its state then; the rule does not rest on that).
    flagged = {f'vigil_check_{metric}{{check="both",{label}instance="agent",job="vigil"}}': 1.0
               for metric, label in (("state", 'state="FAILING",'), ("maintenance", ""))}
    test = {"rule_files": [str(rules)], "evaluation_interval": "1m", "tests": [{
        "interval": "1m",
        "input_series": [{"series": series, "values": f"{value:g}x9 {after[series]:g}x9"}
                         for series, value in under.items()]
        + [{"series": series, "values": "1x19"} for series in flagged],
        "alert_rule_test": [
            {"eval_time": "9m", "alertname": "VigilCheckFailing", "exp_alerts": fires("open")},
            {"eval_time": "19m", "alertname": "VigilCheckFailing",
             "exp_alerts": fires("held", "open")}]}]}
    tests = tmp_path / "tests.yml"
    tests.write_text(json.dumps(test))  # JSON is YAML
    tested = subprocess.run([promtool, "test", "rules", str(tests)], capture_output=True,
                            text=True, timeout=60)
    assert tested.returncode == 0, tested.stdout + tested.stderr
