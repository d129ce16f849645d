"""The kit's digests are hashlib's SHA-256 and hmac's comparison, without OpenSSL: the
names they give (alert fingerprints, remediation keys, runtime files) must not change."""

from __future__ import annotations

import hashlib
import hmac
import subprocess
import sys

import pytest

from vigil._kit.digest import same_secret, sha256_hex


@pytest.mark.parametrize("text", ["", "abc", "ünïcödé", "x" * 1000])
def test_sha256_hex_is_hashlibs_sha256(text: str) -> None:
    expected = hashlib.sha256(text.encode()).hexdigest()
    assert sha256_hex(text) == expected
    assert sha256_hex(text.encode(), 12) == expected[:12]


@pytest.mark.parametrize("given", [b"token", b"tokem", b"tok", b"token!", b""])
def test_same_secret_agrees_with_hmac(given: bytes) -> None:
    assert same_secret(given, b"token") == hmac.compare_digest(given, b"token")


def test_the_daemon_and_its_built_in_plugins_do_not_load_openssls_hashlib() -> None:
    probe = ("import importlib, sys, vigil._agent.agent, vigil._web.http\n"
             "from vigil._config.plugins import BUILTIN_PLUGINS\n"
             "for name in BUILTIN_PLUGINS:\n"
             "    importlib.import_module(name)\n"
             "print([m for m in ('hashlib', 'hmac', '_hashlib') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert out.strip() == "[]"
