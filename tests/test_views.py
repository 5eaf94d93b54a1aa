"""The operator's view of a journal (`livegate orders`, the console) starts where a
restarted gateway starts: the newest checkpoint and what follows, not every day."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest

from livegate.engine.order_book import OrderBook
from livegate.journal.sqlite import SQLiteStore
from livegate.model import OrderStatus
from livegate.ops import views
from livegate.ops.views import JournalView

from .helpers import filled_orders

D = Decimal
RETIRE_AT_ONCE = 1e-9  # hours: finished orders leave memory at the next checkpoint (0: never)


def _full_replay(journal: Path) -> OrderBook:
    store = SQLiteStore(journal, read_only=True)
    store.open()
    book = OrderBook()
    for record in store.read():
        from livegate.journal.journal import decode_event

        book.apply(decode_event(record.payload))
    store.close()
    return book


def test_a_view_reads_the_checkpoint_and_the_tail_and_holds_what_the_gateway_holds(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "journal.sqlite"
    asyncio.run(filled_orders(journal, ["a0", "a1", "a2"], stop=True, retain_hours=RETIRE_AT_ONCE))
    asyncio.run(filled_orders(journal, ["b0", "b1"], stop=False, retain_hours=RETIRE_AT_ONCE))
    view = JournalView(tmp_path)
    try:
        assert view.base_seq > 0  # the first stop's checkpoint
        read = view.refresh()
        full = _full_replay(journal)
        assert read == view.last_seq - view.base_seq < view.last_seq
        # The first day's orders were retired at the stop: not held, still found by id.
        assert set(view.book.orders) == {"b0", "b1"} and len(full.orders) == 5
        assert {o.client_order_id: o.status for o in view.book.orders.values()} == {
            c: full.orders[c].status for c in ("b0", "b1")
        }
        (found,) = view.orders(search="a1")
        assert found.status is OrderStatus.FILLED and found.broker_order_id == "B-a1"
        (by_broker_id,) = view.orders(search="B-a2")
        assert by_broker_id.client_order_id == "a2"
        assert view.positions() and view.positions()[0].quantity == D(50)  # all five fills
        stats = view.stats()
        assert (stats.orders, stats.acknowledged, stats.rejected) == (2, 2, 0)
    finally:
        view.close()


def test_a_long_running_view_moves_on_to_the_gateways_newer_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = tmp_path / "journal.sqlite"
    asyncio.run(
        filled_orders(journal, ["a0"], stop=False, retain_hours=RETIRE_AT_ONCE)
    )  # no checkpoint yet
    view = JournalView(tmp_path)
    try:
        assert view.base_seq == 0
        view.refresh()
        assert set(view.book.orders) == {"a0"}
        asyncio.run(
            filled_orders(journal, ["b0"], stop=True, retain_hours=RETIRE_AT_ONCE)
        )  # retires both
        monkeypatch.setattr(views, "REBASE_EVERY_S", 0.0)
        view.refresh()  # reads the tail first: the rebase waits for the view to be there
        view.refresh()
        assert view.base_seq > 0 and not view.book.orders
        assert view.orders(search="a0") and view.orders(search="b0")
        assert view.positions()[0].quantity == D(20)
    finally:
        view.close()
