"""Write-ahead journal with group commit.

`append` sequences and encodes an event and returns the future of the batch
holding it; the future resolves once that batch is durable in the store.
Exactly one batch is being written at a time, on a dedicated writer thread,
while the event loop keeps filling the next one. Under load, batches grow
by themselves to whatever accumulated during the previous fsync, so
throughput is bounded by encoding, not by fsyncs; at low load each event
gets its own commit and waits only for that. No fsync is ever skipped.

A batch larger than `max_batch` is written in parts; its future resolves
when the last part is durable.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import msgspec

from livegate.journal.store import Batch, Retired, Store
from livegate.model.errors import JournalError
from livegate.model.events import JournalEvent

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
    """Group-committed, write-ahead log of msgspec events.

    `event_type` is what replay decodes: the gateway's `JournalEvent` by
    default; the paper broker keeps its own book as a log of its own events.
    """

    def __init__(
        self,
        store: Store,
        *,
        max_batch: int = 10_000,
        event_type: Any = JournalEvent,
        inline: bool = False,
    ) -> None:
        self.store = store
        # No writer thread: each append is written at once, on the caller's
        # thread, and its future is done when append returns. For stores whose
        # write costs nothing (memory, in replays and tests), where the thread's
        # wake-ups and the loop turns of waiting would be most of the time.
        self.inline = inline
        self.max_batch = max_batch
        # A store that writes under a lease (PostgreSQL) says whether we still may.
        self._fence: Callable[[], None] | None = getattr(store, "fence", None)
        self._decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(event_type)
        self.stats = JournalStats()
        self._seq = 0
        self._durable_seq = 0  # the last event stored (set by the writer thread)
        # Shared with the writer thread, under _lock: the batch being filled.
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._taken = threading.Condition(self._lock)  # the writer took what was pending
        self._pending: list[bytes] = []
        self._pending_first_seq = 0
        self._pending_future: asyncio.Future[None] | None = None
        self._closing = False
        self._last_future: asyncio.Future[None] | None = None
        self._inline_done: asyncio.Future[None] | None = None
        self._failed: BaseException | None = None
        self._started = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._writer: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------
    def open(self) -> None:
        self.store.open()
        self._seq = self._durable_seq = self.store.last_seq()

    def replay(self, after_seq: int = 0) -> Iterator[tuple[int, Any]]:
        decode = self._decoder.decode
        for record in self.store.read(after_seq):
            yield record.seq, decode(record.payload)

    def last_checkpoint(self) -> bytes | None:
        """The newest checkpoint's state (engine/book_state.py), None when there is none."""
        found = self.store.last_checkpoint()
        return found[1] if found is not None else None

    def write_checkpoint(self, seq: int, state: bytes, retired: Sequence[Retired] = ()) -> bool:
        """Store a checkpoint of the state at `seq`, now, on the caller's thread, if every
        event up to `seq` is durable; False, and nothing stored, otherwise. Raises what the
        store raises; a checkpoint not written is a slower next start, never a reason to
        stop trading."""
        if self._failed is not None or seq > self._durable_seq:
            return False
        self.store.write_checkpoint(seq, state, retired)
        return True

    def write_now(self, events: Sequence[msgspec.Struct]) -> None:
        """Append and make durable synchronously, for use with no event loop running.

        For offline tools (a paper book edited while its gateway is down);
        never while the writer thread runs.
        """
        if self._writer is not None:
            raise JournalError("write_now is for a journal that is not started")
        if events:
            first = self._seq + 1
            self._seq += len(events)
            payload = b"[" + b",".join(_encoder.encode(e) for e in events) + b"]"
            self.store.write_batch(Batch(first, len(events), payload))
            self._durable_seq = self._seq

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._closing = False
        self._started = True
        if self.inline:
            return
        # A daemon: a forgotten close() must not keep the process alive; an
        # unfinished write is one atomic statement, so nothing half-written remains.
        self._writer = threading.Thread(
            target=self._write_loop, name="livegate-journal", daemon=True
        )
        self._writer.start()

    async def drain(self) -> None:
        """Wait until everything appended so far is durable (or failed)."""
        last = self._last_future
        if last is not None and not last.done():
            await asyncio.wait([last])

    async def close(self) -> None:
        self._started = False
        if self._loop is not None:
            await self.drain()
        if self._writer is not None:
            with self._lock:
                self._closing = True
                self._wake.notify()
            self._writer.join()
            self._writer = None
        self.store.close()

    @property
    def last_seq(self) -> int:
        return self._seq

    @property
    def pending_events(self) -> int:
        """Appended, not yet durable (a gauge for /metrics)."""
        return len(self._pending)

    @property
    def idle(self) -> bool:
        """Everything appended so far is durable (or failed): nothing is in flight."""
        last = self._last_future
        return last is None or last.done()

    @property
    def failed(self) -> BaseException | None:
        return self._failed

    @property
    def writable(self) -> bool:
        """Started, not closed, not failed: an append now becomes durable."""
        return self._started and self._failed is None

    def fence(self) -> None:
        """Right before anything is sent to the broker: raise JournalError (and fail the
        journal for good) when this process may no longer write, because its store's lease
        passed to another gateway or could have expired. A no-op for other stores."""
        if self._fence is None:
            return
        try:
            self._fence()
        except JournalError as exc:
            if self._failed is None and self._loop is not None:
                self._fail(self._loop, exc)
            raise

    # -- appending -------------------------------------------------------
    def append(self, event: msgspec.Struct) -> asyncio.Future[None]:
        """Queue an event; the returned future resolves when it is durable.

        Events become durable in append order, and futures resolve in that
        order too; callers rely on that to apply events in journal order.
        """
        loop = self._loop
        if loop is None:
            raise JournalError("journal is not started")
        if self._failed is not None:
            raise JournalError(f"journal failed earlier: {self._failed}") from self._failed
        payload = _encoder.encode(event)
        if self.inline:
            return self._append_inline(loop, payload)
        lock = self._lock
        lock.acquire()  # cheaper than `with` on this path, taken for every event
        try:
            self._seq += 1
            self._pending.append(payload)
            future = self._pending_future
            if future is None:
                future = self._pending_future = self._last_future = _Durable(loop=loop)
                self._pending_first_seq = self._seq
                self._wakeup(loop)
        finally:
            lock.release()
        if self.inline:
            self._write_inline()  # durable (in memory) already: awaiting it costs no turn
        return future

    def _append_inline(
        self, loop: asyncio.AbstractEventLoop, payload: bytes
    ) -> asyncio.Future[None]:
        """Inline mode's one event: written now, on the caller's thread (there is no other),
        so no lock and no pending batch; the future is done when this returns."""
        self._seq += 1
        if self._store(loop, Batch(self._seq, 1, b"[" + payload + b"]")):
            # One done future for every inline event: durable is durable, and making a
            # future per event was a tenth of a capture's replay.
            future = self._inline_done
            if future is None or future.get_loop() is not loop:
                future = self._inline_done = _Durable(loop=loop)
                future.set_result(None)
        else:  # not stored, and the journal failed for good: this event must not apply
            future = _Durable(loop=loop)
            future.set_exception(JournalError(f"journal write failed: {self._failed}"))
        self._last_future = future
        return future

    def append_all(self, events: Sequence[msgspec.Struct]) -> asyncio.Future[None] | None:
        """Queue events as one unit: they are committed in one batch, all or none.

        `append` called in a loop is not that: the writer thread may take
        what is pending between two calls, so a crash could keep the first
        event without the second (an order's fill without its trade). The
        unit must fit in `max_batch`. None when `events` is empty.
        """
        if not events:
            return None
        if len(events) > self.max_batch:
            raise ValueError(f"{len(events)} events exceed max_batch={self.max_batch}")
        loop = self._loop
        if loop is None:
            raise JournalError("journal is not started")
        if self._failed is not None:
            raise JournalError(f"journal failed earlier: {self._failed}") from self._failed
        payloads = [_encoder.encode(event) for event in events]
        with self._lock:
            while self._pending and len(self._pending) + len(payloads) > self.max_batch:
                # It would be cut in two: wait (one fsync at most) until the writer
                # has taken what is pending, so the unit starts a batch of its own.
                self._taken.wait()  # (inline: never pending between calls)
            future = self._pending_future
            if future is None:
                future = self._pending_future = self._last_future = _Durable(loop=loop)
                self._pending_first_seq = self._seq + 1
                self._wakeup(loop)
            self._seq += len(payloads)
            self._pending.extend(payloads)
        if self.inline:
            self._write_inline()
        return future

    def _wakeup(self, loop: asyncio.AbstractEventLoop) -> None:
        """A new generation began (under _lock): have it written (inline: by the appender)."""
        if not self.inline:
            self._wake.notify()

    # -- the writer thread ------------------------------------------------
    def _write_loop(self) -> None:
        """Write whatever accumulated, as soon as the previous batch is durable.

        The event loop never sits between two batches: the writer takes the
        next one itself, so a busy loop delays only the completions it runs.
        """
        loop = self._loop
        assert loop is not None
        while True:
            with self._lock:
                while not self._pending and not self._closing:
                    self._wake.wait()
                if not self._pending:
                    return
                taken = self._take()
            if not self._write(loop, *taken, loop.call_soon_threadsafe):
                return

    def _take(self) -> tuple[Batch, asyncio.Future[None]]:
        """The next batch of what is pending, and its generation's future (under _lock)."""
        rows = self._pending[: self.max_batch]
        del self._pending[: self.max_batch]
        self._taken.notify_all()
        first_seq = self._pending_first_seq
        self._pending_first_seq += len(rows)
        future = self._pending_future
        if not self._pending:
            self._pending_future = None
        assert future is not None
        return Batch(first_seq, len(rows), b"[" + b",".join(rows) + b"]"), future

    def _write(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: Batch,
        future: asyncio.Future[None],
        call: Callable[..., object],
    ) -> bool:
        """Store one batch; resolve its future once its whole generation is stored."""
        if not self._store(loop, batch):
            return False
        if future is not self._pending_future:  # the whole generation is written
            call(_resolve, future)
        return True

    def _store(self, loop: asyncio.AbstractEventLoop, batch: Batch) -> bool:
        """Write one batch and count it; False (the journal failed for good) if it failed."""
        started = time.perf_counter()
        try:
            self.store.write_batch(batch)
        except BaseException as exc:  # nothing of it is stored: fail it and all after
            self._fail(loop, exc)
            return False
        self._durable_seq = batch.first_seq + batch.size - 1  # batches are stored in order
        stats = self.stats
        stats.events += batch.size
        stats.batches += 1
        stats.largest_batch = max(stats.largest_batch, batch.size)
        stats.write_seconds += time.perf_counter() - started
        return True

    def _write_inline(self) -> None:
        """Inline mode: what was just appended, written now."""
        loop = self._loop
        assert loop is not None
        while True:
            with self._lock:
                if not self._pending:
                    return
                taken = self._take()
            if not self._write(loop, *taken, _call_now):
                return

    def _fail(self, loop: asyncio.AbstractEventLoop, exc: BaseException) -> None:
        # Later events may depend on the lost ones, so the journal stops for
        # good; the gateway turns this into a cannot-trade condition.
        self._failed = exc
        with self._lock:
            futures = {f for f in (self._pending_future, self._last_future) if f is not None}
            self._pending = []
            self._pending_future = None
        error = JournalError(f"journal write failed: {exc}")
        for future in futures:
            loop.call_soon_threadsafe(_reject, future, error)


class _Durable(asyncio.Future[None]):
    """A batch's future: resolved by the writer, never cancelled by a waiter.

    Every event of a batch shares it. A waiter that is cancelled (a caller's
    `wait_for`, a strategy task cancelled at shutdown) must not cancel it for
    the others: the batch is durable all the same and must be applied. With
    cancel() refused, asyncio delivers the waiter's CancelledError once the
    batch is durable, and nobody else's.
    """

    def cancel(self, msg: object = None) -> bool:
        return False


def _call_now(function: Callable[..., object], *args: object) -> None:
    function(*args)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _reject(future: asyncio.Future[None], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
