"""What a journal says, for people: orders, fills, books, alerts, diffs, release records.

`livegate orders` and the operations console read the same views. A view
tails a gateway's journal read-only into its own `OrderBook` (the one
`apply` the gateway itself replays with), so it never writes, never takes
the writer's lock, and shows exactly what a restart of the gateway would
know. `refresh` reads only what was journaled since the last call: a page
that refreshes every half second costs what changed, not the whole day.

It starts where a restarted gateway starts: the newest checkpoint and the
events after it (decision 0011), not every event of every day, so opening a
console on months of history costs what the gateway holds (open orders, and
those finished within `retain_hours`), and so does its memory: once an hour
it moves on to a newer checkpoint, letting go of the orders the gateway
retired. An order that left is still found by id (the store's archive of
retired orders) and by `livegate trace`.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from livegate.engine import book_state
from livegate.engine.archive import decode_retired
from livegate.engine.order_book import OrderBook
from livegate.journal.journal import decode_event
from livegate.journal.locate import open_reader
from livegate.journal.sqlite import events_of_kinds
from livegate.model.account import CashBalance, Position
from livegate.model.diffs import Diff
from livegate.model.enums import OrderStatus
from livegate.model.events import (
    AlertChanged,
    CancelRequested,
    Received,
    ReleaseRecorded,
)
from livegate.model.orders import Order, OrderSnapshot
from livegate.model.reports import CancelRejectReport, Fill
from livegate.observe.alerts import open_alerts

JOURNAL = "journal.sqlite"
LATENCIES_KEPT = 1000  # acknowledgement latencies behind the overview's figures
REBASE_EVERY_S = 3600.0  # how often a view looks for a newer checkpoint to start from


@dataclass(frozen=True)
class OrderStats:
    """Success rates over the orders the view holds (open, and finished within the
    gateway's retention); cancel refusals and acknowledgement latency over what the view
    has read since it started (a checkpoint keeps neither)."""

    orders: int
    open: int
    acknowledged: int
    rejected: int
    cancels_requested: int
    cancelled: int
    cancel_rejects: int
    ack_ms_median: float | None
    ack_ms_p99: float | None

    @property
    def place_success(self) -> float | None:
        decided = self.acknowledged + self.rejected
        return self.acknowledged / decided if decided else None

    @property
    def cancel_success(self) -> float | None:
        decided = self.cancelled + self.cancel_rejects
        return self.cancelled / decided if decided else None


class JournalView:
    """A read-only, incrementally refreshed projection of one data folder's journal."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.journal = directory / JOURNAL
        self._store = open_reader(self.journal)  # JournalError when it is not a journal
        self._lock = threading.Lock()  # pages are served from several threads
        self._latencies: deque[int] = deque(maxlen=LATENCIES_KEPT)
        self._cancels_requested = 0
        self._cancel_rejects = 0
        try:
            # Every release ever recorded, for the releases page: few, and a checkpoint
            # keeps only the current one.
            self.releases = [
                e
                for e in events_of_kinds(self.journal, "release")
                if isinstance(e, ReleaseRecorded)
            ]
            self._start_from_checkpoint()
        except BaseException:
            self._store.close()
            raise

    def _start_from_checkpoint(self) -> None:
        """Begin (again) at the newest checkpoint, as a restarting gateway does."""
        found = self._store.last_checkpoint()
        loaded = book_state.load(found[1] if found else None, self._store.last_seq(), None)
        self.book: OrderBook = loaded.book
        self.book.on_change = self._changed
        self.last_seq = self.base_seq = loaded.seq
        self._rebased_at = time.monotonic()
        self._acknowledged: set[str] = set()
        self._rejected: set[str] = set()
        self._cancelled: set[str] = set()
        for order in self.book.orders.values():
            self._count(order)

    def close(self) -> None:
        self._store.close()

    def refresh(self) -> int:
        """Apply what was journaled since the last refresh; how many events that was."""
        with self._lock:
            if time.monotonic() - self._rebased_at > REBASE_EVERY_S:
                self._rebase()
            applied = 0
            for record in self._store.read(self.last_seq):
                event = decode_event(record.payload)
                self.book.apply(event)
                if isinstance(event, CancelRequested):
                    self._cancels_requested += 1
                elif isinstance(event, Received) and isinstance(event.report, CancelRejectReport):
                    self._cancel_rejects += 1
                elif isinstance(event, ReleaseRecorded) and event not in self.releases:
                    self.releases.append(event)  # (unless read at the start already)
                self.last_seq = record.seq
                applied += 1
            return applied

    def _rebase(self) -> None:
        """Move on to a newer checkpoint, if the gateway wrote one: the orders it retired
        leave this view's memory too."""
        self._rebased_at = time.monotonic()
        found = self._store.last_checkpoint()
        if found is not None and found[0] > self.base_seq and found[0] <= self.last_seq:
            self._start_from_checkpoint()

    def _count(self, order: Order) -> None:
        coid = order.client_order_id
        if order.broker_order_id is not None:
            self._acknowledged.add(coid)
        if order.status is OrderStatus.REJECTED:
            self._rejected.add(coid)
        elif order.status is OrderStatus.CANCELLED:
            self._cancelled.add(coid)

    def _changed(self, order: Order, fill: Fill | None) -> None:
        if order.broker_order_id is not None and order.client_order_id not in self._acknowledged:
            self._latencies.append(order.updated_ns - order.created_ns)
        self._count(order)

    # -- what pages and commands show -------------------------------------------------
    def orders(
        self,
        open_only: bool = False,
        symbol: str = "",
        status: str = "",
        search: str = "",
        limit: int = 200,
    ) -> list[OrderSnapshot]:
        """Newest first: open orders (or all), narrowed by symbol, status and an id."""
        with self._lock:
            book = self.book
            if search:
                found = book.find(search, search) or self._retired(search)
                candidates: list[Order] = [found] if found is not None else []
            else:
                candidates = list(reversed(book.orders.values()))
            shown = []
            for order in candidates:
                if open_only and not order.status.is_open:
                    continue
                if symbol and order.symbol != symbol:
                    continue
                if status and order.status.value != status:
                    continue
                shown.append(order.snapshot())
                if len(shown) >= limit:
                    break
            return shown

    def _retired(self, search: str) -> Order | None:
        """An order the gateway retired from memory, by client or broker id."""
        row = self._store.retired_order(search, search)
        return decode_retired(row).order if row is not None else None

    def fills(self, limit: int = 200) -> list[Fill]:
        with self._lock:
            return list(reversed(self.book.fills[-limit:]))

    def positions(self) -> list[Position]:
        with self._lock:
            return [p for p in self.book.ledger.positions.values() if p.quantity != 0]

    def cash(self) -> CashBalance:
        with self._lock:
            return self.book.ledger.balance(self.book.reserved_cash())

    def diffs(self, open_only: bool = False) -> list[Diff]:
        with self._lock:
            diffs = self.book.open_diffs() if open_only else list(self.book.diffs.values())
            return list(reversed(diffs))

    def open_alerts(self) -> dict[str, AlertChanged]:
        with self._lock:
            return open_alerts(self.book.alerts)

    def alert_history(self, limit: int = 50) -> list[AlertChanged]:
        with self._lock:
            return list(reversed(self.book.alerts[-limit:]))

    def symbols(self) -> list[str]:
        with self._lock:
            return sorted({o.symbol for o in self.book.orders.values()})

    def stats(self) -> OrderStats:
        with self._lock:
            book = self.book
            open_count = sum(1 for _ in book.open_orders())
            latencies = sorted(self._latencies)
            return OrderStats(
                orders=len(book.orders),
                open=open_count,
                acknowledged=len(self._acknowledged),
                rejected=len(self._rejected),
                cancels_requested=self._cancels_requested,
                cancelled=len(self._cancelled),
                cancel_rejects=self._cancel_rejects,
                ack_ms_median=statistics.median(latencies) / 1e6 if latencies else None,
                ack_ms_p99=latencies[int(len(latencies) * 0.99)] / 1e6 if latencies else None,
            )
