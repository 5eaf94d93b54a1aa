"""One writer per journal: an exclusive lock beside the file.

SQLite would let a second process append to a journal a running gateway
owns, and the gateway numbers events in memory, so the next write of the
owner then fails for good (a UNIQUE seq) and its kill switch stops working.
Every store that writes takes this lock first; everything else reads
read-only or asks the owner through its control folder. `flock` is released
by the kernel when the holder dies, so a SIGKILLed gateway never leaves a
stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from livegate.model.errors import JournalError


class JournalLockedError(JournalError):
    """Another process (or another store in this one) writes this journal."""


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


class WriterLock:
    """Held from `acquire` to `release`; the lock file keeps the holder's pid for messages."""

    def __init__(self, path: Path) -> None:
        self.path = lock_path(path)
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if not _take(fd):
            os.close(fd)
            holder = holder_pid(self.path)
            who = f"process {holder}" if holder else "another process"
            raise JournalLockedError(
                f"{self.path.with_suffix('')} is in use by {who}: one gateway writes a journal;"
                " operator commands reach a running one through its control folder"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _take(fd: int) -> bool:
    """The exclusive lock, waiting out `is_locked`'s probe (it holds a shared lock
    for microseconds); a real holder keeps it and we give up after half a second."""
    deadline = time.monotonic() + 0.5
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)


def holder_pid(lock_file: Path) -> int | None:
    try:
        text = lock_file.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def is_locked(path: Path) -> bool:
    """Whether a writer holds the journal at `path` now (a running gateway)."""
    target = lock_path(path)
    if not target.exists():
        return False
    fd = os.open(target, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the shared lock we may have taken
    return False
