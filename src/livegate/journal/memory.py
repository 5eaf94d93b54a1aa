"""A non-durable store: for replaying captures and for fast property tests.

It satisfies the `Store` contract except durability, so it must never back
a gateway that sends real orders.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import msgspec

from livegate.journal.store import Batch, Record

_raw_events = msgspec.json.Decoder(list[msgspec.Raw])


class _PeekReport(msgspec.Struct):
    client_order_id: str | None = None


class _Peek(msgspec.Struct):
    """The two index columns of an event, without decoding the rest of it."""

    type: str
    client_order_id: str | None = None
    report: _PeekReport | None = None


_peek = msgspec.json.Decoder(list[_Peek])


class MemoryStore:
    def __init__(self) -> None:
        self.records: list[Record] = []

    def open(self) -> None:
        return None

    def last_seq(self) -> int:
        return self.records[-1].seq if self.records else 0

    def write_batch(self, batch: Batch) -> None:
        now = time.time_ns()
        peeks = _peek.decode(batch.json)  # kind and order only, as SQLite's events view
        # One event (an inline journal's every batch) is the array without its brackets.
        raws = [batch.json[1:-1]] if batch.size == 1 else _raw_events.decode(batch.json)
        for seq, (raw, peek) in enumerate(zip(raws, peeks, strict=True), batch.first_seq):
            coid = peek.client_order_id or (peek.report.client_order_id if peek.report else None)
            self.records.append(Record(seq, now, peek.type, coid, bytes(raw)))

    def read(self, after_seq: int = 0) -> Iterator[Record]:
        return (r for r in list(self.records) if r.seq > after_seq)

    def read_order(self, client_order_id: str) -> Iterator[Record]:
        return (r for r in list(self.records) if r.client_order_id == client_order_id)

    def close(self) -> None:
        return None
