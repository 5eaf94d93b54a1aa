"""A journal that lost data must not start as if it had not.

SQLite opens a zero-length file as an empty database, recovers a torn or
garbled WAL by dropping the frames after the damage, and never notices a
batch deleted from the middle. A gateway started on any of these would
replay a shorter day, and its own orders would come back from the broker
as EXTERNAL_ORDER: positions wrong, nothing said. So at open:

- the sequence numbers must run from 1 without a gap;
- the journal must reach the high-water mark: the last sequence number a
  write was ever acknowledged for, kept in a small file beside it and
  updated after every committed batch (not fsync'd: it guards against a
  damaged journal, not against power loss, where it can only lag, which
  never raises a false alarm);
- an existing file of zero bytes is not a new journal.

Each failure names what is wrong and how to recover.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from livegate.model.errors import JournalError

RECOVER = (
    "restore the data folder from a backup; or move the journal away and start afresh,"
    " so the broker's view is the record (then livegate recon --eod)"
)


def mark_path(path: Path) -> Path:
    return path.with_name(path.name + ".mark")


def refuse_empty_file(path: Path) -> None:
    """An existing journal of zero bytes lost its data (a new one is created non-empty)."""
    if path.exists() and path.stat().st_size == 0 and mark_path(path).exists():
        raise JournalError(f"{path} is empty (0 bytes) but held a journal: {RECOVER}")


def check_continuity(conn: sqlite3.Connection, path: Path, archived_to: int = 0) -> int:
    """The last sequence number, once the journal is known whole; JournalError otherwise.
    `archived_to`: the last seq moved to archive files (journal/archives.py), which the
    live batches must follow."""
    first = conn.execute("SELECT min(first_seq) FROM batches").fetchone()[0]
    if first is not None and first != archived_to + 1:
        raise JournalError(
            f"{path}: the journal starts at seq {first}, not {archived_to + 1}: {RECOVER}"
        )
    gap = conn.execute(
        "SELECT expected, first_seq FROM ("
        " SELECT first_seq, lag(first_seq + size) OVER (ORDER BY first_seq) AS expected"
        " FROM batches) WHERE expected IS NOT NULL AND expected != first_seq LIMIT 1"
    ).fetchone()
    if gap is not None:
        raise JournalError(
            f"{path}: events {gap[0]} to {gap[1] - 1} are missing from the journal: {RECOVER}"
        )
    row = conn.execute(
        "SELECT first_seq + size - 1 FROM batches ORDER BY first_seq DESC LIMIT 1"
    ).fetchone()
    last = int(row[0]) if row else archived_to
    marked = read_mark(path)
    if marked > last:
        raise JournalError(
            f"{path} ends at seq {last}, but seq {marked} was committed"
            f" ({mark_path(path).name}): the journal lost its last events"
            f" (a truncated or damaged WAL?): {RECOVER}"
        )
    return last


def read_mark(path: Path) -> int:
    try:
        text = mark_path(path).read_text().strip()
    except OSError:
        return 0
    return int(text) if text.isdigit() else 0


class HighWaterMark:
    """The last committed sequence number, rewritten in place after each batch."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(mark_path(path), os.O_RDWR | os.O_CREAT, 0o644)

    def set(self, seq: int) -> None:
        os.pwrite(self._fd, b"%020d\n" % seq, 0)

    def close(self) -> None:
        os.close(self._fd)
