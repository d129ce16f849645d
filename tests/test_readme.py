"""The README's promises: two one-line commands, the second being what CI runs."""

from __future__ import annotations

import re

from tests.conftest import ROOT


def test_first_two_code_blocks_are_the_install_and_test_lines() -> None:
    blocks = re.findall(r"```[a-z]*\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    install, tests = blocks[0].strip(), blocks[1].strip()
    assert "\n" not in install and install.endswith("vigil run")
    assert "pip install" in install
    assert tests == "tests/run.sh"
    assert "exec tests/run.sh" in (ROOT / ".ci" / "run").read_text()
