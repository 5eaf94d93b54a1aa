"""The gateway's promises: idempotent submit and cancel, both ids, write-ahead, restart."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path

import pytest

from livegate.broker.errors import BrokerNetworkError, BrokerRejected, UnknownOutcome
from livegate.engine import GatewayConfig, SyncGateway
from livegate.journal import MemoryStore, SQLiteStore
from livegate.journal.journal import decode_event
from livegate.model import (
    DuplicateClientOrderIdError,
    ExecutionReport,
    Fill,
    GatewayNotRunningError,
    InvalidOrderError,
    OrderNotFoundError,
    OrderReport,
    OrderRequest,
    OrderSnapshot,
    OrderStatus,
    RejectReason,
)
from livegate.model.events import OrderIntent, Received

from .helpers import paper_gateway, scripted_gateway, settle

D = Decimal
S = OrderStatus


def limit(coid: str | None = None, qty: int = 100, price: str = "100.00", side: str = "BUY"):
    return OrderRequest(symbol="AAPL", side=side, quantity=qty, price=price, client_order_id=coid)


def market(coid: str | None = None, qty: int = 100, side: str = "BUY") -> OrderRequest:
    return OrderRequest(
        symbol="AAPL", side=side, quantity=qty, order_type="MARKET", client_order_id=coid
    )


def test_duplicate_submit_of_active_order_returns_it_and_sends_nothing() -> None:
    async def run() -> None:
        gateway, broker = scripted_gateway()
        await gateway.start()
        first = await gateway.submit_order(limit("dup-1"))
        again = await gateway.submit_order(limit("dup-1", qty=5))
        assert broker.placed["dup-1"] == 1
        assert again.broker_order_id == first.broker_order_id == "B-dup-1"
        assert again.quantity == 100
        await gateway.stop()

    asyncio.run(run())


def test_concurrent_duplicate_submits_send_once() -> None:
    async def run() -> None:
        gateway, broker = scripted_gateway()
        await gateway.start()
        results = await asyncio.gather(*(gateway.submit_order(limit("same")) for _ in range(20)))
        assert broker.placed["same"] == 1
        assert {r.client_order_id for r in results} == {"same"}
        await gateway.stop()

    asyncio.run(run())


def test_reusing_the_id_of_a_finished_order_is_an_error(tmp_path: Path) -> None:
    async def run() -> None:
        gateway, paper = paper_gateway(tmp_path)
        await gateway.start()
        paper.set_quote("AAPL", D("99.99"), D("100.01"))
        done = await gateway.submit_order(market("m-1"))
        await settle(gateway)
        assert gateway.order("m-1").status is S.FILLED, done
        with pytest.raises(DuplicateClientOrderIdError, match="m-1"):
            await gateway.submit_order(market("m-1"))
        await gateway.stop()

    asyncio.run(run())


def test_generated_ids_are_unique_and_valid() -> None:
    async def run() -> None:
        gateway, broker = scripted_gateway()
        await gateway.start()
        orders = [await gateway.submit_order(limit()) for _ in range(50)]
        ids = {o.client_order_id for o in orders}
        assert len(ids) == 50 and all(broker.placed[i] == 1 for i in ids)
        await gateway.stop()

    asyncio.run(run())


def test_market_partial_and_limit_fills_through_paper(tmp_path: Path) -> None:
    async def run() -> None:
        gateway, paper = paper_gateway(tmp_path)
        orders: list[OrderSnapshot] = []
        fills: list[Fill] = []
        execs: list[ExecutionReport] = []
        gateway.on_order(orders.append)
        gateway.on_trade(fills.append)
        gateway.on_execution_report(execs.append)
        await gateway.start()
        paper.set_quote("AAPL", D("99.99"), D("100.01"), bid_size=D(500), ask_size=D(300))
        await gateway.submit_order(market("big", qty=800))
        await settle(gateway)
        assert gateway.order("big").status is S.PARTIALLY_FILLED
        assert gateway.order("big").filled_qty == 300
        paper.set_quote("AAPL", D("99.99"), D("100.02"), bid_size=D(500), ask_size=D(1000))
        await settle(gateway)
        big = gateway.order("big")
        assert big.status is S.FILLED and big.filled_qty == 800
        assert big.avg_fill_price == (D(300) * D("100.01") + D(500) * D("100.02")) / 800

        await gateway.submit_order(limit("rest", qty=100, price="101.00", side="SELL"))
        await settle(gateway)
        assert gateway.order("rest").status is S.SUBMITTED
        paper.set_quote("AAPL", D("101.50"), D("101.60"))
        await settle(gateway)
        assert gateway.order("rest").status is S.FILLED
        assert gateway.order("rest").avg_fill_price == D("101.50")

        assert [f.quantity for f in fills] == [300, 500, 100]
        position = gateway.positions()[0]
        assert position.quantity == 700
        cash = gateway.cash()
        fees = sum((f.fee for f in fills), D(0))
        assert fees > 0 and cash.fees_paid == fees
        notional = sum((f.quantity * f.price * (1 if f.side == "BUY" else -1) for f in fills), D(0))
        assert cash.balance == D(1_000_000) - notional - fees
        # The gateway's books agree with the broker's own.
        broker_view = paper.broker.account()
        assert broker_view.cash == cash.balance
        assert broker_view.positions[0].quantity == 700
        # Every callback carries both ids.
        assert all(o.broker_order_id and o.client_order_id for o in orders)
        assert all(f.broker_order_id and f.client_order_id for f in fills)
        assert all(e.broker_order_id and e.client_order_id for e in execs)
        assert [e.last_qty for e in execs if e.trade_id] == [300, 500, 100]
        await gateway.stop()

    asyncio.run(run())


def test_cancel_is_idempotent_and_sends_one_request() -> None:
    async def run() -> None:
        gateway, broker = scripted_gateway()
        await gateway.start()
        await gateway.submit_order(limit("c-1"))
        results = await asyncio.gather(*(gateway.cancel_order("c-1") for _ in range(5)))
        assert broker.cancels["c-1"] == 1
        assert {r.status for r in results} == {S.PENDING_CANCEL}
        broker.push(OrderReport(S.CANCELLED, "c-1", "B-c-1"))
        await settle(gateway)
        final = await gateway.cancel_order(broker_order_id="B-c-1")
        assert final.status is S.CANCELLED
        assert broker.cancels["c-1"] == 1
        with pytest.raises(OrderNotFoundError):
            await gateway.cancel_order("nope")
        await gateway.stop()

    asyncio.run(run())


def test_cancel_refused_by_broker_restores_order_and_allows_another_try() -> None:
    async def run() -> None:
        gateway, broker = scripted_gateway()
        await gateway.start()
        await gateway.submit_order(limit("c-2"))
        broker.cancel_error = BrokerRejected("not now")
        refused = await gateway.cancel_order("c-2")
        assert refused.status is S.SUBMITTED and "not now" in refused.reject_text
        broker.cancel_error = None
        retried = await gateway.cancel_order("c-2")
        assert retried.status is S.PENDING_CANCEL and broker.cancels["c-2"] == 2
        await gateway.stop()

    asyncio.run(run())


def test_broker_rejection_is_a_rejected_order_not_an_error() -> None:
    async def run() -> None:
        gateway, broker = scripted_gateway()
        seen: list[OrderSnapshot] = []
        gateway.on_order(seen.append)
        await gateway.start()
        broker.place_error = BrokerRejected("no margin", RejectReason.INSUFFICIENT_FUNDS)
        order = await gateway.submit_order(limit("r-1"))
        assert order.status is S.REJECTED
        assert order.reject_reason is RejectReason.INSUFFICIENT_FUNDS
        assert order.reject_text == "no margin"
        assert seen[-1].status is S.REJECTED
        await gateway.stop()

    asyncio.run(run())


def test_unreachable_broker_denies_and_timeout_is_unknown_never_rejected() -> None:
    async def run() -> None:
        gateway, broker = scripted_gateway()
        await gateway.start()
        broker.place_error = BrokerNetworkError("down")
        denied = await gateway.submit_order(limit("n-1"))
        assert denied.status is S.REJECTED and denied.reject_reason is RejectReason.NOT_READY
        # Certainly not sent, so safe to try again: the policy's two retries, then refused.
        assert broker.placed["n-1"] == 1 + gateway.config.retry.network_retries
        broker.place_error = UnknownOutcome("timed out")
        unknown = await gateway.submit_order(limit("u-1"))
        assert unknown.status is S.UNKNOWN
        # A duplicate submit of an unknown order sends nothing again.
        assert (await gateway.submit_order(limit("u-1"))).status is S.UNKNOWN
        assert broker.placed["u-1"] == 1
        # Its fate arrives later from the broker.
        broker.push(OrderReport(S.SUBMITTED, "u-1", "B-u-1"))
        await settle(gateway)
        assert gateway.order("u-1").status is S.SUBMITTED
        await gateway.stop()

    asyncio.run(run())


def test_intent_is_durable_before_the_broker_sees_it(tmp_path: Path) -> None:
    async def run() -> None:
        store = SQLiteStore(tmp_path / "j.sqlite")
        gateway, broker = scripted_gateway(store)
        await gateway.start()
        seen_in_store: list[bool] = []
        real_place = broker.place

        async def checking_place(intent: OrderIntent) -> str | None:
            # Read the file through a second connection: committed means on disk.
            import sqlite3

            with sqlite3.connect(tmp_path / "j.sqlite") as conn:
                rows = conn.execute(
                    "SELECT kind FROM events WHERE client_order_id = ?", (intent.client_order_id,)
                ).fetchall()
            seen_in_store.append(("intent",) in rows)
            return await real_place(intent)

        broker.place = checking_place  # type: ignore[method-assign]
        await gateway.submit_order(limit("w-1"))
        assert seen_in_store == [True]
        await gateway.stop()

    asyncio.run(run())


def test_reports_are_journaled_before_callbacks_see_them() -> None:
    async def run() -> None:
        store = MemoryStore()
        gateway, broker = scripted_gateway(store)
        journaled_at_callback: list[bool] = []

        def on_order(snapshot: OrderSnapshot) -> None:
            events = [decode_event(r.payload) for r in store.records]
            journaled_at_callback.append(
                any(
                    isinstance(e, Received)
                    and isinstance(e.report, OrderReport)
                    and e.report.status is snapshot.status
                    for e in events
                )
                or snapshot.status is S.SUBMITTED
            )

        gateway.on_order(on_order)
        await gateway.start()
        await gateway.submit_order(limit("j-1"))
        broker.push(OrderReport(S.CANCELLED, "j-1", "B-j-1"))
        await settle(gateway)
        assert journaled_at_callback and all(journaled_at_callback)
        await gateway.stop()

    asyncio.run(run())


def test_a_failing_callback_does_not_stop_ingest() -> None:
    async def run() -> None:
        gateway, broker = scripted_gateway()

        def broken(_: object) -> None:
            raise RuntimeError("strategy bug")

        gateway.on_order(broken)
        await gateway.start()
        await gateway.submit_order(limit("cb-1"))
        broker.push(OrderReport(S.CANCELLED, "cb-1", "B-cb-1"))
        await settle(gateway)
        assert gateway.order("cb-1").status is S.CANCELLED
        assert gateway.callback_errors == 2
        await gateway.stop()

    asyncio.run(run())


def test_restart_rebuilds_state_from_the_journal_and_resends_nothing(tmp_path: Path) -> None:
    async def first_run() -> dict[str, tuple[S, D]]:
        gateway, paper = paper_gateway(tmp_path)
        await gateway.start()
        paper.set_quote("AAPL", D("99.99"), D("100.01"), ask_size=D(50))
        await gateway.submit_order(market("p-1", qty=80))
        await gateway.submit_order(limit("p-2", price="90.00"))
        await gateway.submit_order(limit("p-3", price="90.00"))
        await gateway.cancel_order("p-3")
        await settle(gateway)
        state = {o.client_order_id: (o.status, o.filled_qty) for o in gateway.orders()}
        await gateway.stop()
        return state

    async def second_run(expected: dict[str, tuple[S, D]]) -> None:
        gateway, paper = paper_gateway(tmp_path)
        await gateway.start()
        assert {o.client_order_id: (o.status, o.filled_qty) for o in gateway.orders()} == expected
        assert paper.broker.duplicate_place_attempts == 0
        # The broker moved on while we were down? Not here; but sends stay at one.
        again = await gateway.submit_order(limit("p-2", price="90.00"))
        assert again.status is S.SUBMITTED and paper.broker.duplicate_place_attempts == 0
        assert len(paper.broker.orders) == 3
        await gateway.stop()

    state = asyncio.run(first_run())
    assert state == {
        "p-1": (S.PARTIALLY_FILLED, D(50)),
        "p-2": (S.SUBMITTED, D(0)),
        "p-3": (S.CANCELLED, D(0)),
    }
    asyncio.run(second_run(state))


def test_restart_picks_up_fills_that_happened_while_down(tmp_path: Path) -> None:
    async def run() -> None:
        gateway, paper = paper_gateway(tmp_path)
        await gateway.start()
        paper.set_quote("AAPL", D("99.99"), D("100.01"), ask_size=D(30))
        await gateway.submit_order(market("d-1", qty=100))
        await settle(gateway)
        await gateway.stop()
        # The broker keeps trading while the gateway is down.
        paper.broker.open()
        paper.broker.set_quote("AAPL", D("99.99"), D("100.02"), ask_size=D(1000))
        paper.broker.close()

        gateway, paper = paper_gateway(tmp_path)
        await gateway.start()
        order = gateway.order("d-1")
        assert order.status is S.FILLED and order.filled_qty == 100
        assert len({f.trade_id for f in gateway.trades()}) == len(gateway.trades()) == 2
        assert gateway.positions()[0].quantity == 100
        await gateway.stop()

    asyncio.run(run())


def test_not_running_gateway_refuses_orders() -> None:
    async def run() -> None:
        gateway, _ = scripted_gateway()
        with pytest.raises(GatewayNotRunningError):
            await gateway.submit_order(limit())

    asyncio.run(run())


def test_sync_facade_drives_the_gateway_from_plain_threads(tmp_path: Path) -> None:
    gateway, paper = paper_gateway(tmp_path)
    with SyncGateway(gateway) as sync:
        sync.call_in_loop(lambda: paper.set_quote("AAPL", D("99.99"), D("100.01")))
        order = sync.submit_order(market("s-1", qty=10))
        assert order.client_order_id == "s-1" and order.broker_order_id
        resting = sync.submit_order(limit("s-2", price="50.00"))
        assert sync.cancel_order("s-2").status in (S.PENDING_CANCEL, S.CANCELLED)
        sync.sync()
        assert sync.order("s-2").status is S.CANCELLED, resting
        assert sync.order("s-1").status is S.FILLED
        assert len(sync.trades()) == 1 and sync.positions()[0].quantity == 10
        assert len(sync.orders(open_only=True)) == 0
        assert sync.cash().balance < D(1_000_000)


def test_a_hung_place_times_out_into_unknown_and_a_hung_cancel_stays_pending() -> None:
    async def run() -> None:
        config = GatewayConfig(place_timeout=0.05, cancel_timeout=0.05)
        gateway, broker = scripted_gateway(config=config)
        await gateway.start()
        broker.hang = True
        started = time.monotonic()
        order = await gateway.submit_order(limit("h-1"))
        assert order.status is S.UNKNOWN and time.monotonic() - started < 2
        broker.hang = False
        await gateway.submit_order(limit("h-2"))
        broker.hang = True
        pending = await gateway.cancel_order("h-2")
        assert pending.status is S.PENDING_CANCEL
        assert broker.placed == {"h-1": 1, "h-2": 1} and broker.cancels["h-2"] == 1
        await gateway.stop()

    asyncio.run(run())


def test_cancelling_the_caller_is_not_mistaken_for_a_timeout() -> None:
    async def run() -> None:
        gateway, broker = scripted_gateway(config=GatewayConfig(place_timeout=30))
        await gateway.start()
        broker.hang = True
        task = asyncio.create_task(gateway.submit_order(limit("k-1")))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await settle(gateway)
        # It may have gone out: unknown, to be asked about, never resent.
        assert gateway.order("k-1").status is S.UNKNOWN
        assert broker.placed["k-1"] == 1
        await gateway.stop()

    asyncio.run(run())


def test_basket_sends_new_orders_once_and_returns_existing_ones(tmp_path: Path) -> None:
    async def run() -> None:
        gateway, paper = paper_gateway(tmp_path)
        await gateway.start()
        paper.set_quote("AAPL", D("99.99"), D("100.01"))
        await gateway.submit_order(limit("old", price="90.00"))
        basket = [
            limit("old", price="90.00"),  # active: returned, not resent
            market("b-1", qty=10),
            limit("b-2", price="95.00"),
            OrderRequest(
                symbol="MSFT", side="BUY", quantity=1, order_type="MARKET", client_order_id="b-3"
            ),  # no MSFT quote: the broker refuses
        ]
        result = await gateway.submit_orders(basket)
        assert [o.client_order_id for o in result] == ["old", "b-1", "b-2", "b-3"]
        assert result[0].broker_order_id == "P000000001"
        assert result[1].broker_order_id and result[2].status is S.SUBMITTED
        assert result[3].status is S.REJECTED
        assert result[3].reject_reason is RejectReason.NO_LIQUIDITY
        await settle(gateway)
        assert gateway.order("b-1").status is S.FILLED
        assert paper.broker.duplicate_place_attempts == 0 and len(paper.broker.orders) == 3
        await gateway.stop()

    asyncio.run(run())


def test_a_bad_order_refuses_the_whole_basket_with_nothing_recorded() -> None:
    async def run() -> None:
        store = MemoryStore()
        gateway, broker = scripted_gateway(store)
        await gateway.start()
        before = len(store.records)
        with pytest.raises(InvalidOrderError, match="tick"):
            await gateway.submit_orders([limit("ok-1"), limit("bad", price="1.001")])
        with pytest.raises(DuplicateClientOrderIdError, match="twice"):
            await gateway.submit_orders([limit("twice"), limit("twice")])
        await gateway.journal.drain()
        assert len(store.records) == before and not broker.placed and gateway.orders() == []
        await gateway.stop()

    asyncio.run(run())


def test_basket_without_place_many_and_its_timeout() -> None:
    async def run() -> None:
        gateway, broker = scripted_gateway(config=GatewayConfig(place_timeout=0.05))
        await gateway.start()
        sent = await gateway.submit_orders([limit(f"g-{i}") for i in range(5)])
        assert [o.broker_order_id for o in sent] == [f"B-g-{i}" for i in range(5)]
        broker.hang = True
        stuck = await gateway.submit_orders([limit("t-1"), limit("t-2")])
        assert [o.status for o in stuck] == [S.UNKNOWN, S.UNKNOWN]
        assert broker.placed["t-1"] == broker.placed["t-2"] == 1
        await gateway.stop()

    asyncio.run(run())


def test_restart_with_a_cancel_pending_on_an_unacknowledged_order(tmp_path: Path) -> None:
    async def run() -> None:
        store = SQLiteStore(tmp_path / "j.sqlite")
        gateway, broker = scripted_gateway(store)
        await gateway.start()
        broker.hang = True  # the submit never returns: the process dies mid-send
        task = asyncio.create_task(gateway.submit_order(limit("pc-1")))
        await asyncio.sleep(0.01)
        broker.hang = False
        await gateway.cancel_order("pc-1")
        assert gateway.order("pc-1").status is S.PENDING_CANCEL
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await gateway.journal.drain()
        await gateway.stop()

        again, broker2 = scripted_gateway(SQLiteStore(tmp_path / "j.sqlite"))
        await again.start()
        # The cancel died with the process; the broker has never heard of it.
        order = again.order("pc-1")
        assert order.status is S.UNKNOWN and order.broker_order_id is None
        assert "pc-1" not in broker2.placed
        await again.stop()

    asyncio.run(run())
