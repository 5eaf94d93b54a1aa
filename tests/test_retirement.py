"""Finished orders out of memory: state, dedup and idempotency stay exact.

A book that retires orders at checkpoints (random cut-offs, restarts from the
checkpoint's bytes in between) holds, in memory and archive together, exactly
what a book that never retired anything holds; a retired order's id is still
refused, its fills still counted once, and a late fill for it still booked.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from livegate.engine import book_state
from livegate.engine.archive import Archive, Bloom, BloomState, decode_retired
from livegate.engine.config import GatewayConfig
from livegate.engine.order_book import OrderBook
from livegate.engine.retirement import retire
from livegate.journal.memory import MemoryStore
from livegate.journal.sqlite import SQLiteStore
from livegate.model import (
    AccountSnapshot,
    OrderReport,
    OrderRequest,
    OrderStatus,
    Side,
    TradeReport,
)
from livegate.model.clock import Clock as RealClock
from livegate.model.errors import DuplicateClientOrderIdError
from livegate.model.events import JournalEvent, Received
from livegate.model.orders import Order

from .helpers import INSTRUMENTS, scripted_gateway, settle
from .test_checkpoints import journals

D = Decimal
S = OrderStatus


def _logical(book: OrderBook, store: MemoryStore | None = None) -> dict[str, object]:
    """What the book knows, wherever it keeps it: memory first, then the archive."""
    orders: dict[str, Order] = {}
    keys = set(book.fill_keys)
    if store is not None:
        for row in store.retired.values():
            retired = decode_retired(row.state)
            if row.client_order_id not in book.orders:
                orders[row.client_order_id] = retired.order
                keys.update(retired.fill_keys)
    orders.update(book.orders)
    state = book_state.capture(book, 1)
    return {
        "orders": {c: book_state.encode(o) for c, o in sorted(orders.items())},  # type: ignore[arg-type]
        "fill_keys": sorted(keys),
        "positions": sorted(
            (p.symbol, p.quantity, p.avg_price, p.realized_pnl)
            for p in book.ledger.positions.values()
        ),
        "cash": (book.ledger.cash, book.ledger.fees_paid),
        "open": [o.client_order_id for o in book.open_orders()],
        "attention": sorted(o.client_order_id for o in book.needing_attention()),
        "rest": book_state.encode(
            book_state.BookState(
                **{
                    **{f: getattr(state, f) for f in state.__struct_fields__},
                    "orders": [],
                    "by_broker_id": {},
                    "fills": [],
                    "fill_keys": [],
                    "maybe_open": [],
                    "attention": [],
                    "ledger": state.ledger,
                    "anchor": None,
                    "retired": None,
                    "release": state.release,
                }
            )
        ).replace(b'"paper_orders":[]', b""),
    }


def _restart(book: OrderBook, store: MemoryStore, now_ns: int) -> OrderBook:
    """A checkpoint at `now_ns` that retires what is old enough, then a start from it."""
    retirement = retire(book, now_ns, retain_ns=1)
    state = book_state.encode(book_state.capture(book, 1))
    store.write_checkpoint(1, state, retirement.rows())
    loaded = book_state.load(state, 1, INSTRUMENTS).book
    loaded.archive = loaded.archive or Archive()
    loaded.archive.connect(store.retired_order)
    return loaded


@st.composite
def timed_journals(draw: st.DrawFn) -> list[JournalEvent]:
    """A day's journal whose fills carry the broker's time, out of order at times, and
    every report delivered again at the end (after the orders may have left memory)."""
    events = draw(journals())
    timed: list[JournalEvent] = []
    for event in events:
        if isinstance(event, Received) and isinstance(event.report, TradeReport):
            at = draw(st.integers(1, 2 * len(events)))
            event = msgspec.structs.replace(
                event, report=msgspec.structs.replace(event.report, ts_ns=at)
            )
        timed.append(event)
    again = [e for e in timed if isinstance(e, Received)]
    return timed + again


@settings(max_examples=300, deadline=None)
@given(events=timed_journals(), data=st.data())
def test_retiring_at_checkpoints_keeps_exactly_the_state_of_a_book_that_never_did(
    events: list[JournalEvent], data: st.DataObject
) -> None:
    full = OrderBook(INSTRUMENTS)
    for event in events:
        full.apply(event)
    store = MemoryStore()
    book = OrderBook(INSTRUMENTS)
    book.archive = Archive()
    book.archive.connect(store.retired_order)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(events)), min_size=1, max_size=4)))
    position = 0
    for cut in [*cuts, len(events)]:
        for event in events[position:cut]:
            book.apply(event)
        position = cut
        # Finished orders touched before `now` leave, and fills older than it fold.
        now = data.draw(st.integers(0, 3 * len(events)))
        book = _restart(book, store, now_ns=now)
    assert _logical(book, store) == _logical(full)


# -- the gateway: retired orders are refused, counted once, booked when late ----------


class Clock(RealClock):
    """The gateway's clock, moved by the test (retention is a day and more)."""

    def __init__(self) -> None:
        self.ns = 1_000_000_000_000

    def now_ns(self) -> int:
        return self.ns


async def _trade_day(tmp_path: Path) -> None:
    clock = Clock()
    config = GatewayConfig(heartbeat_interval=None, retain_hours=1.0)

    def gateway_on(store: SQLiteStore):  # type: ignore[no-untyped-def]
        gateway, broker = scripted_gateway(store, config)
        gateway.parts.clock = clock  # type: ignore[assignment]
        return gateway, broker

    gateway, broker = gateway_on(SQLiteStore(tmp_path / "journal.sqlite"))
    await gateway.start()

    async def order(coid: str, fill: int, end: S, trade: str) -> None:
        await gateway.submit_order(
            OrderRequest(symbol="AAPL", side="BUY", quantity=10, price="20", client_order_id=coid)
        )
        boid = "B-" + coid
        if fill:
            broker.push(TradeReport(D(fill), D(20), coid, boid, trade, "AAPL", Side.BUY))
        broker.push(OrderReport(end, coid, boid, cum_qty=D(fill)))
        await settle(gateway)

    await order("filled", 10, S.FILLED, "T1")
    await order("cancelled", 4, S.CANCELLED, "T2")
    position = gateway.positions()[0].quantity
    clock.ns += 2 * 3600 * 10**9  # two hours on: both are past the hour kept
    await order("today", 10, S.FILLED, "T3")
    assert await gateway.checkpoint() is not None
    assert set(gateway.book.orders) == {"today"}, "finished and old: out of memory"
    assert gateway.order("filled").status is S.FILLED  # still answered, from the archive

    # The id of a finished order stays refused, whether or not it is in memory.
    with pytest.raises(DuplicateClientOrderIdError):
        await gateway.submit_order(
            OrderRequest(
                symbol="AAPL", side="BUY", quantity=1, price="20", client_order_id="filled"
            )
        )
    # A duplicate of a retired order's fill is refused; a late real fill is booked once.
    broker.push(TradeReport(D(10), D(20), "filled", "B-filled", "T1", "AAPL", Side.BUY))
    broker.push(TradeReport(D(3), D(20), None, "B-cancelled", "T2b", "AAPL", Side.BUY))
    await settle(gateway)
    assert gateway.anomalies["DUPLICATE_FILL"] == 1
    assert gateway.order("cancelled").filled_qty == 7
    assert gateway.positions()[0].quantity == position + 10 + 3
    await gateway.stop()

    # A restart starts from the stop's checkpoint, with the archive behind it.
    gateway, broker = gateway_on(SQLiteStore(tmp_path / "journal.sqlite"))
    await gateway.start()
    assert gateway.order("cancelled").filled_qty == 7
    assert gateway.positions()[0].quantity == position + 13
    with pytest.raises(DuplicateClientOrderIdError):
        await gateway.submit_order(
            OrderRequest(
                symbol="AAPL", side="BUY", quantity=1, price="20", client_order_id="filled"
            )
        )
    broker.push(TradeReport(D(10), D(20), "filled", "B-filled", "T1", "AAPL", Side.BUY))
    await settle(gateway)
    assert gateway.positions()[0].quantity == position + 13
    full = OrderBook(INSTRUMENTS)
    for _, event in gateway.journal.replay():
        full.apply(event)
    assert full.ledger.positions == gateway.book.ledger.positions
    assert full.ledger.cash == gateway.book.ledger.cash
    assert {c: o.filled_qty for c, o in full.orders.items()} == {
        c: gateway.order(c).filled_qty for c in full.orders
    }
    await gateway.stop()


def test_retired_orders_are_refused_counted_once_and_booked_when_late(tmp_path: Path) -> None:
    asyncio.run(_trade_day(tmp_path))


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 5))
def test_the_archive_filter_grows_and_never_forgets(rounds: int) -> None:
    store = MemoryStore()
    archive = Archive()
    archive.bloom = type(archive.bloom)(capacity=8)
    archive.connect(store.retired_order)
    book = OrderBook(INSTRUMENTS)
    book.archive = archive
    ids = []
    for r in range(rounds):
        for n in range(10):
            coid = f"o{r}-{n}"
            ids.append(coid)
            order = Order(coid, "a", "AAPL", Side.BUY, "LIMIT", D(1), D(1), "DAY", 1, 1)  # type: ignore[arg-type]
            order.status = S.CANCELLED
            book.orders[coid] = order
        retirement = retire(book, 100, 1)
        store.write_checkpoint(r + 1, b"{}", retirement.rows())
    assert book.archive.bloom.capacity > 8 and book.archive.filled  # it grew by layers
    assert all(book.lookup(coid) is not None for coid in ids)
    assert book.lookup("never") is None
    # A restart from the checkpoint's filter still finds every retired id.
    restarted = OrderBook(INSTRUMENTS)
    saved = msgspec.json.encode(book.archive.state())
    restarted.archive = Archive.of(msgspec.json.decode(saved, type=BloomState))
    restarted.archive.connect(store.retired_order)
    assert len(restarted.archive.filled) == len(book.archive.filled)
    assert all(restarted.lookup(coid) is not None for coid in ids)
    assert restarted.lookup("never") is None


def test_a_checkpoint_filter_of_one_layer_still_reads() -> None:
    """Checkpoints written before the filter had layers carry no `filled` field."""
    bloom = Bloom(capacity=8)
    bloom.add("c:o1")
    old = msgspec.json.encode([bloom.capacity, bloom.count, bytes(bloom.bits), []])
    archive = Archive.of(msgspec.json.decode(old, type=BloomState))
    assert archive.filled == [] and not archive.empty
    assert archive.may_hold("c:o1") and not archive.may_hold("c:o2")


# -- what the day's caps and reconciliation see of orders out of memory ---------------


async def _capped_day(tmp_path: Path) -> None:
    """Three orders of a pilot stage's three a day, then a restart with all three out of
    memory: the fourth is still refused, and reconciliation finds the books agree."""
    from livegate.model.enums import RejectReason
    from livegate.recon.reconciler import Reconciler
    from livegate.risk.engine import RiskEngine
    from livegate.risk.limits import RiskLimits
    from livegate.risk.rollout import RolloutGuard, parse_plan

    plan = parse_plan({"timezone": "Asia/Shanghai", "stages": {"pilot": {"max_orders_per_day": 3}}})
    clock = Clock()
    clock.ns = 1_764_554_400 * 10**9  # 2025-12-01 10:00 in Shanghai
    config = GatewayConfig(heartbeat_interval=None, retain_hours=0.01)

    def gateway_on():  # type: ignore[no-untyped-def]
        from livegate.engine import Gateway
        from livegate.journal import Journal

        risk = RiskEngine(RiskLimits(), INSTRUMENTS, rollout=RolloutGuard(plan))
        gateway = Gateway(
            broker, Journal(SQLiteStore(tmp_path / "journal.sqlite")), INSTRUMENTS, config, risk
        )
        gateway.parts.clock = clock  # type: ignore[assignment]
        return gateway

    _, broker = scripted_gateway()
    gateway = gateway_on()
    await gateway.start()
    for n in range(3):
        coid, boid = f"o{n}", f"B-o{n}"
        await gateway.submit_order(
            OrderRequest(symbol="AAPL", side="BUY", quantity=10, price="20", client_order_id=coid)
        )
        trade = TradeReport(D(10), D(20), coid, boid, f"T{n}", "AAPL", Side.BUY, ts_ns=clock.ns)
        broker.trades.append(trade)
        broker.status[coid] = OrderReport(S.FILLED, coid, boid, cum_qty=D(10))
        broker.push(trade)
        broker.push(broker.status[coid])
        await settle(gateway)
    clock.ns += 3600 * 10**9  # an hour on, the same day in Shanghai
    await gateway.stop()
    assert gateway.book.orders == {}, "all three left memory at the stop's checkpoint"
    broker.snapshot = AccountSnapshot(
        "test", "USD", gateway.cash().balance, gateway.cash().balance,
        tuple(gateway.positions()),
    )  # fmt: skip

    gateway = gateway_on()
    await gateway.start()
    assert gateway.book.orders == {}
    refused = await gateway.submit_order(
        OrderRequest(symbol="AAPL", side="BUY", quantity=10, price="20", client_order_id="o3")
    )
    assert refused.reject_reason is RejectReason.ROLLOUT_ORDERS, refused
    result = await Reconciler(gateway).run(eod=True)
    assert result.findings == [], result.findings
    await gateway.stop()


def test_orders_out_of_memory_still_count_for_the_day_and_reconcile(tmp_path: Path) -> None:
    asyncio.run(_capped_day(tmp_path))


def test_the_sqlite_archive_finds_a_retired_order_by_either_id(tmp_path: Path) -> None:
    from livegate.journal.store import Retired

    store = SQLiteStore(tmp_path / "journal.sqlite")
    store.open()
    rows = [Retired(f"c{n:06d}", f"b{n}" if n % 2 else None, b"%d" % n) for n in range(25_001)]
    store.write_checkpoint(0, b"{}", rows)
    assert store.retired_order(None, "b24999") == b"24999"
    assert store.retired_order("c000000", None) == b"0"
    assert store.retired_order("c000002", "b3") == b"2"  # the client id is asked first
    assert store.retired_order(None, "b2") is None and store.retired_order("c025001", None) is None
    store.close()
