"""PostgreSQL store: many accounts' journals in one database, each written under a lease.

A batch is one row (the JSON array the journal encoded), keyed by account and
first seq, as in SQLite; `write_batch` returns once PostgreSQL committed it
(synchronous_commit on: flushed to its WAL). Every insert locks the account's
lease row and checks this writer's epoch in the same statement (journal/lease.py):
a takeover waits for a write in flight, and a write after a takeover inserts
nothing, which this store turns into LeaseLostError. The journal then fails
for good, so no further intent, and no further order, can go out.

The password comes from a credential reference (journal_password in a
profile), never from the connection string.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from livegate.journal.lease import Lease, LeaseLostError
from livegate.journal.store import Batch, Record, Retired, retired_lookup, split_batch
from livegate.model.errors import JournalError

SCHEMA = """
CREATE TABLE IF NOT EXISTS livegate_batches (
    account text NOT NULL,
    first_seq bigint NOT NULL,
    size integer NOT NULL,
    ts_ns bigint NOT NULL,
    epoch bigint NOT NULL,
    events bytea NOT NULL,
    PRIMARY KEY (account, first_seq)
);
CREATE TABLE IF NOT EXISTS livegate_retired (
    account text NOT NULL,
    client_order_id text NOT NULL,
    broker_order_id text,
    state bytea NOT NULL,
    PRIMARY KEY (account, client_order_id)
);
CREATE INDEX IF NOT EXISTS livegate_retired_by_broker_id
    ON livegate_retired (account, broker_order_id);
CREATE TABLE IF NOT EXISTS livegate_checkpoints (
    account text NOT NULL,
    seq bigint NOT NULL,
    ts_ns bigint NOT NULL,
    epoch bigint NOT NULL,
    state bytea NOT NULL,
    PRIMARY KEY (account, seq)
);
"""
_INSERT = """
WITH lease AS (
    SELECT epoch FROM livegate_leases
     WHERE account = %(account)s AND holder = %(holder)s AND epoch = %(epoch)s
       FOR SHARE
)
INSERT INTO livegate_batches (account, first_seq, size, ts_ns, epoch, events)
SELECT %(account)s, %(first)s, %(size)s, %(ts)s, epoch, %(events)s FROM lease
"""
_CHECKPOINT = """
WITH lease AS (
    SELECT epoch FROM livegate_leases
     WHERE account = %(account)s AND holder = %(holder)s AND epoch = %(epoch)s
       FOR SHARE
)
INSERT INTO livegate_checkpoints (account, seq, ts_ns, epoch, state)
SELECT %(account)s, %(seq)s, %(ts)s, epoch, %(state)s FROM lease
ON CONFLICT (account, seq) DO UPDATE SET ts_ns = excluded.ts_ns, epoch = excluded.epoch,
    state = excluded.state
"""
_PRUNE_CHECKPOINTS = """
DELETE FROM livegate_checkpoints WHERE account = %(account)s AND seq NOT IN
    (SELECT seq FROM livegate_checkpoints WHERE account = %(account)s ORDER BY seq DESC LIMIT 2)
"""
_RETIRE = """
INSERT INTO livegate_retired (account, client_order_id, broker_order_id, state)
VALUES (%s, %s, %s, %s)
ON CONFLICT (account, client_order_id) DO UPDATE SET broker_order_id = excluded.broker_order_id,
    state = excluded.state
"""
_LAST_CHECKPOINT = """
SELECT seq, state FROM livegate_checkpoints WHERE account = %s ORDER BY seq DESC LIMIT 1
"""
_LAST = "SELECT coalesce(max(first_seq + size - 1), 0) FROM livegate_batches WHERE account = %s"
_READ = """
SELECT first_seq, ts_ns, events FROM livegate_batches
 WHERE account = %s AND first_seq + size - 1 > %s ORDER BY first_seq
"""


class PostgresStore:
    """One account's journal. `lease`: the writer's (required to write); None reads only."""

    def __init__(
        self,
        conninfo: str,
        account: str,
        lease: Lease | None = None,
        connect: dict[str, Any] | None = None,
    ) -> None:
        self.conninfo = conninfo
        self.account = account
        self.lease = lease
        self._connect = connect or {}
        self._conn: Any = None
        self._lock = threading.Lock()  # the writer thread and the loop's reads

    def open(self) -> None:
        import psycopg

        try:
            self._conn = psycopg.connect(self.conninfo, autocommit=True, **self._connect)
            with self._conn.transaction():
                # Two gateways creating the schema at once must not collide.
                self._conn.execute("SELECT pg_advisory_xact_lock(hashtext('livegate_schema'))")
                self._conn.execute(SCHEMA)
        except psycopg.Error as exc:
            raise JournalError(f"PostgreSQL journal: {_plain(exc)}") from None
        if self.lease is not None:
            self.lease.check()  # a writer opens only under its lease

    def reader(self) -> PostgresStore:
        """A read-only store of the same journal, on its own connection."""
        return PostgresStore(self.conninfo, self.account, None, self._connect)

    @property
    def conn(self) -> Any:
        if self._conn is None:
            raise RuntimeError("PostgreSQL store is not open")
        return self._conn

    def last_seq(self) -> int:
        with self._lock:
            return int(self.conn.execute(_LAST, (self.account,)).fetchone()[0])

    def fence(self) -> None:
        """Raise LeaseLostError unless this process may still write and send."""
        if self.lease is None:
            raise JournalError("a read-only PostgreSQL store cannot write")
        self.lease.check()

    def write_batch(self, batch: Batch) -> None:
        lease = self.lease
        if lease is None:
            raise JournalError("a read-only PostgreSQL store cannot write")
        lease.check()
        params = {"account": self.account, "holder": lease.holder, "epoch": lease.epoch,
                  "first": batch.first_seq, "size": batch.size, "ts": time.time_ns(),
                  "events": batch.json}  # fmt: skip
        with self._lock:
            inserted = self.conn.execute(_INSERT, params).rowcount
        if inserted != 1:
            lease.lost = (
                f"account {self.account}: journal write refused, the lease passed to another"
                f" gateway (this one held epoch {lease.epoch})"
            )
            raise LeaseLostError(lease.lost)

    def read(self, after_seq: int = 0) -> Iterator[Record]:
        """Batch by batch through a server-side cursor: memory stays flat."""
        with self._lock, self.conn.transaction(), self.conn.cursor(name="livegate_read") as cur:
            cur.execute(_READ, (self.account, after_seq))
            rows = cur.fetchmany(500)
            while rows:
                for first_seq, ts_ns, events in rows:
                    yield from split_batch(bytes(events), first_seq, ts_ns, after_seq)
                rows = cur.fetchmany(500)

    def read_order(self, client_order_id: str) -> Iterator[Record]:
        return (r for r in list(self.read()) if r.client_order_id == client_order_id)

    def write_checkpoint(self, seq: int, state: bytes, retired: Sequence[Retired] = ()) -> None:
        """Fenced like a batch: a gateway that lost its lease leaves no checkpoint."""
        lease = self.lease
        if lease is None:
            raise JournalError("a read-only PostgreSQL store cannot write")
        lease.check()
        params = {"account": self.account, "holder": lease.holder, "epoch": lease.epoch,
                  "seq": seq, "ts": time.time_ns(), "state": state}  # fmt: skip
        with self._lock, self.conn.transaction():
            if self.conn.execute(_CHECKPOINT, params).rowcount != 1:
                raise LeaseLostError(
                    f"account {self.account}: checkpoint refused, the lease passed to another"
                    " gateway"
                )
            self.conn.execute(_PRUNE_CHECKPOINTS, params)
            if retired:
                with self.conn.cursor() as cur:
                    cur.executemany(_RETIRE, [(self.account, *row) for row in retired])

    def last_checkpoint(self) -> tuple[int, bytes] | None:
        with self._lock:
            row = self.conn.execute(_LAST_CHECKPOINT, (self.account,)).fetchone()
        return (int(row[0]), bytes(row[1])) if row else None

    def retired_order(
        self, client_order_id: str | None, broker_order_id: str | None
    ) -> bytes | None:
        def fetch(column: str, value: str) -> bytes | None:
            row = self.conn.execute(
                f"SELECT state FROM livegate_retired WHERE account = %s AND {column} = %s",
                (self.account, value),
            ).fetchone()
            return bytes(row[0]) if row is not None else None

        with self._lock:
            return retired_lookup(fetch, client_order_id, broker_order_id)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _plain(exc: Exception) -> str:
    """psycopg's message on one line, without the connection string's details."""
    return " ".join(str(exc).split())
