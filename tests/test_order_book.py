"""Applying reports: each named case lands in the right final state."""

from __future__ import annotations

from decimal import Decimal

from livegate.engine.order_book import Anomalies, OrderBook
from livegate.model import OrderIntent, OrderReport, OrderStatus, Side, TradeReport
from livegate.model.enums import OrderType, TimeInForce
from livegate.model.events import CancelRequested, Received
from livegate.model.reports import CancelRejectReport

from .helpers import INSTRUMENTS

D = Decimal
S = OrderStatus


def intent(coid: str = "c1", qty: int = 100) -> OrderIntent:
    return OrderIntent(
        coid, "acct", "AAPL", Side.BUY, OrderType.LIMIT, D(qty), D("10.00"), TimeInForce.DAY, 1
    )


def rx(report: object, source: str = "stream") -> Received:
    return Received(report, 2, source)  # type: ignore[arg-type]


def trade(tid: str, qty: int, coid: str | None = "c1", boid: str | None = "b1") -> TradeReport:
    return TradeReport(D(qty), D("10.00"), coid, boid, tid, "AAPL", Side.BUY, D("1.00"))


def book_with_anomalies() -> tuple[OrderBook, list[str]]:
    seen: list[str] = []
    book = OrderBook(INSTRUMENTS, on_anomaly=lambda kind, coid, detail: seen.append(kind))
    book.apply(intent())
    return book, seen


def test_fill_before_ack_then_ack_does_not_go_backwards() -> None:
    book, anomalies = book_with_anomalies()
    book.apply(rx(trade("t1", 100)))
    book.apply(rx(OrderReport(S.SUBMITTED, "c1", "b1"), source="place"))
    order = book.orders["c1"]
    assert order.status is S.FILLED and order.filled_qty == 100
    assert order.broker_order_id == "b1"
    assert anomalies == []


def test_stale_submitted_after_filled_is_flagged_and_changes_nothing() -> None:
    book, anomalies = book_with_anomalies()
    book.apply(rx(OrderReport(S.FILLED, "c1", "b1", cum_qty=D(100))))
    book.apply(rx(trade("t1", 100)))
    book.apply(rx(OrderReport(S.SUBMITTED, "c1", "b1")))
    assert book.orders["c1"].status is S.FILLED
    assert anomalies == [Anomalies.STALE_REPORT]


def test_duplicate_fill_counted_once() -> None:
    book, anomalies = book_with_anomalies()
    book.apply(rx(trade("t1", 40)))
    book.apply(rx(trade("t1", 40)))
    assert book.orders["c1"].filled_qty == 40
    assert len(book.fills) == 1
    assert anomalies == [Anomalies.DUPLICATE_FILL]
    assert book.ledger.position("AAPL").quantity == 40


def test_fill_without_trade_id_is_deduplicated_by_fingerprint() -> None:
    book, _ = book_with_anomalies()
    no_id = TradeReport(D(10), D("10.00"), "c1", "b1", None, "AAPL", Side.BUY, ts_ns=77)
    book.apply(rx(no_id))
    book.apply(rx(no_id))
    assert book.orders["c1"].filled_qty == 10


def test_overfill_is_refused() -> None:
    book, anomalies = book_with_anomalies()
    book.apply(rx(trade("t1", 80)))
    book.apply(rx(trade("t2", 30)))
    assert book.orders["c1"].filled_qty == 80
    assert anomalies == [Anomalies.OVERFILL]


def test_cancel_confirm_after_fill_keeps_filled() -> None:
    book, anomalies = book_with_anomalies()
    book.apply(CancelRequested("c1", 3))
    book.apply(rx(trade("t1", 100)))
    book.apply(rx(OrderReport(S.CANCELLED, "c1", "b1")))
    assert book.orders["c1"].status is S.FILLED
    assert anomalies == [Anomalies.STALE_REPORT]


def test_late_fill_after_cancel_is_counted_and_completes_the_order() -> None:
    book, _ = book_with_anomalies()
    book.apply(rx(trade("t1", 60)))
    book.apply(rx(OrderReport(S.CANCELLED, "c1", "b1", cum_qty=D(100))))
    assert book.orders["c1"].status is S.CANCELLED
    book.apply(rx(trade("t2", 40)))
    assert book.orders["c1"].status is S.FILLED and book.orders["c1"].filled_qty == 100


def test_partial_fill_then_cancel_keeps_the_fill() -> None:
    book, _ = book_with_anomalies()
    book.apply(rx(trade("t1", 30)))
    book.apply(rx(OrderReport(S.CANCELLED, "c1", "b1", cum_qty=D(30))))
    order = book.orders["c1"]
    assert order.status is S.CANCELLED and order.filled_qty == 30 and order.leaves_qty == 0


def test_cancel_refused_restores_the_previous_state() -> None:
    book, _ = book_with_anomalies()
    book.apply(rx(trade("t1", 30)))
    book.apply(CancelRequested("c1", 3))
    assert book.orders["c1"].status is S.PENDING_CANCEL
    book.apply(rx(CancelRejectReport("c1", "b1", "too late")))
    assert book.orders["c1"].status is S.PARTIALLY_FILLED


def test_report_with_only_a_broker_id_is_held_until_the_id_is_known() -> None:
    book, anomalies = book_with_anomalies()
    book.apply(rx(trade("t1", 25, coid=None, boid="b1")))
    assert book.orders["c1"].filled_qty == 0
    assert anomalies == [Anomalies.HELD_UNKNOWN_ORDER]
    book.apply(rx(OrderReport(S.SUBMITTED, "c1", "b1"), source="place"))
    assert book.orders["c1"].filled_qty == 25
    assert book.held == {}


def test_report_naming_another_broker_order_is_refused() -> None:
    book, anomalies = book_with_anomalies()
    book.apply(rx(OrderReport(S.SUBMITTED, "c1", "b1")))
    book.apply(rx(OrderReport(S.CANCELLED, "c1", "b2")))
    assert book.orders["c1"].status is S.SUBMITTED
    assert anomalies == [Anomalies.BROKER_ID_CONFLICT]


def test_rejected_report_keeps_reason_and_text() -> None:
    book, _ = book_with_anomalies()
    book.apply(rx(OrderReport(S.REJECTED, "c1", text="margin"), source="place"))
    order = book.orders["c1"]
    assert order.status is S.REJECTED and order.reject_reason == "BROKER_REJECTED"
    assert order.reject_text == "margin"


def test_ledger_tracks_position_cash_and_realized_pnl() -> None:
    book = OrderBook(INSTRUMENTS)
    book.apply(intent("b", 100))
    sell = OrderIntent(
        "s", "acct", "AAPL", Side.SELL, OrderType.LIMIT, D(60), D("12.00"), TimeInForce.DAY, 1
    )
    book.apply(sell)
    book.apply(rx(TradeReport(D(100), D("10.00"), "b", "1", "t1", fee=D("1.00"))))
    book.apply(rx(TradeReport(D(60), D("12.00"), "s", "2", "t2", fee=D("1.00"))))
    position = book.ledger.position("AAPL")
    assert position.quantity == 40 and position.avg_price == D("10.00")
    assert position.realized_pnl == D("120.00")
    assert book.ledger.cash == D(-1000) + D(720) - D(2)


def test_a_refused_cancel_returns_to_the_state_the_order_reached_meanwhile() -> None:
    book, _ = book_with_anomalies()
    book.apply(CancelRequested("c1", 3))  # cancelled while still NEW
    book.apply(rx(OrderReport(S.SUBMITTED, "c1", "b1"), source="place"))  # then acknowledged
    assert book.orders["c1"].status is S.PENDING_CANCEL
    book.apply(rx(CancelRejectReport("c1", "b1", "lost")))
    assert book.orders["c1"].status is S.SUBMITTED  # not back to NEW
