"""Follow a file that an application appends to, as ``tail -F`` does: new complete lines
since the last read, across rotation (a new file at the path) and truncation
(``copytruncate``); a half-written last line waits until its newline comes."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import BinaryIO

#: Read at most this much per call: a file that grew by gigabytes is caught up over
#: several runs, each on time.
MAX_READ = 64 * 1024 * 1024


class FileTail:
    """``read()`` returns the complete lines added since the previous call. The first
    call starts ``backfill`` bytes before the end (at a line's start), so that a restart
    sees the recent past; ``backfill=0`` starts at the end."""

    def __init__(self, path: str | os.PathLike[str], backfill: int = 16 * 1024 * 1024) -> None:
        self.path = Path(path)
        self.backfill = backfill
        self._file: BinaryIO | None = None
        self._inode: tuple[int, int] | None = None
        self._partial = b""
        #: What was seen so far, for the check's details.
        self.rotations = 0
        self.truncations = 0

    @property
    def opened(self) -> bool:
        """Whether the file was found and is being followed."""
        return self._file is not None

    def read(self) -> list[bytes]:
        """The complete lines appended since the last call (at the first, the last
        ``backfill`` bytes' worth), through rotation and truncation."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            stat = None  # rotated away and not yet made again: finish the old one
        if self._file is None:
            if stat is None:
                return []
            self._open(start=max(0, stat.st_size - self.backfill))
            return self._drain()
        lines: list[bytes] = []
        if stat is not None and (stat.st_dev, stat.st_ino) != self._inode:
            lines = self._drain()
            if self._partial:  # the writer moved on: that line will never be finished
                lines.append(self._partial)
            self.rotations += 1
            self._open(start=0)
        elif stat is not None and stat.st_size < self._position():
            self.truncations += 1
            self._partial = b""
            assert self._file is not None
            self._file.seek(0)
        return lines + self._drain()

    def close(self) -> None:
        """Let the file go."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def _position(self) -> int:
        assert self._file is not None
        return self._file.tell()

    def _open(self, start: int) -> None:
        self.close()
        try:
            handle = open(self.path, "rb")  # noqa: SIM115 (kept open between reads)
        except FileNotFoundError:
            return
        stat = os.fstat(handle.fileno())
        self._file, self._inode, self._partial = handle, (stat.st_dev, stat.st_ino), b""
        if start:
            handle.seek(start - 1)
            # Start at a line's beginning: skip the rest of the line the seek fell in.
            if handle.read(1) != b"\n":
                handle.readline()

    def _drain(self) -> list[bytes]:
        if self._file is None:
            return []
        with contextlib.suppress(OSError):
            data = self._file.read(MAX_READ)
            if data:
                *lines, self._partial = (self._partial + data).split(b"\n")
                return lines
        return []
