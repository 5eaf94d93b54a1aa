"""The kill switch against the sim broker (a separate process): 500 open orders all
cancelled, cancels during an outage sent once it is back, and a second safe-stop
that sends nothing new; and through `livegate safe-stop` beside `livegate serve`."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from livegate.broker.sim import SimAdapter
from livegate.drills.sim_process import SimProcess, until
from livegate.engine import Gateway, GatewayConfig
from livegate.journal import Journal, SQLiteStore
from livegate.model import OrderRequest, OrderStatus
from livegate.model.enums import TradingState
from livegate.model.events import CancelRequested, SafeStopReport, SafeStopRequested
from livegate.model.samples import demo_instruments
from livegate.model.secret import Secret

D = Decimal


def sim_gateway(directory: Path, sim: SimProcess, key: str) -> Gateway:
    config = GatewayConfig(
        account="safe-stop",
        heartbeat_interval=0.2,
        heartbeat_timeout=0.5,
        reconnect_delay=0.1,
        reconnect_max_delay=0.3,
        cancel_timeout=3.0,
        place_timeout=3.0,
        gil_switch_interval=None,
    )
    adapter = SimAdapter("127.0.0.1", sim.port, Secret(key), "sim")
    journal = Journal(SQLiteStore(directory / "journal.sqlite"))
    return Gateway(adapter, journal, demo_instruments(), config)


async def rest_orders(gateway: Gateway, sim: SimProcess, count: int) -> list[str]:
    """`count` buy orders well below the market: they rest at the broker."""
    symbol = next(iter(demo_instruments())).symbol
    await sim.control("quote", symbol=symbol, bid="100.00", ask="100.02")
    requests = [
        OrderRequest(symbol=symbol, side="BUY", quantity=1, price=D("90.00") - D(i % 50) / 100)
        for i in range(count)
    ]
    placed = []
    for start in range(0, count, 100):
        placed += await gateway.submit_orders(requests[start : start + 100])
    ids = [o.client_order_id for o in placed]
    assert await until(
        lambda: all(gateway.order(c).status is OrderStatus.SUBMITTED for c in ids), 20
    )
    return ids


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimProcess]:
    """A sim broker process for the test (its key in `.key`), stopped afterwards."""
    (tmp_path / "sim").mkdir()
    process = SimProcess(tmp_path / "sim", f"lg_sim_{secrets.token_hex(8)}")
    process.start()
    yield process
    process.stop()


@contextlib.asynccontextmanager
async def running(directory: Path, sim: SimProcess) -> AsyncIterator[Gateway]:
    gateway = sim_gateway(directory, sim, sim.key)
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()


def journal_events(gateway: Gateway, kind: type) -> list:  # type: ignore[type-arg]
    return [e for _, e in gateway.journal.replay() if isinstance(e, kind)]


def test_safe_stop_cancels_500_open_orders_at_the_sim_broker_and_twice_sends_nothing(
    tmp_path: Path, sim: SimProcess
) -> None:
    async def run() -> None:
        async with running(tmp_path, sim) as gateway:
            ids = await rest_orders(gateway, sim, 500)
            asked = time.monotonic()
            report = await gateway.safe_stop("ops", "drill: 500 open orders")
            took = time.monotonic() - asked
            print(f"safe-stop of 500 open orders: {report.millis} ms to the last confirmed cancel")
            assert report.complete, report
            assert report.cancelled == 500 and report.remaining == ()
            assert gateway.trading_state is TradingState.HALTED
            assert all(gateway.order(c).status is OrderStatus.CANCELLED for c in ids)
            assert await gateway.adapter.open_orders() == []  # the broker agrees
            assert took < 30  # a liveness bound, not the goal (the goal is printed above)
            # HALTED came first, then the request, then the cancels.
            kinds = [type(e).__name__ for _, e in gateway.journal.replay()]
            first_cancel = kinds.index("CancelRequested")
            assert kinds.index("SafeStopRequested") < first_cancel
            assert kinds[: kinds.index("SafeStopRequested")].count("TradingStateChanged") == 1
            # A new order now is refused by the kill switch.
            refused = await gateway.submit_order(
                OrderRequest(symbol=gateway.order(ids[0]).symbol, side="BUY", quantity=1,
                             price=D("90.00"))
            )  # fmt: skip
            assert refused.reject_reason is not None
            assert refused.reject_reason.value == "KILL_SWITCH"

            cancels = len(journal_events(gateway, CancelRequested))
            again = await gateway.safe_stop("ops", "pressed twice")
            assert again.complete and again.cancelled == 0
            assert len(journal_events(gateway, CancelRequested)) == cancels  # nothing new
            assert len(journal_events(gateway, SafeStopRequested)) == 2

    asyncio.run(run())


def test_safe_stop_during_a_broker_outage_sends_the_cancels_once_it_is_back(
    tmp_path: Path, sim: SimProcess
) -> None:
    async def run() -> None:
        async with running(tmp_path, sim) as gateway:
            ids = await rest_orders(gateway, sim, 40)
            sim.kill()  # the broker is gone; its book is on disk
            assert await until(lambda: not gateway.ready, 5)
            report = await gateway.safe_stop("ops", "broker down", wait=1.0)
            assert not report.complete
            assert set(report.remaining) == set(ids)  # said what is still open
            assert gateway.trading_state is TradingState.HALTED
            sim.start()  # same ports: the gateway reconnects by itself
            assert await until(
                lambda: all(gateway.order(c).status is OrderStatus.CANCELLED for c in ids), 30
            ), [gateway.order(c).status for c in ids][:5]
            assert await gateway.adapter.open_orders() == []
            reports = journal_events(gateway, SafeStopReport)
            assert await until(lambda: any(r.complete for r in journal_events(
                gateway, SafeStopReport)), 5), reports  # fmt: skip
            # The book applies the report once durable, a loop turn after the store has it.
            assert await until(lambda: gateway.book.release.safe_stop is None, 5)

    asyncio.run(run())


def test_an_unfinished_safe_stop_resumes_after_a_restart(tmp_path: Path, sim: SimProcess) -> None:
    key = sim.key

    async def run() -> None:
        gateway = sim_gateway(tmp_path, sim, key)
        await gateway.start()
        ids = await rest_orders(gateway, sim, 20)
        sim.kill()
        assert await until(lambda: not gateway.ready, 5)
        report = await gateway.safe_stop("ops", "broker down, then we restart", wait=0.5)
        assert not report.complete
        await gateway.stop()  # the gateway goes down too, with the stop unfinished
        sim.start()
        gateway = sim_gateway(tmp_path, sim, key)
        await gateway.start()
        try:
            assert gateway.trading_state is TradingState.HALTED
            assert await until(
                lambda: all(gateway.order(c).status is OrderStatus.CANCELLED for c in ids), 30
            )
            assert await gateway.adapter.open_orders() == []
        finally:
            await gateway.stop()

    asyncio.run(run())


def test_flatten_closes_every_position_with_reduce_only_orders_once(tmp_path: Path) -> None:
    from .helpers import paper_gateway, settle

    async def run() -> None:
        gateway, paper = paper_gateway(tmp_path)
        await gateway.start()
        try:
            paper.set_quote("AAPL", D("99.99"), D("100.01"))
            paper.set_quote("MSFT", D("99.99"), D("100.01"))
            await gateway.submit_order(
                OrderRequest(symbol="AAPL", side="BUY", quantity=7, order_type="MARKET")
            )
            await gateway.submit_order(
                OrderRequest(symbol="MSFT", side="SELL", quantity=4, order_type="MARKET")
            )
            resting = await gateway.submit_order(
                OrderRequest(symbol="AAPL", side="BUY", quantity=1, price=D("90.00"))
            )
            await settle(gateway)
            assert {p.symbol: p.quantity for p in gateway.positions()} == {
                "AAPL": D(7),
                "MSFT": D(-4),
            }
            report = await gateway.safe_stop("ops", "flat for the night", flatten=True)
            await settle(gateway)
            assert report.complete and report.cancelled == 1 and len(report.flattened) == 2
            assert gateway.order(resting.client_order_id).status is OrderStatus.CANCELLED
            assert gateway.positions() == []
            closing = [gateway.order(c) for c in report.flattened]
            assert {(o.symbol, o.side.value, o.quantity) for o in closing} == {
                ("AAPL", "SELL", D(7)),
                ("MSFT", "BUY", D(4)),
            }
            # HALTED still refuses the strategy's own orders; a second press sends nothing.
            refused = await gateway.submit_order(
                OrderRequest(symbol="AAPL", side="SELL", quantity=1, order_type="MARKET")
            )
            assert refused.reject_reason is not None and refused.reject_reason.value == (
                "KILL_SWITCH"
            )
            again = await gateway.safe_stop("ops", "again", flatten=True)
            assert again.complete and again.cancelled == 0 and again.flattened == ()
        finally:
            await gateway.stop()

    asyncio.run(run())


def test_a_cancel_the_broker_keeps_refusing_is_listed_by_id_not_hammered() -> None:
    from livegate.broker.errors import BrokerRejected

    from .helpers import scripted_gateway

    async def run() -> None:
        gateway, broker = scripted_gateway()
        await gateway.start()
        try:
            placed = await gateway.submit_order(
                OrderRequest(symbol="AAPL", side="BUY", quantity=1, price=D("1.00"))
            )
            broker.cancel_error = BrokerRejected("order is locked by the exchange")
            report = await gateway.safe_stop("ops", "stuck order", wait=2.0)
            coid = placed.client_order_id
            assert not report.complete and report.remaining == (coid,)
            assert len(report.refused) == 1 and report.refused[0].startswith(coid)
            assert broker.cancels[coid] == 3  # tried, then listed
        finally:
            await gateway.stop()

    asyncio.run(run())
