"""Write-ahead journal with group commit.

`append` sequences and encodes an event and returns the future of the batch
holding it; the future resolves once that batch is durable in the store.
Exactly one batch is being written at a time, on a dedicated writer thread,
while the event loop keeps filling the next one. Under load, batches grow
by themselves to whatever accumulated during the previous fsync, so
throughput is bounded by encoding, not by fsyncs; at low load each event
gets its own commit and waits only for that. No fsync is ever skipped.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Iterator

import msgspec

from livegate.journal.store import Record, Store
from livegate.model.errors import JournalError
from livegate.model.events import JournalEvent, event_client_order_id

_encoder = msgspec.json.Encoder(decimal_format="string")
_decoder: msgspec.json.Decoder[JournalEvent] = msgspec.json.Decoder(JournalEvent)


def encode_event(event: JournalEvent) -> bytes:
    return _encoder.encode(event)


def decode_event(payload: bytes | str) -> JournalEvent:
    return _decoder.decode(payload)


class JournalStats(msgspec.Struct):
    events: int = 0
    batches: int = 0
    largest_batch: int = 0
    write_seconds: float = 0.0


class Journal:
    def __init__(self, store: Store, *, max_batch: int = 5_000) -> None:
        self.store = store
        self.max_batch = max_batch
        self.stats = JournalStats()
        self._seq = 0
        self._pending: list[Record] = []
        self._pending_future: asyncio.Future[None] | None = None
        self._writing = False
        self._failed: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._idle: asyncio.Event | None = None

    # -- lifecycle -------------------------------------------------------
    def open(self) -> None:
        self.store.open()
        self._seq = self.store.last_seq()

    def replay(self) -> Iterator[tuple[int, JournalEvent]]:
        for record in self.store.read():
            yield record.seq, decode_event(record.payload)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="livegate-journal"
        )
        self._idle = asyncio.Event()
        self._idle.set()

    async def drain(self) -> None:
        """Wait until everything appended so far is durable (or failed)."""
        while self._pending or self._writing:
            assert self._idle is not None
            self._idle.clear()
            await self._idle.wait()

    async def close(self) -> None:
        if self._loop is not None:
            await self.drain()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        self.store.close()

    @property
    def last_seq(self) -> int:
        return self._seq

    @property
    def failed(self) -> BaseException | None:
        return self._failed

    # -- appending -------------------------------------------------------
    def append(self, event: JournalEvent) -> asyncio.Future[None]:
        """Queue an event; the returned future resolves when it is durable.

        Events become durable in append order, and futures resolve in that
        order too; callers rely on that to apply events in journal order.
        """
        loop = self._loop
        if loop is None:
            raise JournalError("journal is not started")
        if self._failed is not None:
            raise JournalError(f"journal failed earlier: {self._failed}") from self._failed
        self._seq += 1
        self._pending.append(
            Record(
                self._seq,
                time.time_ns(),
                event.__struct_config__.tag,  # type: ignore[arg-type]
                event_client_order_id(event),
                _encoder.encode(event),
            )
        )
        future = self._pending_future
        if future is None:
            future = self._pending_future = loop.create_future()
            if not self._writing:
                loop.call_soon(self._flush)
        if len(self._pending) >= self.max_batch and not self._writing:
            self._flush()
        return future

    def _flush(self) -> None:
        if self._writing or not self._pending:
            return
        assert self._loop is not None and self._executor is not None
        batch, future = self._pending, self._pending_future
        self._pending, self._pending_future = [], None
        self._writing = True
        started = time.perf_counter()
        done = self._loop.run_in_executor(self._executor, self.store.write_batch, batch)
        done.add_done_callback(lambda d: self._written(d, batch, future, started))

    def _written(
        self,
        done: asyncio.Future[None],
        batch: list[Record],
        future: asyncio.Future[None] | None,
        started: float,
    ) -> None:
        self._writing = False
        assert future is not None
        error = done.exception()
        if error is not None:
            # Nothing of this batch is stored (the store is all-or-nothing) and
            # later events may depend on it, so the journal stops for good:
            # the gateway turns this into a cannot-trade condition.
            self._failed = error
            future.set_exception(JournalError(f"journal write failed: {error}"))
            if self._pending_future is not None:
                self._pending_future.set_exception(JournalError(f"journal write failed: {error}"))
                self._pending, self._pending_future = [], None
        else:
            stats = self.stats
            stats.events += len(batch)
            stats.batches += 1
            stats.largest_batch = max(stats.largest_batch, len(batch))
            stats.write_seconds += time.perf_counter() - started
            future.set_result(None)
            self._flush()
        if not self._writing and self._idle is not None:
            self._idle.set()
