"""Gaps, unknown submits, external orders and restarts: each heals to the broker's truth."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from livegate.broker.adapter import Capabilities
from livegate.broker.errors import UnknownOutcome
from livegate.engine import GatewayConfig
from livegate.model import (
    Fill,
    OrderIntent,
    OrderReport,
    OrderRequest,
    OrderStatus,
    RejectReason,
    Side,
    TradeReport,
)
from livegate.model.enums import OrderType, TimeInForce

from .helpers import paper_gateway, scripted_gateway, settle

D = Decimal
S = OrderStatus
FAST = GatewayConfig(gap_fetch_after=0, gap_grace=0, unknown_grace=0, resolve_interval=3600)


def limit(coid: str, qty: int = 100, price: str = "10.00") -> OrderRequest:
    return OrderRequest(symbol="AAPL", side="BUY", quantity=qty, price=price, client_order_id=coid)


def trade(coid: str, tid: str, qty: int, price: str = "10.00") -> TradeReport:
    return TradeReport(D(qty), D(price), coid, "B-" + coid, tid, "AAPL", Side.BUY, D("1.00"))


def test_a_fill_gap_is_fetched_from_todays_trades() -> None:
    async def run() -> None:
        gateway, broker = scripted_gateway(config=FAST)
        await gateway.start()
        await gateway.submit_order(limit("g-1"))
        # The order report arrives; its trade report was lost on the wire.
        broker.push(OrderReport(S.PARTIALLY_FILLED, "g-1", "B-g-1", cum_qty=D(40)))
        await settle(gateway)
        assert gateway.order("g-1").filled_qty == 0
        broker.trades.append(trade("g-1", "T1", 40))
        await gateway.resolve_once()
        fills = gateway.trades()
        assert [(f.trade_id, f.quantity, f.inferred) for f in fills] == [("T1", D(40), False)]
        assert gateway.anomalies["FILL_INFERRED"] == 0
        await gateway.stop()

    asyncio.run(run())


def test_an_unfetchable_gap_is_inferred_then_replaced_without_double_count() -> None:
    async def run() -> None:
        gateway, broker = scripted_gateway(config=FAST)
        seen: list[Fill] = []
        gateway.on_trade(seen.append)
        await gateway.start()
        await gateway.submit_order(limit("g-2"))
        broker.push(
            OrderReport(S.PARTIALLY_FILLED, "g-2", "B-g-2", cum_qty=D(50), avg_price=D("10.20"))
        )
        await settle(gateway)
        await gateway.resolve_once()  # nothing to fetch: infer after the (zero) grace
        order = gateway.order("g-2")
        assert order.filled_qty == 50 and order.status is S.PARTIALLY_FILLED
        (inferred,) = gateway.trades()
        assert inferred.inferred and inferred.price == D("10.20")
        assert gateway.positions()[0].quantity == 50

        # The real fills turn up later, in two parts: they replace, not add.
        broker.push(trade("g-2", "T7", 30, "10.10"))
        await settle(gateway)
        assert gateway.order("g-2").filled_qty == 50
        broker.push(trade("g-2", "T8", 20, "10.35"))
        await settle(gateway)
        order = gateway.order("g-2")
        assert order.filled_qty == 50
        assert order.avg_fill_price == (D(30) * D("10.10") + D(20) * D("10.35")) / 50
        assert [(f.trade_id, f.inferred) for f in gateway.trades()] == [
            ("T7", False),
            ("T8", False),
        ]
        assert seen[1].replaces == inferred.trade_id
        position = gateway.positions()[0]
        assert position.quantity == 50
        assert position.avg_price == order.avg_fill_price
        # A third report of the same fill is still a duplicate.
        broker.push(trade("g-2", "T8", 20, "10.35"))
        await settle(gateway)
        assert gateway.order("g-2").filled_qty == 50
        await gateway.resolve_once()
        assert gateway.anomalies["FILL_INFERRED"] == 1
        await gateway.stop()

    asyncio.run(run())


def test_unknown_submit_is_resolved_by_asking_the_broker() -> None:
    async def run() -> None:
        gateway, broker = scripted_gateway(config=FAST)
        await gateway.start()
        broker.place_error = UnknownOutcome("socket closed mid-request")
        assert (await gateway.submit_order(limit("u-1"))).status is S.UNKNOWN
        broker.status["u-1"] = OrderReport(S.SUBMITTED, "u-1", "B-u-1", cum_qty=D(0))
        await gateway.resolve_once()
        order = gateway.order("u-1")
        assert order.status is S.SUBMITTED and order.broker_order_id == "B-u-1"
        assert broker.placed["u-1"] == 1
        await gateway.stop()

    asyncio.run(run())


def test_unknown_submit_the_broker_never_saw_is_finalized_and_never_resent() -> None:
    async def run() -> None:
        gateway, broker = scripted_gateway(config=FAST)
        await gateway.start()
        broker.place_error = UnknownOutcome("timeout")
        await gateway.submit_order(limit("u-2"))
        broker.place_error = None
        await gateway.resolve_once()
        order = gateway.order("u-2")
        assert order.status is S.REJECTED
        assert order.reject_reason is RejectReason.NOT_FOUND_AT_BROKER
        assert "no sign of u-2" in order.reject_text
        assert broker.placed["u-2"] == 1  # this broker does not dedup ids: no resend
        await gateway.stop()

    asyncio.run(run())


def test_unknown_submit_is_resent_once_under_the_same_id_to_a_deduplicating_broker() -> None:
    async def run() -> None:
        gateway, broker = scripted_gateway(config=FAST)
        broker.capabilities = Capabilities(
            dedups_client_order_id=True, query_by_client_order_id=True
        )
        await gateway.start()
        broker.place_error = UnknownOutcome("timeout")
        await gateway.submit_order(limit("u-3"))
        broker.place_error = None
        await gateway.resolve_once()
        assert broker.placed["u-3"] == 2
        order = gateway.order("u-3")
        assert order.status is S.SUBMITTED and order.broker_order_id == "B-u-3"
        await gateway.resolve_once()
        assert broker.placed["u-3"] == 2
        await gateway.stop()

    asyncio.run(run())


def test_without_status_queries_unknown_orders_are_found_in_the_open_orders() -> None:
    async def run() -> None:
        gateway, broker = scripted_gateway(config=FAST)
        broker.capabilities = Capabilities()
        await gateway.start()
        broker.place_error = UnknownOutcome("timeout")
        await gateway.submit_order(limit("u-4"))
        broker.status["u-4"] = OrderReport(S.SUBMITTED, "u-4", "B-u-4", cum_qty=D(0))
        await gateway.resolve_once()
        assert gateway.order("u-4").status is S.SUBMITTED
        await gateway.stop()

    asyncio.run(run())


def test_external_orders_are_recorded_once_and_never_adopted() -> None:
    async def run() -> None:
        gateway, broker = scripted_gateway()
        await gateway.start()
        broker.status["manual-1"] = OrderReport(S.SUBMITTED, "manual-1", "X-9", cum_qty=D(0))
        broker.trades.append(trade("manual-1", "XT1", 5))
        await gateway.sync_open_orders()
        await gateway.sync_today_trades()
        await gateway.sync_open_orders()
        assert gateway.orders() == []
        assert gateway.trades() == [] and gateway.positions() == []
        assert len(gateway.external()) == 2
        assert gateway.anomalies["EXTERNAL_ORDER"] == 2
        await gateway.stop()

    asyncio.run(run())


def test_a_live_order_the_broker_no_longer_lists_is_closed_and_flagged() -> None:
    async def run() -> None:
        gateway, broker = scripted_gateway()
        broker.capabilities = Capabilities()  # cannot ask about one order
        await gateway.start()
        await gateway.submit_order(limit("c-1"))
        await gateway.sync_open_orders()  # broker lists nothing: its book was lost
        order = gateway.order("c-1")
        assert order.status is S.CANCELLED and "not among" in order.reject_text
        assert gateway.anomalies["CLOSED_AT_BROKER"] == 1
        await gateway.stop()

    asyncio.run(run())


def test_restart_after_the_broker_moved_on_ends_equal_to_the_broker(tmp_path: Path) -> None:
    async def before() -> None:
        gateway, paper = paper_gateway(tmp_path)
        await gateway.start()
        paper.set_quote("AAPL", D("99.99"), D("100.01"), D(500), D(40))
        await gateway.submit_order(
            OrderRequest(
                symbol="AAPL", side="BUY", quantity=100, order_type="MARKET", client_order_id="r-1"
            )
        )
        await gateway.submit_order(limit("r-2", price="90.00"))
        await gateway.submit_order(limit("r-3", price="91.00"))
        await settle(gateway)
        assert gateway.order("r-1").filled_qty == 40
        await gateway.stop()

    async def after() -> None:
        gateway, paper = paper_gateway(tmp_path)
        await gateway.start()
        broker = paper.broker
        for coid in ("r-1", "r-2", "r-3"):
            ours, theirs = gateway.order(coid), broker.find(coid, None)
            assert theirs is not None
            assert (ours.status, ours.filled_qty) == (theirs.status, theirs.filled_qty), coid
        assert gateway.order("r-1").status is S.FILLED
        assert gateway.order("r-3").status is S.CANCELLED
        assert sorted(f.trade_id for f in gateway.trades()) == sorted(
            t.trade_id
            for t in broker.trades
            if t.client_order_id != "someone-else"  # type: ignore[misc]
        )
        assert gateway.positions()[0].quantity == 100
        (external,) = gateway.external()  # the other client's order filled at once
        assert isinstance(external, TradeReport) and external.client_order_id == "someone-else"
        # Our books hold our trades only; the broker's cash also holds the
        # other client's sale. Reconciliation is where that difference shows.
        proceeds = external.quantity * external.price - external.fee
        assert broker.ledger.cash == gateway.cash().balance + proceeds
        assert broker.duplicate_place_attempts == 0 and len(broker.orders) == 4
        await gateway.stop()

    asyncio.run(before())
    # While we were down: more liquidity fills r-1, the desk cancels r-3 by
    # hand, and someone else trades on the same account.
    from livegate.broker.paper import PaperAdapter

    offline = PaperAdapter(tmp_path / "paper.sqlite").broker
    offline.open()
    offline.set_quote("AAPL", D("99.99"), D("100.02"), D(500), D(1000))
    offline.cancel("r-3", None)
    other = OrderIntent(
        "someone-else", "x", "AAPL", Side.SELL, OrderType.MARKET, D(50), None, TimeInForce.DAY, 0
    )
    offline.place(other)
    offline.close()
    asyncio.run(after())


def test_after_a_dropped_connection_orders_wait_for_reconnect_and_recovery() -> None:
    async def run() -> None:
        config = GatewayConfig(reconnect_delay=0.01, resolve_interval=3600)
        gateway, broker = scripted_gateway(config=config)
        await gateway.start()
        await gateway.submit_order(limit("d-1"))
        broker.refuse_connects = 2
        broker.drop()
        await asyncio.sleep(0)
        assert not gateway.ready
        refused = await gateway.submit_order(limit("d-2"))
        assert refused.status is S.REJECTED and refused.reject_reason is RejectReason.NOT_READY
        assert "d-2" not in broker.placed
        # While we were cut off, d-1 filled at the broker.
        broker.trades.append(trade("d-1", "D1", 100))
        broker.status["d-1"] = OrderReport(S.FILLED, "d-1", "B-d-1", cum_qty=D(100))
        for _ in range(500):
            if gateway.ready:
                break
            await asyncio.sleep(0.01)
        assert gateway.ready and gateway.disconnects == 1
        assert broker.connects == 4  # start, two refused, one that worked
        order = gateway.order("d-1")
        assert order.status is S.FILLED and order.filled_qty == 100
        assert (await gateway.submit_order(limit("d-3"))).status is S.SUBMITTED
        await gateway.stop()

    asyncio.run(run())
