"""The storage contract under the journal.

A store only has to append batches atomically and durably and read them
back in order; group commit, sequencing and encoding live above it in
`journal.journal`, so a PostgreSQL store is one small class and nothing in
the engine changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple, Protocol


class Record(NamedTuple):
    seq: int
    ts_ns: int  # when the record's batch was committed
    kind: str
    client_order_id: str | None
    payload: bytes | str  # the event as JSON; stores may hand back text


class Batch(NamedTuple):
    """Consecutive events as one JSON array, seq numbers from `first_seq` on.

    Encoded on the event loop as events are appended, so the writer thread
    hands the store one bytes object and needs the GIL only to call it.
    SQLite (`json_each`) and PostgreSQL (`json_array_elements`) can both
    insert such an array in one statement.
    """

    first_seq: int
    size: int
    json: bytes


class Store(Protocol):
    def open(self) -> None:
        """Create the schema if needed. Called once before any other method."""

    def last_seq(self) -> int:
        """Highest sequence number stored, 0 when empty."""

    def write_batch(self, batch: Batch) -> None:
        """Store all records of the batch in one transaction; return only once durable.

        Called from the journal's writer thread, one batch at a time. Must be
        all-or-nothing: on failure it raises and none of the records exist.
        """

    def read(self, after_seq: int = 0) -> Iterator[Record]:
        """Records with seq > after_seq, in seq order."""

    def read_order(self, client_order_id: str) -> Iterator[Record]:
        """Records about one order, in seq order (for tracing)."""

    def close(self) -> None: ...
