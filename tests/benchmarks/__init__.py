"""Benchmarks: each measures vigil beside its anchor (Monit, supervisord) in the same run."""

from __future__ import annotations

import shutil
import sys


def anchor(program: str, package: str) -> str:
    """The path of an anchor program, or exit saying which Debian package has it."""
    path = shutil.which(program)
    if not path:
        sys.exit(f"{program} is not installed: apt-get install {package}")
    return path
