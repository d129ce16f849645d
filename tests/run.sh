#!/usr/bin/env bash
# The whole test suite from a fresh clone: the Debian packages the tests talk to (when
# run as root), a virtual environment with vigil and its test tools, ruff, mypy, then pytest.
# Extra arguments go to pytest: tests/run.sh -k config -x
# `tests/run.sh unit [ARGS]` runs only the in-process tests (tests/unit), in seconds,
# once a first run has made the virtual environment.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = unit ] && .venv/bin/python -c 'import vigil, pytest, xdist' 2>/dev/null; then
    shift
    .venv/bin/ruff check .
    exec .venv/bin/python -m pytest -q -n 2 tests/unit "$@"
fi
[ "${1:-}" != unit ] || { shift; set -- tests/unit "$@"; }

# Real components the tests use; a test whose component is missing fails and names it.
DEBS=(monitoring-plugins-basic libplist-utils systemd util-linux postgresql-15 redis-server openssl
      prometheus prometheus-alertmanager chromium faketime)

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
# The core's layers (pyproject.toml's [tool.importlinter]): no part imports one above it.
.venv/bin/lint-imports --no-cache
# Two workers, one test file each at a time: a file's fixtures (a private systemd, a
# PostgreSQL cluster) stay in one process. `-n 0` after the script runs serially.
status=0
.venv/bin/python -m pytest -q -n 2 --dist loadfile "$@" || status=$?
[ $# -eq 0 ] || exit $status

# The whole suite (no arguments): also every other CPython from 3.11 up that this machine
# has (pyenv's, or python3.N on PATH), each in a virtual environment of its own: the
# in-process tests and a daemon from start to stop.
default=$(.venv/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
declare -A seen=(["$default"]=1)
for python in "$HOME"/.pyenv/versions/3.*/bin/python3 $(compgen -c python3. | sort -u); do
    command -v "$python" >/dev/null || continue
    version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) || continue
    [ -z "${seen[$version]:-}" ] || continue
    "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || continue
    seen[$version]=1
    echo "== Python $version ($python): in-process tests and a daemon smoke test"
    venv=".venv-$version"
    [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[test]' \
        && "$venv/bin/python" -m pytest -q -n 2 -p no:cacheprovider tests/unit \
            tests/system/test_smoke.py \
        || status=1
done
exit $status
