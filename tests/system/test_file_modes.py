"""Who may read what vigil writes: its state folder, its log and its services' output
belong to the user it runs as, checked by a second local user the test creates."""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import free_port, reap_command_services, run_vigil, wait_until


@pytest.fixture
def other_user() -> Iterator[str]:
    """A second local user, made for the test and removed after it."""
    assert os.geteuid() == 0, "run the tests as root: this one creates a second local user"
    useradd = shutil.which("useradd")
    assert useradd, "install the Debian package passwd (useradd)"
    name = f"vigilprobe{secrets.token_hex(3)}"
    subprocess.run([useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    name], check=True, capture_output=True, timeout=30)
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], capture_output=True, timeout=30)


@pytest.fixture
def open_folder() -> Iterator[Path]:
    """A folder every user may walk into (pytest's own are its owner's alone, which
    would hide what vigil's modes do)."""
    folder = Path(tempfile.mkdtemp(prefix="vigil-modes-", dir="/tmp"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def reads(user: str, path: Path) -> bool:
    done = subprocess.run(["runuser", "-u", user, "--", "cat", str(path)],
                          capture_output=True, timeout=30)
    return done.returncode == 0


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def config(folder: Path, port: int, extra: str = "") -> Path:
    path = folder / "config.toml"
    path.write_text(f"""
[daemon]
state_dir = "{folder / 'state'}"
log_file = "{folder / 'state' / 'vigil.log'}"
http = ""
{extra}
[services.web]
manager = "command"
start = ["{sys.executable}", "-m", "http.server", "{port}", "--bind", "127.0.0.1"]
[checks.web]
type = "tcp"
port = {port}
service = "web"
interval = "500ms"
fall = 1
""")
    return path


def run_until_healed(path: Path) -> None:
    """The daemon from start to its first heal's success, then stopped."""
    log = path.parent / "state" / "vigil.log"
    proc = subprocess.Popen([str(Path(sys.executable).with_name("vigil")), "run", "-c",
                             str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: log.exists() and "heal.succeeded" in log.read_text(), 20,
                   "the service healed")
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=20)
        reap_command_services(path)  # the service outlives the daemon
        assert not err and not out, (out, err)


def test_state_log_and_output_are_the_owners_alone(other_user, open_folder) -> None:
    public = open_folder / "public.txt"
    public.write_text("anyone")
    assert reads(other_user, public), "the second user cannot even walk into the folder"
    path = config(open_folder, free_port())
    # The log lives in the state folder, which does not exist yet: made first.
    run_until_healed(path)
    state = open_folder / "state"
    assert mode(state) == 0o700
    for written in (state / "vigil.log", state / "web.out", state / "state.db"):
        assert mode(written) == 0o600, written
        assert not reads(other_user, written), f"{other_user} read {written}"


def test_group_read_opens_the_logs_to_the_owners_group(open_folder) -> None:
    path = config(open_folder, free_port(), "group_read = true")
    run_until_healed(path)
    state = open_folder / "state"
    assert mode(state) == 0o750
    assert mode(state / "vigil.log") == 0o640 and mode(state / "web.out") == 0o640


def test_an_old_open_state_folder_is_narrowed(open_folder) -> None:
    (open_folder / "state").mkdir(mode=0o755)
    (open_folder / "state").chmod(0o755)
    run_until_healed(config(open_folder, free_port()))
    assert mode(open_folder / "state") == 0o700


def test_a_state_folder_of_another_user_or_a_symlinked_log_is_refused(
        other_user, open_folder) -> None:
    path = config(open_folder, free_port())
    state = open_folder / "state"
    state.mkdir()
    shutil.chown(state, other_user)
    done = run_vigil("run", "-c", str(path), timeout=30)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"belongs to {other_user}, not to root who runs vigil" in done.stderr, done.stderr
    assert not list(state.iterdir()), "vigil wrote into another user's folder"

    shutil.chown(state, "root")
    state.chmod(0o700)
    (open_folder / "elsewhere").write_text("")
    (state / "vigil.log").symlink_to(open_folder / "elsewhere")
    done = run_vigil("run", "-c", str(path), timeout=30)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert "is a symlink, which vigil does not follow" in done.stderr, done.stderr
    assert (open_folder / "elsewhere").read_text() == ""


def test_a_log_of_another_user_is_refused_and_a_log_folder_in_the_state_is_made(
        other_user, open_folder) -> None:
    # A log file another user made first (in a folder anyone may write to): vigil would
    # hand them every line.
    shared = open_folder / "shared"
    shared.mkdir(mode=0o1777)
    shared.chmod(0o1777)
    planted = shared / "vigil.log"
    planted.write_text("")
    shutil.chown(planted, other_user)
    path = config(open_folder, free_port())
    path.write_text(path.read_text().replace(
        f'log_file = "{open_folder / "state" / "vigil.log"}"', f'log_file = "{planted}"'))
    done = run_vigil("run", "-c", str(path), timeout=30)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"belongs to {other_user}" in done.stderr and planted.read_text() == ""
    # A log in a folder of its own inside a state folder that does not exist yet.
    nested = open_folder / "state" / "logs" / "vigil.log"
    path.write_text(path.read_text().replace(f'log_file = "{planted}"',
                                             f'log_file = "{nested}"'))
    proc = subprocess.Popen([str(Path(sys.executable).with_name("vigil")), "run", "-c",
                             str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: nested.exists() and "daemon.started" in nested.read_text(), 20,
                   "the daemon's first line in a log folder it made")
    finally:
        proc.terminate()
        proc.communicate(timeout=20)
        reap_command_services(path)
    assert mode(nested.parent) == 0o700 and mode(nested) == 0o600
