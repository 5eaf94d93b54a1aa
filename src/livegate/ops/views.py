"""What a journal says, for people: orders, fills, books, alerts, diffs, release records.

`livegate orders` and the operations console read the same views. A view
tails a gateway's journal read-only into its own `OrderBook` (the one
`apply` the gateway itself replays with), so it never writes, never takes
the writer's lock, and shows exactly what a restart of the gateway would
know. `refresh` reads only what was journaled since the last call: a page
that refreshes every half second costs what changed, not the whole day.
"""

from __future__ import annotations

import statistics
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from livegate.engine.order_book import OrderBook
from livegate.journal.journal import decode_event
from livegate.journal.locate import open_reader
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


@dataclass(frozen=True)
class OrderStats:
    """Success rates and acknowledgement latency, over the whole journal."""

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
        self.book = OrderBook(on_change=self._changed)
        self.last_seq = 0
        self.releases: list[ReleaseRecorded] = []
        self._lock = threading.Lock()  # pages are served from several threads
        self._acknowledged: set[str] = set()
        self._rejected: set[str] = set()
        self._cancelled: set[str] = set()
        self._latencies: deque[int] = deque(maxlen=LATENCIES_KEPT)
        self._cancels_requested = 0
        self._cancel_rejects = 0

    def close(self) -> None:
        self._store.close()

    def refresh(self) -> int:
        """Apply what was journaled since the last refresh; how many events that was."""
        with self._lock:
            applied = 0
            for record in self._store.read(self.last_seq):
                event = decode_event(record.payload)
                self.book.apply(event)
                if isinstance(event, CancelRequested):
                    self._cancels_requested += 1
                elif isinstance(event, Received) and isinstance(event.report, CancelRejectReport):
                    self._cancel_rejects += 1
                elif isinstance(event, ReleaseRecorded):
                    self.releases.append(event)
                self.last_seq = record.seq
                applied += 1
            return applied

    def _changed(self, order: Order, fill: Fill | None) -> None:
        coid = order.client_order_id
        if order.broker_order_id is not None and coid not in self._acknowledged:
            self._acknowledged.add(coid)
            self._latencies.append(order.updated_ns - order.created_ns)
        if order.status is OrderStatus.REJECTED:
            self._rejected.add(coid)
        elif order.status is OrderStatus.CANCELLED:
            self._cancelled.add(coid)

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
                found = book.find(search, search)
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
