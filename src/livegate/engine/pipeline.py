"""Journal, apply, tell: the one path every change takes.

Invariants guarded here: write-ahead (an event changes nothing until the
journal holds it: no state change or callback for a report that is not
durable) and journal order (events are applied in the order they were
journaled, live and on replay, by the same `OrderBook.apply`; a fill is
counted once because the book dedups it there). A caller that gives up
never takes a durable batch with it: the journal's futures refuse cancel.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import TypeVar

from livegate.engine import book_state
from livegate.engine.anomalies import REFUSED_REPORTS
from livegate.engine.archive import Archive
from livegate.engine.order_book import OrderBook
from livegate.engine.parts import Parts
from livegate.engine.retirement import retire
from livegate.model.enums import OrderStatus
from livegate.model.events import Anomalies as AnomalyBatch
from livegate.model.events import Anomaly, JournalEvent, Received
from livegate.model.orders import Order, OrderIntent, OrderSnapshot
from livegate.model.reports import BrokerReport, ExecutionReport, Fill

log = logging.getLogger("livegate.gateway")
T = TypeVar("T")

OrderCallback = Callable[[OrderSnapshot], object]
TradeCallback = Callable[[Fill], object]
ExecCallback = Callable[[ExecutionReport], object]


class Pipeline:
    def __init__(self, parts: Parts) -> None:
        self.parts = parts
        self.book = OrderBook(parts.instruments)
        self.anomalies: Counter[str] = Counter()
        # (monotonic time, kind, client id, detail) of the latest reports refused.
        self.refused_reports: deque[tuple[float, str, str | None, str]] = deque(maxlen=100)
        self.callback_errors = 0
        self.order_cbs: list[OrderCallback] = []
        self.trade_cbs: list[TradeCallback] = []
        self.exec_cbs: list[ExecCallback] = []
        self.control_cbs: list[Callable[[JournalEvent], object]] = []
        # (durable future, event, its journal seq), appended, not yet applied.
        self._inbox: deque[tuple[asyncio.Future[None], JournalEvent, int]] = deque()
        self._last_batch: asyncio.Future[None] | None = None
        self._drain_soon = False  # a drain is scheduled for the loop's next turn
        self._checkpoint_soon = False  # `checkpoint_every` passed: one is scheduled
        self._checkpoint_tried = 0  # the seq of the latest checkpoint tried, written or not
        self._anomalies: list[Anomaly] = []  # found while applying, journaled together
        self._acknowledged: set[str] = set()  # for the round-trip metric only
        self._counted_rejects: set[str] = set()
        self.checkpoint_seq = 0  # the journal position of the latest checkpoint
        # How the last start rebuilt the book: (checkpoint seq, 0 if none; events applied).
        self.rebuilt_from = (0, 0)
        self.venue_mark = ""  # "paper" after a fallback: marks every report journaled

    def rebuild(self) -> None:
        """The book from the latest checkpoint and the events after it (the whole journal
        when there is none); no callbacks: the strategy saw these."""
        journal = self.parts.journal
        loaded = book_state.load(
            journal.last_checkpoint(), journal.last_seq, self.parts.instruments
        )
        book = self.book = loaded.book
        book.archive = book.archive or Archive()
        book.archive.connect(journal.store.retired_order)
        replayed = 0
        for _, event in journal.replay(loaded.seq):
            book.apply(event)
            replayed += 1
        self.checkpoint_seq = loaded.seq
        self.rebuilt_from = (loaded.seq, replayed)
        book.on_change = self._on_change
        book.on_anomaly = self.anomaly
        book.on_control = self._on_control

    async def checkpoint_round(self) -> None:
        await self.checkpoint()

    async def checkpoint(self, force: bool = False) -> int | None:
        """Store the book as a checkpoint, if `checkpoint_every` events passed since the last
        one (or `force`); the seq it covers, None when it wrote none.

        Taken at the position the book has applied (every event up to it durable),
        whatever is still in flight after it, so a busy gateway checkpoints too.
        """
        journal = self.parts.journal
        if not force:
            return self._checkpoint_if_due()
        if not journal.writable:
            return None
        for _ in range(5):  # a stop or the day's end: wait for what is in flight, if it comes
            await self.settle()
            if not self._inbox and journal.idle:
                break
        seq = self._applied_seq()
        if seq <= self.checkpoint_seq:
            return None
        return self._checkpoint_now(seq)

    def _checkpoint_if_due(self) -> int | None:
        """Checkpoint if `checkpoint_every` events passed since the latest one tried.

        Called from the drain that crosses the mark, not only from the resolver's
        round: a retiring checkpoint pauses the loop in proportion to what leaves,
        and at thousands of orders a second a round's worth was half a second. A
        write that failed is tried again `checkpoint_every` events later, not at
        every drain."""
        self._checkpoint_soon = False
        if not self._checkpoint_due() or not self.parts.journal.writable:
            return None
        seq = self._applied_seq()
        if seq <= max(self.checkpoint_seq, self._checkpoint_tried):
            return None
        self._checkpoint_tried = seq
        return self._checkpoint_now(seq)

    def _checkpoint_due(self) -> bool:
        every = self.parts.config.checkpoint_every
        since = max(self.checkpoint_seq, self._checkpoint_tried)
        return bool(every) and self.parts.journal.last_seq - since >= every

    def _applied_seq(self) -> int:
        """The journal position the book is at: every event up to it applied (so durable),
        none after it (an anomaly note appended in between changes nothing)."""
        inbox = self._inbox
        return inbox[0][2] - 1 if inbox else self.parts.journal.last_seq

    def _checkpoint_now(self, seq: int) -> int | None:
        """On the loop, with nothing in between: retire, encode, write (or put back)."""
        config, book = self.parts.config, self.book
        retirement = None
        if config.retain_hours:  # (retire does nothing for a book without an archive)
            retain_ns = int(config.retain_hours * 3600e9)
            retirement = retire(book, self.parts.clock.now_ns(), retain_ns)
        # Orders registered for idempotency whose intents wait in the inbox are not the
        # book's yet as far as `seq` goes: the tail after it brings them.
        pending = {e.client_order_id for _, e, _ in self._inbox if type(e) is OrderIntent}
        payload = book_state.encode(book_state.capture(book, seq, pending))
        try:
            rows = retirement.rows() if retirement is not None else []
            written = self.parts.journal.write_checkpoint(seq, payload, rows)
        except Exception as exc:  # a slower next start, never a reason to stop trading
            log.warning("checkpoint at seq %s not written: %r", seq, exc)
            written = False
        if not written:
            if retirement is not None:
                retirement.revert(book)
            return None
        self.checkpoint_seq = seq
        if retirement is not None and retirement.retired:
            gone = {r.order.client_order_id for r in retirement.retired}
            self._acknowledged -= gone
            self._counted_rejects -= gone
            if self.parts.order_log is not None:
                self.parts.order_log.forget(gone)
        return seq

    # -- the write-ahead path ----------------------------------------------------
    def ingest(self, report: BrokerReport, source: str) -> asyncio.Future[None]:
        metrics = self.parts.metrics
        if metrics is not None and report.ts_ns and source == "stream":
            # The broker's stamp is wall time: its latency is measured on the wall.
            metrics.report_latency.observe(time.time_ns() - report.ts_ns)
        now = self.parts.clock.now_ns()
        return self.record_nowait(Received(report, now, source, self.venue_mark))

    def received(self, report: BrokerReport, source: str, now: int = 0) -> Received:
        """A report as journaled: marked "paper" after a fallback, wherever it came from."""
        return Received(report, now or self.parts.clock.now_ns(), source, self.venue_mark)

    def record_nowait(self, event: JournalEvent) -> asyncio.Future[None]:
        """Journal an event; it is applied once durable, in journal order."""
        return self._enqueue(event, True)

    def _enqueue(self, event: JournalEvent, drain_soon: bool) -> asyncio.Future[None]:
        journal = self.parts.journal
        future = journal.append(event)
        self._inbox.append((future, event, journal._seq))  # its seq (the property costs more)
        if future.done():
            if drain_soon and not self._drain_soon:
                # Durable already (an inline journal): one drain for all that the
                # loop's next turn finds, not a callback each.
                self._drain_soon = True
                future.get_loop().call_soon(self.drain_inbox)
        elif future is not self._last_batch:
            self._last_batch = future
            future.add_done_callback(self.drain_inbox)
        return future

    async def record(self, event: JournalEvent) -> None:
        """Journal an event and return once it is durable and applied."""
        future = self._enqueue(event, False)  # durable already: drained below, not later too
        await future
        self.drain_inbox()

    async def settle(self) -> None:
        """Everything journaled so far is durable and applied."""
        await self.parts.journal.drain()
        self.drain_inbox()

    @property
    def applied(self) -> bool:
        """Every event journaled so far is applied (none waits in the inbox)."""
        return not self._inbox

    def drain_inbox(self, _: object = None) -> None:
        self._drain_soon = False
        inbox, apply, metrics = self._inbox, self.book.apply, self.parts.metrics
        checked: asyncio.Future[None] | None = None  # events of one batch share a future
        while inbox:
            future, event, _ = inbox[0]
            if future is not checked:
                if not future.done():
                    break
                if future.cancelled() or future.exception() is not None:
                    # Not durable: must not be applied. The journal is now failed
                    # and the gateway refuses new orders (see Gateway._require_running).
                    inbox.popleft()
                    continue
                checked = future
            inbox.popleft()
            apply(event)
            if metrics is not None and type(event) is Received:
                metrics.report_handling.observe(self._real_ns_since(event.received_ns))
        if self._anomalies:
            self._note_anomalies()
        # (`checked`: a batch became durable, so this runs in a loop's callback.)
        if checked is not None and not self._checkpoint_soon and self._checkpoint_due():
            self._checkpoint_soon = True
            checked.get_loop().call_soon(self._checkpoint_if_due)

    def _real_ns_since(self, clock_ns: int) -> int:
        """Wall nanoseconds since a journal stamp: latencies stay real under a fast clock."""
        clock = self.parts.clock
        return int(clock.real_seconds(clock.now_ns() - clock_ns) * 1e9)

    # -- telling the strategy ----------------------------------------------------
    def _on_change(self, order: Order, fill: Fill | None) -> None:
        parts = self.parts
        parts.risk.track(order)
        if fill is not None and parts.risk.rollout is not None:
            parts.risk.filled(fill, self.parts.clock.now_ns())
        if parts.metrics is not None:
            self._measure(order, fill)
        if parts.order_log is not None:
            parts.order_log.change(order, fill)
        self._dispatch(order, fill)

    def _on_control(self, event: JournalEvent) -> None:
        for callback in self.control_cbs:
            self._call(callback, event)

    def _measure(self, order: Order, fill: Fill | None) -> None:
        m = self.parts.metrics
        assert m is not None
        coid = order.client_order_id
        if fill is not None:
            m.fills.value += 1
            if self.venue_mark:
                m.paper_fills.value += 1
        if order.broker_order_id is not None and coid not in self._acknowledged:
            self._acknowledged.add(coid)
            m.orders_accepted.value += 1
            # A negative value (the clock stepped back) lands in the first bucket.
            m.order_round_trip.observe(self._real_ns_since(order.created_ns))
        if order.status is OrderStatus.REJECTED and coid not in self._counted_rejects:
            self._counted_rejects.add(coid)
            reason = order.reject_reason.value if order.reject_reason else "UNKNOWN"
            m.orders_rejected.labels(reason).inc()

    def _dispatch(self, order: Order, fill: Fill | None) -> None:
        if self.order_cbs:
            snapshot = order.snapshot()
            for order_cb in self.order_cbs:
                self._call(order_cb, snapshot)
        if fill is not None:
            for trade_cb in self.trade_cbs:
                self._call(trade_cb, fill)
        if self.exec_cbs:
            report = ExecutionReport(
                order.client_order_id,
                order.broker_order_id,
                order.symbol,
                order.side,
                order.status,
                order.quantity,
                order.filled_qty,
                order.leaves_qty,
                order.avg_fill_price,
                fill.quantity if fill else None,
                fill.price if fill else None,
                fill.trade_id if fill else None,
                order.reject_reason,
                order.reject_text,
                order.updated_ns,
            )
            for exec_cb in self.exec_cbs:
                self._call(exec_cb, report)

    def _call(self, callback: Callable[[T], object], value: T) -> None:
        metrics = self.parts.metrics
        started = time.perf_counter_ns() if metrics is not None else 0
        try:
            callback(value)
        except Exception:
            # A strategy's bug must not stop report ingest for every other order.
            self.callback_errors += 1
            log.exception("strategy callback %r failed", callback)
        if metrics is not None:
            metrics.callback_duration.observe(time.perf_counter_ns() - started)

    async def observe_tick(self) -> None:
        """Observability work kept off the order path: order log lines are written
        and latency observations bucketed in batches (see observe/)."""
        parts = self.parts
        interval = parts.order_log.flush_interval if parts.order_log is not None else 0.2
        while True:
            await asyncio.sleep(interval)
            if parts.order_log is not None:
                parts.order_log.flush()
            if parts.metrics is not None:
                parts.metrics.fold()

    # -- anomalies ------------------------------------------------------------------
    def anomaly(self, kind: str, client_order_id: str | None, detail: str) -> None:
        self.anomalies[kind] += 1
        if kind in REFUSED_REPORTS:
            # Something the broker said is not in our books: say so now, not only
            # in the journal (the alert rule `refused-reports` reads this).
            log.warning("%s for %s: %s", kind, client_order_id, detail)
            self.refused_reports.append((time.monotonic(), kind, client_order_id, detail))
        if self.parts.metrics is not None:
            self.parts.metrics.anomalies.labels(kind).inc()
        now = self.parts.clock.now_ns()
        self._anomalies.append(Anomaly(kind, client_order_id, detail, now))

    def _note_anomalies(self) -> None:
        """Journal the anomalies of what was just applied, as one record."""
        journal = self.parts.journal
        if self._anomalies and journal.failed is None:
            items, self._anomalies = tuple(self._anomalies), []
            journal.append(AnomalyBatch(items)).add_done_callback(_retrieve)


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()
