"""The storage contract under the journal.

A store only has to append batches atomically and durably and read them
back in order; group commit, sequencing and encoding live above it in
`journal.journal`, so a PostgreSQL store is one small class and nothing in
the engine changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple, Protocol

import msgspec


class Record(NamedTuple):
    seq: int
    ts_ns: int  # when the record's batch was committed
    kind: str
    client_order_id: str | None
    payload: bytes | str  # the event as JSON; stores may hand back text


class Retired(NamedTuple):
    """A finished order that left memory at a checkpoint (engine/archive.py)."""

    client_order_id: str
    broker_order_id: str | None
    state: bytes


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

    def write_checkpoint(self, seq: int, state: bytes, retired: Sequence[Retired] = ()) -> None:
        """Keep `state` as the book at `seq` (engine/book_state.py), durably, beside the
        events and under the same lease, with the rows of the orders it retired from
        memory (engine/archive.py), in one transaction; older checkpoints may go. Never
        called for a seq whose events are not all durable."""

    def last_checkpoint(self) -> tuple[int, bytes] | None:
        """The newest checkpoint (seq, state), None when there is none."""

    def retired_order(
        self, client_order_id: str | None, broker_order_id: str | None
    ) -> bytes | None:
        """A retired order's row: by client id, else by broker id; None when neither."""

    def close(self) -> None: ...


def retired_lookup(
    fetch: Callable[[str, str], bytes | None],
    client_order_id: str | None,
    broker_order_id: str | None,
) -> bytes | None:
    """A retired order's row by client id, else by broker id; `fetch(column, value)` is
    the store's query of its archive table."""
    row = fetch("client_order_id", client_order_id) if client_order_id else None
    if row is None and broker_order_id:
        row = fetch("broker_order_id", broker_order_id)
    return row


_raw_events = msgspec.json.Decoder(list[msgspec.Raw])


class _PeekReport(msgspec.Struct):
    client_order_id: str | None = None


class _Peek(msgspec.Struct):
    """The two index columns of an event, without decoding the rest of it."""

    type: str
    client_order_id: str | None = None
    report: _PeekReport | None = None


_peek = msgspec.json.Decoder(list[_Peek])


def split_batch(payload: bytes, first_seq: int, ts_ns: int, after_seq: int = 0) -> list[Record]:
    """A stored batch's events as records (kind and order id read as SQLite's view does),
    for stores that keep a batch as one JSON array: memory and PostgreSQL."""
    peeks = _peek.decode(payload)
    if len(peeks) == 1 and payload[:2] == b"[{" and payload[-2:] == b"}]":
        raws: list[bytes | msgspec.Raw] = [payload[1:-1]]  # as the journal wrote it: no decode
    else:
        raws = list(_raw_events.decode(payload))
    records = []
    for seq, (raw, peek) in enumerate(zip(raws, peeks, strict=True), first_seq):
        if seq <= after_seq:
            continue
        coid = peek.client_order_id or (peek.report.client_order_id if peek.report else None)
        records.append(Record(seq, ts_ns, peek.type, coid, bytes(raw)))
    return records
