"""The kill switch against the sim broker (a separate process): 500 open orders all
cancelled, cancels during an outage sent once it is back, and a second safe-stop
that sends nothing new; and through `livegate safe-stop` beside `livegate serve`."""

from __future__ import annotations

import asyncio
import secrets
import time
from decimal import Decimal
from pathlib import Path

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


def journal_events(gateway: Gateway, kind: type) -> list:  # type: ignore[type-arg]
    return [e for _, e in gateway.journal.replay() if isinstance(e, kind)]


def test_safe_stop_cancels_500_open_orders_at_the_sim_broker_and_twice_sends_nothing(
    tmp_path: Path,
) -> None:
    key = f"lg_sim_{secrets.token_hex(8)}"
    sim = SimProcess(tmp_path / "sim", key)
    (tmp_path / "sim").mkdir()
    sim.start()

    async def run() -> None:
        gateway = sim_gateway(tmp_path, sim, key)
        await gateway.start()
        try:
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
        finally:
            await gateway.stop()

    try:
        asyncio.run(run())
    finally:
        sim.stop()


def test_safe_stop_during_a_broker_outage_sends_the_cancels_once_it_is_back(
    tmp_path: Path,
) -> None:
    key = f"lg_sim_{secrets.token_hex(8)}"
    (tmp_path / "sim").mkdir()
    sim = SimProcess(tmp_path / "sim", key)
    sim.start()

    async def run() -> None:
        gateway = sim_gateway(tmp_path, sim, key)
        await gateway.start()
        try:
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
            assert gateway.book.release.safe_stop is None
        finally:
            await gateway.stop()

    try:
        asyncio.run(run())
    finally:
        sim.stop()


def test_an_unfinished_safe_stop_resumes_after_a_restart(tmp_path: Path) -> None:
    key = f"lg_sim_{secrets.token_hex(8)}"
    (tmp_path / "sim").mkdir()
    sim = SimProcess(tmp_path / "sim", key)
    sim.start()

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

    try:
        asyncio.run(run())
    finally:
        sim.stop()
