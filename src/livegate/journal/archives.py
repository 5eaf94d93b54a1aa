"""Trading days moved out of the live journal into archive files, still read as history.

A start needs only the newest checkpoint and the events after it (0011), so
days before the checkpoint can leave the live journal: it stays small, its
backups and copies stay quick. They move, they are not dropped: `trace`, the
gate's evidence, the alert and trading-state history and a start that cannot
use its checkpoint all read the whole history, so the SQLite store chains the
archive files in front of its own batches (`SQLiteStore.read`, `read_order`,
`events_of_kinds`), and every reader sees one journal from seq 1.

One file per UTC day of commit, `archive/journal.<day>.<first seq>.sqlite`
beside the journal, holding that day's batches exactly as they were stored.
The live journal lists them in its `archives` table, the manifest: a file is
written and fsync'd first, then the manifest row and the deletion of its
batches commit in one transaction, so a crash leaves either the batches in
the live journal (and an orphan file that the next run rewrites) or the
manifest naming a complete file. A file that is missing or holds other events
than the manifest says stops a reader with its name, never a silently shorter
history.

Only with the gateway stopped (the writer's lock), and only at or before the
newest checkpoint: a start then never needs an archive unless its checkpoint
is unusable, and then it reads the archives like any other history.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from livegate.model.errors import JournalError

if TYPE_CHECKING:
    from livegate.journal.sqlite import SQLiteStore

log = logging.getLogger(__name__)

FOLDER = "archive"
MANIFEST_SCHEMA = """
CREATE TABLE IF NOT EXISTS archives (
    first_seq INTEGER PRIMARY KEY,
    last_seq INTEGER NOT NULL,
    file TEXT NOT NULL,
    first_ts_ns INTEGER NOT NULL,
    last_ts_ns INTEGER NOT NULL
);
"""


class ArchiveFile(NamedTuple):
    first_seq: int
    last_seq: int
    file: str  # relative to the journal's folder
    first_ts_ns: int
    last_ts_ns: int


class ArchiveSummary(NamedTuple):
    files: list[ArchiveFile]
    events: int
    checkpoint_seq: int
    bytes_before: int
    bytes_after: int


def manifest(conn: sqlite3.Connection) -> list[ArchiveFile]:
    """The archive files of a journal, in seq order; none for a journal from before them
    (opened read-only, where the table cannot be created)."""
    try:
        rows = conn.execute(
            "SELECT first_seq, last_seq, file, first_ts_ns, last_ts_ns FROM archives"
            " ORDER BY first_seq"
        ).fetchall()
    except sqlite3.OperationalError:
        return []
    return [ArchiveFile(*row) for row in rows]


def archived_to(entries: list[ArchiveFile]) -> int:
    """The last seq held by archives: the live journal's batches start after it."""
    return entries[-1].last_seq if entries else 0


def open_archive(journal: Path, entry: ArchiveFile) -> sqlite3.Connection:
    """An archive file, read-only, checked to hold what the manifest says."""
    from livegate.journal.sqlite import open_read_only

    path = journal.parent / entry.file
    what = f"archive {path} (events {entry.first_seq} to {entry.last_seq}, {_day(entry)})"
    if not path.is_file():
        raise JournalError(
            f"{what} is missing: put it back to read the journal's history"
            " (trace, the gate's evidence, a start without a usable checkpoint)"
        )
    conn = open_read_only(path)
    low, high = conn.execute(
        "SELECT min(first_seq), max(first_seq + size - 1) FROM batches"
    ).fetchone()
    if (low, high) != (entry.first_seq, entry.last_seq):
        conn.close()
        raise JournalError(f"{what} holds events {low} to {high} instead: not this journal's file")
    return conn


def _day(entry: ArchiveFile) -> str:
    return datetime.fromtimestamp(entry.first_ts_ns / 1e9, UTC).date().isoformat()


def archive_before(store: SQLiteStore, before: date) -> ArchiveSummary:
    """Move the batches committed before `before` (UTC) and at or before the newest
    checkpoint into archive files. `store` is a writable, open SQLiteStore: it holds the
    writer's lock, so no gateway writes meanwhile."""
    if store.read_only:
        raise JournalError(f"{store.path}: opened read-only; archiving needs the writer's lock")
    conn = store.conn
    checkpoint = store.last_checkpoint()
    if checkpoint is None:
        raise JournalError(
            f"{store.path} has no checkpoint yet: a start would need every event, so none can"
            " leave; a clean stop of the gateway (or an end-of-day reconciliation) writes one"
        )
    limit_ns = int(datetime(before.year, before.month, before.day, tzinfo=UTC).timestamp() * 1e9)
    days: dict[date, list[tuple[int, int, int, bytes]]] = {}
    for first_seq, size, ts_ns, events in conn.execute(
        "SELECT first_seq, size, ts_ns, events FROM batches ORDER BY first_seq"
    ):
        if ts_ns >= limit_ns or first_seq + size - 1 > checkpoint[0]:
            break  # a prefix only: the live journal must stay one run of seqs
        day = datetime.fromtimestamp(ts_ns / 1e9, UTC).date()
        days.setdefault(day, []).append((first_seq, size, ts_ns, events))
    bytes_before = store.size_bytes()
    written = [_write_file(store.path, day, rows) for day, rows in sorted(days.items())]
    if written:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany("INSERT INTO archives VALUES (?, ?, ?, ?, ?)", written)
            conn.execute("DELETE FROM batches WHERE first_seq <= ?", (written[-1].last_seq,))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        conn.execute("VACUUM")  # give the space back: the point of archiving
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    events = sum(f.last_seq - f.first_seq + 1 for f in written)
    return ArchiveSummary(written, events, checkpoint[0], bytes_before, store.size_bytes())


def archive_old_days(store: SQLiteStore, days: int) -> ArchiveSummary | None:
    """What a start does with `archive_after_days`: the days older than that leave, if a
    checkpoint allows. Never a reason not to start: archiving is all or nothing per run
    (files first, then the manifest with the deletion), so a failure leaves the journal
    as it was, with a warning."""
    before = datetime.now(UTC).date() - timedelta(days=days)
    try:
        if store.last_checkpoint() is None:
            return None
        summary = archive_before(store, before)
    except (OSError, sqlite3.Error, JournalError) as exc:
        log.warning("%s: days before %s not archived: %s", store.path, before, exc)
        return None
    if summary.files:
        log.info(
            "%s: %d events before %s archived in %d files",
            store.path,
            summary.events,
            before,
            len(summary.files),
        )
    return summary


def _write_file(journal: Path, day: date, rows: list[tuple[int, int, int, bytes]]) -> ArchiveFile:
    """One day's batches as a file of their own, durable before the manifest names it."""
    from livegate.journal.sqlite import BATCHES_SCHEMA

    entry = ArchiveFile(rows[0][0], rows[-1][0] + rows[-1][1] - 1, "", rows[0][2], rows[-1][2])
    name = f"{FOLDER}/journal.{day.isoformat()}.{entry.first_seq}.sqlite"
    path = journal.parent / name
    path.parent.mkdir(exist_ok=True)
    path.unlink(missing_ok=True)  # an orphan of a run that died before its manifest row
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, to move or copy
        conn.execute("PRAGMA synchronous=FULL")
        conn.executescript(BATCHES_SCHEMA + _INDEX_SCHEMA)
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO batches VALUES (?, ?, ?, ?)", rows)
        conn.execute(_INDEX_ORDERS)
        conn.execute(_INDEX_KINDS)
        conn.execute("COMMIT")
    finally:
        conn.close()
    _fsync_dir(path.parent)
    check = open_archive(journal, entry._replace(file=name))
    check.close()
    return entry._replace(file=name)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def archived_records(journal: Path, entries: list[ArchiveFile], after_seq: int) -> Iterator[Any]:
    """Records after `after_seq` from the archives, in seq order."""
    from livegate.journal.sqlite import read_batches

    for entry in entries:
        if entry.last_seq <= after_seq:
            continue
        conn = open_archive(journal, entry)
        try:
            yield from read_batches(conn, None, after_seq)
        finally:
            conn.close()


# Which batches hold what, so a trace or a history of one kind reads the batches it
# needs instead of every event of every archived day: "c:" + client id, "k:" + kind.
_INDEX_SCHEMA = """
CREATE TABLE batch_index (
    key TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    PRIMARY KEY (key, first_seq)
) WITHOUT ROWID;
"""
_INDEX_ORDERS = """
INSERT OR IGNORE INTO batch_index
SELECT 'c:' || coalesce(j.value ->> 'client_order_id', j.value ->> '$.report.client_order_id'),
       b.first_seq
FROM batches AS b, json_each(b.events) AS j
WHERE coalesce(j.value ->> 'client_order_id', j.value ->> '$.report.client_order_id') IS NOT NULL
"""
_INDEX_KINDS = """
INSERT OR IGNORE INTO batch_index
SELECT 'k:' || (j.value ->> 'type'), b.first_seq FROM batches AS b, json_each(b.events) AS j
"""
# The `events` view's columns, of the batches the index names for `keys`.
_INDEXED = """
SELECT b.first_seq + j.key AS seq, b.ts_ns, j.value ->> 'type' AS kind,
       coalesce(j.value ->> 'client_order_id', j.value ->> '$.report.client_order_id') AS coid,
       j.value AS payload
FROM batches AS b, json_each(b.events) AS j
WHERE b.first_seq IN (SELECT first_seq FROM batch_index WHERE key IN ({keys}))
"""


def archived_order(journal: Path, entries: list[ArchiveFile], client_order_id: str) -> list[Any]:
    """One order's records (seq, ts_ns, kind, client id, payload) from the archives."""
    sql = _INDEXED.format(keys="?") + " AND coid = ? ORDER BY seq"
    return _each(journal, entries, sql, ("c:" + client_order_id, client_order_id))


def archived_kinds(journal: Path, entries: list[ArchiveFile], kinds: tuple[str, ...]) -> list[Any]:
    """The payloads of every archived event of these kinds, in seq order."""
    marks = ", ".join("?" * len(kinds))
    sql = (
        f"SELECT payload FROM ({_INDEXED.format(keys=marks)}) WHERE kind IN ({marks}) ORDER BY seq"
    )
    return _each(journal, entries, sql, tuple("k:" + k for k in kinds) + kinds)


def _each(
    journal: Path, entries: list[ArchiveFile], sql: str, args: tuple[object, ...]
) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for entry in entries:
        conn = open_archive(journal, entry)
        try:
            rows.extend(conn.execute(sql, args).fetchall())
        finally:
            conn.close()
    return rows
