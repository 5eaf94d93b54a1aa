"""SQLite store: the embedded default.

WAL mode with synchronous=FULL: a commit returns only after the WAL is
fsync'd, so a returned `write_batch` survives power loss, not just a crash.
The cost of that fsync is paid once per batch, which is why the journal
above groups events into batches.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from livegate.journal.archives import (
    MANIFEST_SCHEMA,
    archive_old_days,
    archived_kinds,
    archived_order,
    archived_records,
    archived_to,
    manifest,
)
from livegate.journal.continuity import HighWaterMark, check_continuity, refuse_empty_file
from livegate.journal.journal import decode_event
from livegate.journal.lock import WriterLock
from livegate.journal.store import Batch, Record, Retired, retired_lookup
from livegate.model.errors import JournalError
from livegate.model.events import JournalEvent

_INSERT_BATCH = (
    "INSERT INTO events SELECT value->>0, value->>1, value->>2, value->>3, value->>4"
    " FROM json_each(?)"
)

# A batch is stored as written: one row holding its JSON array of events.
# Writing is then one blob append per fsync (measured: 1M events/s, against
# 480k inserting a row per event and 130k deriving columns on insert); the
# `events` view expands batches for queries and tracing, which are rare.
BATCHES_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    first_seq INTEGER PRIMARY KEY,
    size INTEGER NOT NULL,
    ts_ns INTEGER NOT NULL,
    events BLOB NOT NULL
);
CREATE VIEW IF NOT EXISTS events AS
SELECT b.first_seq + j.key AS seq,
       b.ts_ns AS ts_ns,
       j.value AS payload,
       j.value ->> 'type' AS kind,
       coalesce(j.value ->> 'client_order_id', j.value ->> '$.report.client_order_id')
           AS client_order_id
FROM batches AS b, json_each(b.events) AS j;
"""
_SCHEMA = (
    BATCHES_SCHEMA
    + MANIFEST_SCHEMA
    + """
CREATE TABLE IF NOT EXISTS checkpoints (
    seq INTEGER PRIMARY KEY,
    ts_ns INTEGER NOT NULL,
    state BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS retired (
    client_order_id TEXT PRIMARY KEY,
    broker_order_id TEXT,
    state BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS retired_by_broker_id ON retired (broker_order_id);
"""
)
# Two kept: the newest, and the one before in case the newest is unreadable.
_KEEP_CHECKPOINTS = 2
_INSERT_BATCH = "INSERT INTO batches VALUES (?, ?, ?, ?)"
_SPLIT_BATCH = (
    "SELECT ?2 + key, value, value ->> 'type',"
    " coalesce(value ->> 'client_order_id', value ->> '$.report.client_order_id')"
    " FROM json_each(?1) WHERE ?2 + key > ?3 ORDER BY key"
)


class SQLiteStore:
    def __init__(
        self,
        path: str | Path,
        synchronous: str = "FULL",
        read_only: bool = False,
        archive_after_days: int = 0,
    ) -> None:
        """`synchronous`: FULL for the gateway's journal (survives power loss);
        NORMAL survives a killed process only, enough for a simulated broker.
        `read_only`: for operator commands beside a running gateway; takes no
        lock and can never write (see journal/lock.py). `archive_after_days`: at
        open, days older than this move to archive files (journal/archives.py)."""
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous={synchronous!r}: use FULL or NORMAL")
        self.path = Path(path)
        self.synchronous = synchronous
        self.read_only = read_only
        self.archive_after_days = archive_after_days
        self._conn: sqlite3.Connection | None = None
        self._writer_lock: WriterLock | None = None
        self._mark: HighWaterMark | None = None
        # The writer thread writes while the loop thread may read (trace,
        # queries); sqlite3 connections are not safe to share unguarded.
        self._lock = threading.Lock()

    def open(self) -> None:
        if self.read_only:
            self._conn = open_read_only(self.path)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        pointer = self.path.with_name("journal.postgres.json")
        if self.path.name == "journal.sqlite" and pointer.exists() and not self.path.exists():
            # A second journal beside the real one would split the folder's history.
            raise JournalError(
                f"{self.path.parent}: this data folder's journal is in PostgreSQL ({pointer.name});"
                " it is written only by the gateway holding the account's lease"
            )
        lock = WriterLock(self.path)
        lock.acquire()
        try:
            refuse_empty_file(self.path)
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(f"PRAGMA synchronous={self.synchronous}")
                conn.executescript(_SCHEMA)
                check_continuity(conn, self.path, archived_to(manifest(conn)))
            except BaseException:
                conn.close()
                raise
        except sqlite3.DatabaseError as exc:
            lock.release()
            raise JournalError(f"{self.path}: not a readable journal ({exc})") from None
        except BaseException:
            lock.release()
            raise
        self._conn = conn
        self._writer_lock = lock
        self._mark = HighWaterMark(self.path)
        if self.archive_after_days:
            archive_old_days(self, self.archive_after_days)

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"store {self.path} is not open")
        return self._conn

    def last_seq(self) -> int:
        with self._lock:
            row = self.conn.execute(
                "SELECT first_seq + size - 1 FROM batches ORDER BY first_seq DESC LIMIT 1"
            ).fetchone()
            # Every batch archived: the next seq still follows the archives'.
            return int(row[0]) if row else archived_to(manifest(self.conn))

    def write_batch(self, batch: Batch) -> None:
        # One autocommit statement: atomic and fsync'd like BEGIN/COMMIT, and
        # one call into SQLite, so the writer thread takes the GIL back once
        # per batch (executemany takes it back once per row, each time behind
        # the busy event loop: 235 rows/s measured, against 93,000).
        with self._lock:
            self.conn.execute(
                _INSERT_BATCH, (batch.first_seq, batch.size, time.time_ns(), batch.json)
            )
            if self._mark is not None:
                self._mark.set(batch.first_seq + batch.size - 1)

    def read(self, after_seq: int = 0) -> Iterator[Record]:
        """Events after `after_seq`, archived days first (journal/archives.py), one batch
        at a time: memory stays flat."""
        with self._lock:
            archives = manifest(self.conn)
        yield from archived_records(self.path, archives, after_seq)
        yield from read_batches(self.conn, self._lock, after_seq)

    def read_order(self, client_order_id: str) -> Iterator[Record]:
        sql = (
            "SELECT seq, ts_ns, kind, client_order_id, payload FROM events"
            " WHERE client_order_id = ? ORDER BY seq"
        )
        with self._lock:
            archives = manifest(self.conn)
        rows = archived_order(self.path, archives, client_order_id)
        with self._lock:
            rows += self.conn.execute(sql, (client_order_id,)).fetchall()
        return (Record(*row) for row in rows)

    def write_checkpoint(self, seq: int, state: bytes, retired: Sequence[Retired] = ()) -> None:
        with self._lock:
            conn = self.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany("INSERT OR REPLACE INTO retired VALUES (?, ?, ?)", retired)
                conn.execute(
                    "INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?)",
                    (seq, time.time_ns(), state),
                )
                conn.execute(
                    "DELETE FROM checkpoints WHERE seq NOT IN"
                    " (SELECT seq FROM checkpoints ORDER BY seq DESC LIMIT ?)",
                    (_KEEP_CHECKPOINTS,),
                )
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def last_checkpoint(self) -> tuple[int, bytes] | None:
        try:
            with self._lock:
                row = self.conn.execute(
                    "SELECT seq, state FROM checkpoints ORDER BY seq DESC LIMIT 1"
                ).fetchone()
        except sqlite3.OperationalError:  # a journal from before checkpoints, opened read-only
            return None
        return (int(row[0]), bytes(row[1])) if row else None

    def retired_order(
        self, client_order_id: str | None, broker_order_id: str | None
    ) -> bytes | None:
        def fetch(column: str, value: str) -> bytes | None:
            row = self.conn.execute(
                f"SELECT state FROM retired WHERE {column} = ?", (value,)
            ).fetchone()
            return bytes(row[0]) if row is not None else None

        with self._lock:
            return retired_lookup(fetch, client_order_id, broker_order_id)

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in (self.path, Path(f"{self.path}-wal")) if p.exists())

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if self._mark is not None:
                self._mark.close()
                self._mark = None
            if self._writer_lock is not None:
                self._writer_lock.release()
                self._writer_lock = None


def read_batches(
    conn: sqlite3.Connection, lock: threading.Lock | None, after_seq: int
) -> Iterator[Record]:
    """The records after `after_seq` of one file's batches (the live journal's or an
    archive's), a batch at a time, under `lock` while touching the connection."""
    guard = lock if lock is not None else contextlib.nullcontext()
    with guard:
        # The batch holding after_seq + 1, found through the primary key.
        row = conn.execute(
            "SELECT first_seq FROM batches WHERE first_seq <= ? ORDER BY first_seq DESC LIMIT 1",
            (after_seq + 1,),
        ).fetchone()
    cursor_seq = (row[0] if row else 0) - 1
    while True:
        with guard:
            batch = conn.execute(
                "SELECT first_seq, ts_ns, events FROM batches WHERE first_seq > ?"
                " ORDER BY first_seq LIMIT 1",
                (cursor_seq,),
            ).fetchone()
            if batch is None:
                return
            first_seq, ts_ns, events = batch
            rows = conn.execute(_SPLIT_BATCH, (events, first_seq, after_seq)).fetchall()
        for seq, payload, kind, client_order_id in rows:
            yield Record(seq, ts_ns, kind, client_order_id, payload)
        cursor_seq = first_seq


def open_read_only(path: Path) -> sqlite3.Connection:
    """A connection that cannot write, checked to be a journal; JournalError otherwise."""
    if not path.is_file():
        raise JournalError(f"{path} not found: point at a gateway's data folder")
    try:
        conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False
        )
        conn.execute("SELECT first_seq, size, ts_ns, events FROM batches LIMIT 0")
    except sqlite3.DatabaseError as exc:
        raise JournalError(f"{path}: not a readable livegate journal ({exc})") from None
    return conn


def replay_file(path: Path) -> Iterator[tuple[int, JournalEvent]]:
    """Every event of a journal file with its seq, read without ever writing (beside a
    running gateway too): what the gate, `rollout` and scripts rebuild books from."""
    from livegate.journal.locate import open_reader

    store = open_reader(path)  # a PostgreSQL journal through its pointer, too
    try:
        for record in store.read():
            yield record.seq, decode_event(record.payload)
    finally:
        store.close()


def events_of_kinds(path: Path, *kinds: str) -> list[JournalEvent]:
    """Every event of these kinds, in journal order, read without ever writing:
    what operator commands show beside a running gateway."""
    from livegate.journal.locate import open_reader, postgres_of

    if postgres_of(path) is not None:
        store = open_reader(path)
        try:
            return [decode_event(r.payload) for r in store.read() if r.kind in kinds]
        finally:
            store.close()
    conn = open_read_only(path)
    try:
        marks = ", ".join("?" * len(kinds))
        sql = f"SELECT payload FROM events WHERE kind IN ({marks}) ORDER BY seq"
        rows = archived_kinds(path, manifest(conn), kinds)
        rows += conn.execute(sql, kinds).fetchall()
    finally:
        conn.close()
    return [decode_event(payload) for (payload,) in rows]
