#!/usr/bin/env bash
# The whole test suite from a fresh clone: the Debian packages the tests talk to (when
# run as root), a virtual environment with vigil and its test tools, ruff, mypy, then pytest.
# Extra arguments go to pytest: tests/run.sh -k config -x
set -euo pipefail
cd "$(dirname "$0")/.."

# Real components the tests use; a test whose component is missing fails and names it.
DEBS=(monitoring-plugins-basic libplist-utils systemd util-linux postgresql-15 redis-server openssl
      prometheus prometheus-alertmanager chromium)

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    missing=()
    for pkg in "${DEBS[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing Debian packages: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
# Strict editable mode: a link tree that maps the folders onto the import name `vigil`
# as a wheel does, which type checkers can read (they do not run setuptools' import hooks).
.venv/bin/python -m pip install --quiet --disable-pip-version-check \
    --config-settings editable_mode=strict -e '.[test]'
.venv/bin/ruff check .
.venv/bin/mypy -p vigil -p tests
# Two workers, one test file each at a time: a file's fixtures (a private systemd, a
# PostgreSQL cluster) stay in one process. `-n 0` after the script runs serially.
exec .venv/bin/python -m pytest -q -n 2 --dist loadfile "$@"
