"""The README's promises: two one-line commands, the second being what CI runs."""

from __future__ import annotations

import re

from tests.helpers import ROOT, run_vigil


def test_first_two_code_blocks_are_the_install_and_test_lines() -> None:
    blocks = re.findall(r"```[a-z]*\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    install, tests = blocks[0].strip(), blocks[1].strip()
    assert "\n" not in install and install.endswith("vigil run")
    assert "pip install" in install
    assert tests == "tests/run.sh"
    assert "exec tests/run.sh" in (ROOT / ".ci" / "run").read_text()


def test_every_log_event_vigil_emits_is_in_the_readme_table() -> None:
    # Operators grep and alert on these names: an event missing from the table is a
    # promise nobody made; the names are the first argument of a log, level or emit call.
    call = re.compile(r"\b(?:log\.\w+|level|emit)\(\s*f?\"([a-z_]+\.[a-z_{}]+)\"")
    emitted = set()
    for source in [*ROOT.glob("daemon/**/*.py"), *ROOT.glob("service/*.py"),
                   *ROOT.glob("plugins/*.py")]:
        emitted |= set(call.findall(source.read_text()))
    emitted = {name for name in emitted if "{" not in name}
    assert len(emitted) > 20, emitted  # the pattern still finds the calls
    table = (ROOT / "README.md").read_text().split("## Logs", 1)[1].split("\n## ", 1)[0]
    missing = sorted(name for name in emitted if f"`{name}`" not in table)
    assert not missing, f"log events missing from README.md's Logs table: {missing}"


def toml_block(start: str, end: str) -> str:
    """The one TOML block of the README between two headings."""
    text = (ROOT / "README.md").read_text()
    [block] = re.findall(r"```toml\n(.*?)```", text[text.index(start):text.index(end)], re.S)
    return block


def assert_valid(tmp_path, text: str) -> None:
    """``vigil config validate`` takes ``text`` (a [daemon] with a state folder first)."""
    config = tmp_path / "config.toml"
    config.write_text('[daemon]\nstate_dir = "state"\n' + text)
    done = run_vigil("config", "validate", "-c", str(config))
    assert done.returncode == 0, done.stderr


def test_the_worked_alert_compliance_dspy_and_remediation_configs_are_valid(tmp_path) -> None:
    blocks = re.findall(r"```toml\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    wanted = [b for b in blocks if "[checks.safety]" in b or "[checks.dspy]" in b
              or "[remediation]" in b or "[alerts.team]" in b]
    assert len(wanted) == 4, "the compliance, DSPy, remediation and alerts examples"
    # The checks the alerts example names.
    assert_valid(tmp_path, '[checks.db_port]\ntype = "system"\n[checks.redis]\n'
                           'type = "system"\n' + "\n".join(wanted))


def test_the_objectives_worked_configs_are_valid(tmp_path) -> None:
    block = toml_block("## Objectives", "## Baselines and anomalies")
    assert block.count("[slos.") == 3, "the seed's availability, latency and DSPy objectives"
    dspy = re.search(r"```toml\n(\[checks\.dspy\].*?)```", (ROOT / "README.md").read_text(),
                     re.S)
    assert dspy is not None
    assert_valid(tmp_path, '[checks.db]\ntype = "system"\n[checks.mcp]\ntype = "system"\n'
                 + dspy.group(1) + block)


def test_the_baselines_worked_config_is_valid(tmp_path) -> None:
    assert_valid(tmp_path, toml_block("## Baselines and anomalies", "## State and history"))


def test_the_load_probe_example_is_valid(tmp_path) -> None:
    assert_valid(tmp_path, '[services.mcp]\nmanager = "command"\nstart = ["true"]\n'
                 + toml_block("### Load probes", "### Redis"))
