"""Folders and files that hold what checks and services say: readable by their owner
alone (and by the owner's group when the operator asks), made so from the start, and
never reached through a symlink that someone else planted."""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path


def _who(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def modes(group: bool) -> tuple[int, int]:
    """(folder mode, file mode): 0700/0600, or 0750/0640 for ``group``."""
    return (0o750, 0o640) if group else (0o700, 0o600)


def private_dir(path: Path, group: bool | None = None) -> None:
    """Make ``path`` (and its parents) if need be, as a folder only its owner may read
    (and its group, with ``group``; None keeps the group's access as it is and takes
    only others'); PermissionError when it belongs to another user, whose files vigil
    would otherwise write into and whose links it would follow."""
    wanted = None if group is None else modes(group)[0]
    path.mkdir(parents=True, exist_ok=True, mode=wanted or 0o700)
    st = path.stat()
    me = os.geteuid()
    if st.st_uid != me:
        raise PermissionError(
            f"{path} belongs to {_who(st.st_uid)}, not to {_who(me)} who runs vigil: "
            "refusing to keep vigil's state there (choose another [daemon] state_dir, or "
            "give that folder to this user)")
    mode = stat.S_IMODE(st.st_mode)
    target = mode & ~0o007 if wanted is None else wanted
    if mode != target:
        os.chmod(path, target)  # made by an older vigil, or by hand


def open_append(path: str | os.PathLike[str], group: bool = False) -> int:
    """A file descriptor appending to ``path``, made with the private file mode, never
    through a symlink (OSError ELOOP); an existing file is narrowed to that mode, and
    refused (PermissionError) when another user owns it: they could read all it gets."""
    _, file_mode = modes(group)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                 file_mode)
    st = os.fstat(fd)
    if st.st_uid != os.geteuid():
        os.close(fd)
        raise PermissionError(f"{os.fspath(path)} belongs to {_who(st.st_uid)}, not to "
                              f"{_who(os.geteuid())} who runs vigil")
    if stat.S_IMODE(st.st_mode) & ~file_mode:
        os.fchmod(fd, file_mode)
    return fd
