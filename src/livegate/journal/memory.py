"""A non-durable store: for replaying captures and for fast property tests.

It satisfies the `Store` contract except durability, so it must never back
a gateway that sends real orders.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from livegate.journal.store import Batch, Record, split_batch


class MemoryStore:
    def __init__(self) -> None:
        self.records: list[Record] = []
        self.checkpoint: tuple[int, bytes] | None = None

    def open(self) -> None:
        return None

    def last_seq(self) -> int:
        return self.records[-1].seq if self.records else 0

    def write_batch(self, batch: Batch) -> None:
        self.records += split_batch(batch.json, batch.first_seq, time.time_ns())

    def read(self, after_seq: int = 0) -> Iterator[Record]:
        return (r for r in list(self.records) if r.seq > after_seq)

    def read_order(self, client_order_id: str) -> Iterator[Record]:
        return (r for r in list(self.records) if r.client_order_id == client_order_id)

    def write_checkpoint(self, seq: int, state: bytes) -> None:
        self.checkpoint = (seq, state)

    def last_checkpoint(self) -> tuple[int, bytes] | None:
        return self.checkpoint

    def close(self) -> None:
        return None
