"""Checkpoints: a book started from a checkpoint plus the events after it is exactly the
book a full replay builds, for random histories with restarts in between."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from livegate.engine import book_state
from livegate.engine.config import GatewayConfig
from livegate.engine.order_book import OrderBook
from livegate.journal.memory import MemoryStore
from livegate.journal.sqlite import SQLiteStore
from livegate.journal.store import Retired
from livegate.model import BrokerReport, OrderReport, OrderRequest, OrderStatus, Side, TradeReport
from livegate.model.account import AccountSnapshot, Position
from livegate.model.enums import TradingState
from livegate.model.events import (
    AccountBaseline,
    AlertChanged,
    CancelRequested,
    JournalEvent,
    LedgerAdjusted,
    Received,
    SubmitUnknown,
    TradingStateChanged,
)

from .helpers import INSTRUMENTS, scripted_gateway, settle
from .histories import History, histories, intent_of, messy_delivery

D = Decimal


@st.composite
def journals(draw: st.DrawFn) -> list[JournalEvent]:
    """What a day's journal may hold: intents, cancels, unknowns, reports in any order with
    duplicates, reports for orders not yet known (held), and the non-order events."""
    hs = draw(histories())
    reports = draw(messy_delivery([r for h in hs for r in h.reports]))
    trades = [r for r in reports if isinstance(r, TradeReport)]
    if trades and draw(st.booleans()):  # a fill never reported: a gap stays open
        lost = draw(st.sampled_from(trades))
        reports = [r for r in reports if r not in trades or r.dedup_key() != lost.dedup_key()]
    events: list[JournalEvent] = [
        AccountBaseline(
            AccountSnapshot("a", "USD", D("100000"), D("100000"), (Position("MSFT", D(5), D(3)),))
        )
    ]
    events += [intent_of(h, 1) for h in hs]
    events += [Received(r, n + 1, "stream") for n, r in enumerate(reports)]
    extras: list[JournalEvent] = [
        TradingStateChanged(TradingState.REDUCING, "ops", "test", 5, "cmd-1"),
        LedgerAdjusted("MSFT", D(7), D("3.5"), None, 6),
        AlertChanged("gap", "P1", "open", "a gap", 7),
    ]
    extras += [CancelRequested(h.coid, 8) for h in hs[:2]]
    extras += [SubmitUnknown(h.coid, "lost", 9) for h in hs[-1:]]
    unknown = History("u1", D(10), (), (), OrderStatus.NEW)
    events.insert(1, intent_of(unknown, 1))
    for extra in extras:
        events.insert(draw(st.integers(1, len(events))), extra)
    # Reports first, intents after: held, then released when the intent comes.
    if draw(st.booleans()):
        events.sort(key=lambda e: not isinstance(e, Received | AccountBaseline))
    events.append(SubmitUnknown("u1", "in flight at restart", 9))
    return events


def _state(book: OrderBook) -> bytes:
    """The whole book but the archive's filter (a book that retired nothing has an empty
    one, or none at all: the same state)."""
    state = book_state.capture(book, 1)
    return book_state.encode(msgspec.structs.replace(state, retired=None))


@settings(max_examples=200, deadline=None)
@given(events=journals(), data=st.data())
def test_checkpoint_plus_tail_is_the_full_replay(
    events: list[JournalEvent], data: st.DataObject
) -> None:
    full = OrderBook(INSTRUMENTS)
    for event in events:
        full.apply(event)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(events)), min_size=1, max_size=4)))
    book, position = OrderBook(INSTRUMENTS), 0
    for cut in [*cuts, len(events)]:
        for event in events[position:cut]:
            book.apply(event)
        position = cut
        # A restart: the checkpoint as stored (bytes), then a book made from it.
        stored = book_state.encode(book_state.capture(book, max(cut, 1)))
        book = book_state.load(stored, len(events) + 1, INSTRUMENTS).book
    assert _state(book) == _state(full)
    assert book.open_orders() == full.open_orders()
    assert book.attention == full.attention or sorted(
        o.client_order_id for o in book.needing_attention()
    ) == sorted(o.client_order_id for o in full.needing_attention())
    assert book.needing_attention(), "every history has an unknown order"


def test_a_checkpoint_that_cannot_be_used_means_a_full_replay_not_a_failed_start() -> None:
    book = OrderBook(INSTRUMENTS)
    book.apply(TradingStateChanged(TradingState.HALTED, "ops", "t", 1))
    good = book_state.encode(book_state.capture(book, 3))
    assert book_state.load(good, 3, INSTRUMENTS).seq == 3
    for payload, last_seq in [
        (b"not json", 3),
        (b'{"version": 1}', 3),
        (good.replace(b'"version":%d' % book_state.VERSION, b'"version":99'), 3),
        (good, 2),  # past the journal's end: never skip events the journal may not hold
    ]:
        loaded = book_state.load(payload, last_seq, INSTRUMENTS)
        assert loaded.seq == 0 and loaded.book.trading_state is TradingState.ACTIVE


# -- the gateway: checkpoints at stop and every N events, starts read them ------------


async def _day(store: MemoryStore | SQLiteStore, orders: list[tuple[str, int]], every: int) -> None:
    """Orders through a scripted broker, with a restart (clean or not) between some."""
    config = GatewayConfig(checkpoint_every=every, heartbeat_interval=None)
    gateway, broker = scripted_gateway(store, config)
    await gateway.start()
    for n, (coid, restart) in enumerate(orders):
        await gateway.submit_order(
            OrderRequest(symbol="AAPL", side="BUY", quantity=10, price="20", client_order_id=coid)
        )
        boid = "B-" + coid
        trade = TradeReport(D(10), D(20), coid, boid, f"T{n}", "AAPL", Side.BUY)
        done = OrderReport(OrderStatus.FILLED, coid, boid, cum_qty=D(10), avg_price=D(20))
        broker.trades.append(trade)
        broker.status[coid] = done
        reports: list[BrokerReport] = [trade, done]
        for report in reports:
            broker.push(report)
        await settle(gateway)
        await gateway.pipeline.checkpoint()  # the resolver's round, without waiting for it
        if restart:
            if restart == 2:  # a crash: no stop, so no checkpoint of its own
                await gateway.journal.close()
                gateway.supervisor.cancel_stream()
            else:
                await gateway.stop()
            gateway, broker = scripted_gateway(store, config)
            await gateway.start()
            replayed = OrderBook(INSTRUMENTS)
            for _, event in gateway.journal.replay():
                replayed.apply(event)
            assert _state(gateway.book) == _state(replayed)
    if every and len(orders) * 4 > every:  # checkpoints of their own, before any stop
        assert store.last_checkpoint() is not None
    await gateway.stop()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    restarts=st.lists(st.sampled_from([0, 0, 1, 2]), min_size=1, max_size=12),
    every=st.sampled_from([0, 3, 7]),
)
def test_a_restarted_gateway_has_exactly_the_state_of_a_full_replay(
    restarts: list[int], every: int
) -> None:
    orders = [(f"c{n}", restart) for n, restart in enumerate(restarts)]
    asyncio.run(_day(MemoryStore(), orders, every))


async def _checkpoints_between_rounds(every: int, failing: bool) -> tuple[list[int], int]:
    """Orders with the resolver's round an hour away: the seqs checkpoints were tried at."""
    store = MemoryStore()
    tried: list[int] = []
    write = store.write_checkpoint

    def counted(seq: int, payload: bytes, rows: Sequence[Retired] = ()) -> bool:
        tried.append(seq)
        if failing:
            raise OSError("disk full")
        return write(seq, payload, rows)

    store.write_checkpoint = counted  # type: ignore[method-assign]
    config = GatewayConfig(checkpoint_every=every, heartbeat_interval=None, resolve_interval=3600)
    gateway, broker = scripted_gateway(store, config)
    await gateway.start()
    for n in range(20):
        coid = f"c{n}"
        await gateway.submit_order(
            OrderRequest(symbol="AAPL", side="BUY", quantity=10, price="20", client_order_id=coid)
        )
        broker.push(TradeReport(D(10), D(20), coid, "B-" + coid, f"T{n}", "AAPL", Side.BUY))
        broker.push(OrderReport(OrderStatus.FILLED, coid, "B-" + coid, cum_qty=D(10)))
        await settle(gateway)
    last = gateway.journal.last_seq
    tried_before_stop = list(tried)
    await gateway.stop()
    return tried_before_stop, last


@pytest.mark.parametrize("failing", [False, True])
def test_checkpoints_follow_the_event_count_not_the_resolver_round(failing: bool) -> None:
    """A checkpoint is due once `checkpoint_every` events passed, whether or not a round
    comes (a retiring one pauses the loop in proportion to what it covers); one that
    could not be written is tried again that many events later, not at every batch."""
    every = 8
    tried, last = asyncio.run(_checkpoints_between_rounds(every, failing))
    assert len(tried) >= last // (2 * every), (tried, last)
    gaps = [b - a for a, b in zip([0, *tried], tried, strict=False)]
    assert all(every <= gap < 2 * every for gap in gaps), gaps
    assert last - tried[-1] < 2 * every


def test_a_stop_writes_a_checkpoint_and_a_start_replays_only_what_follows(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "journal.sqlite")
    asyncio.run(_day(store, [(f"c{n}", 0) for n in range(5)], 0))
    reader = SQLiteStore(tmp_path / "journal.sqlite")
    reader.open()
    found = reader.last_checkpoint()
    assert found is not None and found[0] == reader.last_seq()
    state = book_state.decode(found[1])
    assert [o.client_order_id for o in state.orders] == [f"c{n}" for n in range(5)]
    reader.close()

    async def start_only() -> int:
        gateway, _ = scripted_gateway(SQLiteStore(tmp_path / "journal.sqlite"))
        read: list[int] = []
        replay = gateway.journal.replay

        def counting(after_seq: int = 0):  # type: ignore[no-untyped-def]
            read.append(after_seq)
            return replay(after_seq)

        gateway.journal.replay = counting  # type: ignore[method-assign]
        await gateway.start()
        assert gateway.order("c4").status.value == "FILLED"
        await gateway.stop()
        return read[0]

    assert asyncio.run(start_only()) == found[0]


async def _busy(store: MemoryStore) -> list[int | None]:
    """Checkpoints taken while submits are in flight (intents journaled, not yet durable or
    applied), then a crash: the start from the last of them equals a full replay."""
    gateway, broker = scripted_gateway(store, GatewayConfig(heartbeat_interval=None))
    await gateway.start()
    requests = [
        OrderRequest(symbol="AAPL", side="BUY", quantity=10, price="20", client_order_id=f"b{n}")
        for n in range(60)
    ]
    tasks = [asyncio.create_task(gateway.submit_order(r)) for r in requests]
    written = []
    pipeline = gateway.pipeline
    while not all(t.done() for t in tasks):
        await asyncio.sleep(0)
        seq = pipeline._applied_seq()
        if pipeline._inbox and seq > pipeline.checkpoint_seq:
            written.append(pipeline._checkpoint_now(seq))
    await settle(gateway)
    await gateway.journal.close()  # a crash: no stop, no checkpoint of its own
    gateway.supervisor.cancel_stream()
    gateway, _ = scripted_gateway(store)
    await gateway.start()
    replayed = OrderBook(INSTRUMENTS)
    for _, event in gateway.journal.replay():
        replayed.apply(event)
    assert _state(gateway.book) == _state(replayed)
    assert len(gateway.book.orders) == 60 and broker.placed == {
        r.client_order_id: 1 for r in requests
    }
    await gateway.stop()
    return written


def test_a_checkpoint_taken_while_orders_are_in_flight_restarts_exactly() -> None:
    written = asyncio.run(_busy(MemoryStore()))
    assert any(seq is not None for seq in written), written
