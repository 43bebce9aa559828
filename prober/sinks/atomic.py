"""Atomic output: write a temp file beside the target, fsync, rename.

A crash (even SIGKILL) leaves either the previous file or the complete new one.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import IO


class AtomicFile:
    def __init__(self, path: str | None, mode: str = "w", newline: str | None = None) -> None:
        self.path = None if path in (None, "-") else Path(path)
        self._tmp: str | None = None
        self.fh: IO[str]
        if self.path is None:
            self.fh = sys.stdout
            return
        folder = self.path.parent
        folder.mkdir(parents=True, exist_ok=True)
        fd, self._tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=folder)
        self.fh = os.fdopen(fd, mode, 1 << 20, encoding="utf-8", newline=newline)

    def commit(self) -> None:
        if self.path is None:
            self.fh.flush()
            return
        assert self._tmp is not None
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()
        os.chmod(self._tmp, 0o644 & ~_umask())
        os.replace(self._tmp, self.path)
        self._tmp = None
        with contextlib.suppress(OSError):
            dfd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    def abort(self) -> None:
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                self.fh.close()
            with contextlib.suppress(OSError):
                os.unlink(self._tmp)
            self._tmp = None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_writable(path: str | None, flag: str) -> None:
    """Fail before any work when an output cannot be written (a user error, exit 2)."""
    from prober.errors import UsageError

    if path in (None, "-"):
        return
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{flag} {path}: is a directory")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(f"{flag} {path}: cannot write there ({exc.strerror})") from None
