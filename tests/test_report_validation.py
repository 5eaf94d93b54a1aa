"""Hostile broker reports: never applied, always an anomaly, never able to stop a restart.

Issue 12: NaN, sNaN, infinities, 1e999999999, negative and zero values, and
reports that contradict their order reached the order book; one of them made
the journal unreplayable. Each case here failed before the fix.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal as D
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from livegate.engine import Gateway
from livegate.engine.order_book import Anomalies, OrderBook
from livegate.journal import SQLiteStore
from livegate.model import (
    OrderIntent,
    OrderReport,
    OrderRequest,
    OrderStatus,
    Side,
    TradeReport,
)
from livegate.model.enums import OrderType
from livegate.model.enums import TimeInForce as Tif
from livegate.model.events import Received, SubmitUnknown
from livegate.model.validation import report_problem

from .helpers import INSTRUMENTS, scripted_gateway, settle

S = OrderStatus
HOSTILE = [
    D("NaN"),
    D("sNaN"),
    D("Infinity"),
    D("-Infinity"),
    D("1e999999999"),
    D("-1e999999999"),
    D("1e-999999999"),
    D("-50"),
    D(0),
]
numbers = st.one_of(
    st.sampled_from(HOSTILE),
    st.decimals(min_value=D(1), max_value=D(100), places=0),
    st.decimals(allow_nan=True, allow_infinity=True),
)


def order(coid: str, quantity: int = 100, side: str = "BUY") -> OrderRequest:
    return OrderRequest(
        symbol="AAPL", side=side, quantity=quantity, price="10.00", client_order_id=coid
    )


@st.composite
def hostile_reports(draw: st.DrawFn) -> list[OrderReport | TradeReport]:
    reports: list[OrderReport | TradeReport] = []
    for n in range(draw(st.integers(1, 8))):
        coid = draw(st.sampled_from(["a", "b"]))
        if draw(st.booleans()):
            reports.append(
                TradeReport(
                    draw(numbers),
                    draw(numbers),
                    coid,
                    "B-" + coid,
                    f"T{n}",
                    fee=draw(st.one_of(st.just(D(0)), numbers)),
                )
            )
        else:
            cum = draw(st.one_of(st.none(), numbers))
            avg = draw(st.one_of(st.none(), numbers))
            status = draw(st.sampled_from([S.PARTIALLY_FILLED, S.FILLED, S.SUBMITTED]))
            reports.append(OrderReport(status, coid, "B-" + coid, cum_qty=cum, avg_price=avg))
    return reports


def _check_books(gateway: Gateway) -> None:
    for o in gateway.orders():
        assert o.filled_qty.is_finite() and 0 <= o.filled_qty <= o.quantity, o
        fills = [f for f in gateway.trades() if f.client_order_id == o.client_order_id]
        assert sum((f.quantity for f in fills), D(0)) == o.filled_qty, (o, fills)
    for f in gateway.trades():
        assert f.quantity.is_finite() and f.quantity > 0, f
        assert f.price.is_finite() and f.price > 0, f
        assert f.fee.is_finite(), f
    for p in gateway.positions():
        assert p.quantity.is_finite(), p


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(reports=hostile_reports())
def test_any_report_values_never_reach_the_books_and_never_stop_a_restart(
    tmp_path_factory: object, reports: list[OrderReport | TradeReport]
) -> None:
    directory: Path = tmp_path_factory.mktemp("hostile")  # type: ignore[attr-defined]
    invalid = sum(1 for r in reports if report_problem(r))

    async def run() -> None:
        gateway, broker = scripted_gateway(SQLiteStore(directory / "journal.sqlite"))
        await gateway.start()
        await gateway.submit_order(order("a"))
        await gateway.submit_order(order("b"))
        for report in reports:
            broker.push(report)
        await settle(gateway)
        _check_books(gateway)
        assert gateway.anomalies[Anomalies.INVALID_REPORT] == invalid
        await gateway.stop()

        again, _ = scripted_gateway(SQLiteStore(directory / "journal.sqlite"))
        await again.start()  # replays every journaled report, the hostile ones too
        _check_books(again)
        assert [o.filled_qty for o in again.orders()] == [o.filled_qty for o in gateway.orders()]
        await again.stop()

    asyncio.run(run())


def _run(*reports: OrderReport | TradeReport, side: str = "BUY") -> Gateway:
    async def run() -> Gateway:
        gateway, broker = scripted_gateway()
        await gateway.start()
        await gateway.submit_order(order("a", side=side))
        await gateway.submit_order(order("b"))
        for report in reports:
            broker.push(report)
        await settle(gateway)
        await gateway.stop()
        return gateway

    return asyncio.run(run())


def test_a_negative_fill_never_cancels_a_real_one() -> None:
    g = _run(
        TradeReport(D(50), D(10), "a", "B-a", "T1"),
        TradeReport(D(-50), D(10), "a", "B-a", "T2"),
    )
    assert g.order("a").filled_qty == 50
    assert g.anomalies[Anomalies.INVALID_REPORT] == 1


def test_a_trade_whose_side_or_symbol_differs_from_its_order_is_refused() -> None:
    g = _run(
        TradeReport(D(10), D(10), "a", "B-a", "T1", symbol="MSFT", side=Side.BUY),
        TradeReport(D(10), D(10), "a", "B-a", "T2", symbol="AAPL", side=Side.SELL),
        TradeReport(D(10), D(10), "a", "B-a", "T3", symbol="AAPL", side=Side.BUY),
    )
    assert g.order("a").filled_qty == 10
    assert g.anomalies[Anomalies.REPORT_CONTRADICTS_ORDER] == 2


def test_a_broker_id_bound_to_one_order_is_never_rebound_to_another() -> None:
    seen: list[str] = []
    book = OrderBook(INSTRUMENTS, on_anomaly=lambda kind, *_: seen.append(kind))
    for coid in ("a", "b"):
        book.apply(
            OrderIntent(coid, "x", "AAPL", Side.BUY, OrderType.LIMIT, D(100), D(10), Tif.DAY, 0)
        )
    book.apply(Received(OrderReport(S.SUBMITTED, "a", "B-1"), 1, "stream"))
    # b is not acknowledged yet; a report pairs it with a's broker id.
    book.apply(Received(OrderReport(S.PARTIALLY_FILLED, "b", "B-1", cum_qty=D(10)), 2, "stream"))
    # A trade naming a client id we never sent, with a's broker id.
    book.apply(Received(TradeReport(D(10), D(10), "nobody", "B-1", "T9"), 3, "stream"))
    assert book.orders["b"].broker_order_id is None and book.by_broker_id == {"B-1": "a"}
    assert book.orders["a"].filled_qty == 0 and book.orders["b"].reported_cum_qty == 0
    assert seen == [Anomalies.BROKER_ID_CONFLICT, Anomalies.BROKER_ID_CONFLICT]


def test_filled_with_no_quantity_is_a_fill_gap_not_a_filled_order_with_nothing() -> None:
    g = _run(OrderReport(S.FILLED, "a", "B-a"))
    a = g.book.orders["a"]
    assert a.fill_gap == 100  # the resolver fetches the trades, or infers them


def test_the_same_trade_id_on_two_orders_is_two_fills() -> None:
    """Both sides of a self-cross carry the exchange's one trade id."""
    g = _run(
        TradeReport(D(10), D(10), "a", "B-a", "X-1"),
        TradeReport(D(10), D(10), "b", "B-b", "X-1"),
        TradeReport(D(10), D(10), "b", "B-b", "X-1"),  # this one is a duplicate
        side="SELL",
    )
    assert g.order("a").filled_qty == 10 and g.order("b").filled_qty == 10
    assert g.anomalies[Anomalies.DUPLICATE_FILL] == 1


def test_an_overfill_is_refused_loudly() -> None:
    g = _run(
        TradeReport(D(80), D(10), "a", "B-a", "T1"),
        TradeReport(D(80), D(10), "a", "B-a", "T2"),
    )
    assert g.order("a").filled_qty == 80
    assert g.anomalies[Anomalies.OVERFILL] == 1


def test_a_refused_report_raises_a_p1_and_is_journaled() -> None:
    from livegate.journal import MemoryStore
    from livegate.journal.journal import decode_event
    from livegate.model.events import Anomalies as AnomalyBatch
    from livegate.observe.alerts import AlertConfig, AlertEngine

    store = MemoryStore()

    async def run() -> None:
        gateway, broker = scripted_gateway(store)
        await gateway.start()
        engine = AlertEngine(gateway, AlertConfig(), sinks=[])
        await gateway.submit_order(order("a"))
        broker.push(TradeReport(D("NaN"), D(10), "a", "B-a", "T1"))
        await settle(gateway)
        await engine.evaluate()
        assert engine.open_alerts() == {"refused-reports": "P1"}
        await gateway.stop()

    asyncio.run(run())
    kinds = [
        item.kind
        for record in store.records
        if record.kind == "anomalies"
        for item in decode_event(record.payload).items  # type: ignore[union-attr]
        if isinstance(decode_event(record.payload), AnomalyBatch)
    ]
    assert kinds == [Anomalies.INVALID_REPORT]


@given(quantity=numbers, price=numbers, fee=st.one_of(st.just(D(0)), numbers), cum=numbers)
def test_the_quick_check_agrees_with_the_named_reasons(
    quantity: D, price: D, fee: D, cum: D
) -> None:
    """report_problem's one-comparison path for the usual report must refuse exactly
    what the per-field checks refuse."""
    from livegate.model.validation import number_problem

    trade = TradeReport(quantity, price, "a", None, "T", fee=fee)
    named = (
        number_problem(quantity, "quantity", positive=True)
        or number_problem(price, "price", positive=True)
        or number_problem(fee, "fee", positive=False, signed=True)
    )
    assert (report_problem(trade) == "") == (named == ""), (quantity, price, fee)
    status = OrderReport(S.PARTIALLY_FILLED, "a", cum_qty=cum, avg_price=price)
    named = number_problem(cum, "cum_qty", positive=False) or number_problem(
        price, "avg_price", positive=False
    )
    assert (report_problem(status) == "") == (named == ""), (cum, price)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_the_resolvers_index_holds_every_order_that_needs_it(data: st.DataObject) -> None:
    """needing_attention() (what the resolver looks at) equals a scan of every order."""
    from .histories import histories, messy_delivery

    hs = data.draw(histories(max_orders=4))
    book = OrderBook(INSTRUMENTS)
    for h in hs:
        book.apply(
            OrderIntent(h.coid, "x", "AAPL", Side.BUY, OrderType.LIMIT, h.quantity, D(10),
                        Tif.DAY, 0)
        )  # fmt: skip
        if data.draw(st.booleans()):
            book.apply(SubmitUnknown(h.coid, "lost", 1))
    reports = [r for h in hs for r in h.reports]
    for n, report in enumerate(data.draw(messy_delivery(reports))):
        book.apply(Received(report, n, "stream"))
        if data.draw(st.integers(0, 3)) == 0:
            book.needing_attention()  # a resolver round prunes as it goes
    scan = {
        o.client_order_id
        for o in book.orders.values()
        if o.fill_gap > 0 or o.status is OrderStatus.UNKNOWN
    }
    assert {o.client_order_id for o in book.needing_attention()} == scan
