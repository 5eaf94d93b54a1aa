"""A non-durable store: for replaying captures and for fast property tests.

It satisfies the `Store` contract except durability, so it must never back
a gateway that sends real orders.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

from livegate.journal.store import Batch, Record, Retired, split_batch


class MemoryStore:
    def __init__(self) -> None:
        # Batches as written; split into records only when read. A replay writes
        # every event as a batch of its own and reads back few: splitting each on
        # write was a tenth of a capture's replay.
        self._batches: list[tuple[Batch, int]] = []
        self._split: list[Record] = []
        self._split_batches = 0
        self.checkpoint: tuple[int, bytes] | None = None
        self.retired: dict[str, Retired] = {}
        self._retired_by_broker: dict[str, str] = {}

    @property
    def records(self) -> list[Record]:
        for batch, ts_ns in self._batches[self._split_batches :]:
            self._split += split_batch(batch.json, batch.first_seq, ts_ns)
        self._split_batches = len(self._batches)
        return self._split

    def open(self) -> None:
        return None

    def last_seq(self) -> int:
        if not self._batches:
            return 0
        batch = self._batches[-1][0]
        return batch.first_seq + batch.size - 1

    def write_batch(self, batch: Batch) -> None:
        self._batches.append((batch, time.time_ns()))

    def read(self, after_seq: int = 0) -> Iterator[Record]:
        if after_seq == 0:
            return iter(list(self.records))
        return (
            record
            for batch, ts_ns in list(self._batches)
            if batch.first_seq + batch.size - 1 > after_seq
            for record in split_batch(batch.json, batch.first_seq, ts_ns, after_seq)
        )

    def read_kind(self, kind: str) -> Iterator[Record]:
        """Records of one kind, splitting only the batches that can hold one."""
        marker = b'"type":"' + kind.encode() + b'"'
        return (
            record
            for batch, ts_ns in list(self._batches)
            if marker in batch.json
            for record in split_batch(batch.json, batch.first_seq, ts_ns)
            if record.kind == kind
        )

    def read_order(self, client_order_id: str) -> Iterator[Record]:
        return (r for r in list(self.records) if r.client_order_id == client_order_id)

    def write_checkpoint(self, seq: int, state: bytes, retired: Sequence[Retired] = ()) -> None:
        self.checkpoint = (seq, state)
        for row in retired:
            self.retired[row.client_order_id] = row
            if row.broker_order_id:
                self._retired_by_broker[row.broker_order_id] = row.client_order_id

    def retired_order(
        self, client_order_id: str | None, broker_order_id: str | None
    ) -> bytes | None:
        row = self.retired.get(client_order_id or "")
        if row is None and broker_order_id:
            row = self.retired.get(self._retired_by_broker.get(broker_order_id, ""))
        return row.state if row is not None else None

    def last_checkpoint(self) -> tuple[int, bytes] | None:
        return self.checkpoint

    def close(self) -> None:
        return None
