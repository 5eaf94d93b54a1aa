"""Shared test parts: instruments, gateways on real stores, a broker the test scripts."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from pathlib import Path

from livegate.broker.adapter import Capabilities
from livegate.broker.errors import BrokerNetworkError
from livegate.broker.paper import PaperAdapter, PaperConfig
from livegate.engine import Gateway, GatewayConfig
from livegate.journal import Journal, MemoryStore, SQLiteStore, Store
from livegate.model import (
    AccountSnapshot,
    BrokerReport,
    Instrument,
    InstrumentRegistry,
    OrderIntent,
    OrderReport,
    OrderRequest,
    OrderStatus,
    Side,
    TradeReport,
)

D = Decimal

INSTRUMENTS = InstrumentRegistry(
    [
        Instrument("AAPL", D("0.01"), currency="USD", exchange="XNAS"),
        Instrument("MSFT", D("0.01"), currency="USD", exchange="XNAS"),
        Instrument("600000.SH", D("0.01"), lot_size=D(100), min_qty=D(100), currency="CNY"),
    ]
)


class ScriptedBroker:
    """A broker whose every report the test decides; it records what it was sent."""

    name = "scripted"
    capabilities = Capabilities(query_by_client_order_id=True, cancel_by_client_order_id=True)

    def __init__(self) -> None:
        self.placed: Counter[str] = Counter()
        self.cancels: Counter[str] = Counter()
        self.place_error: Exception | None = None
        self.hang = False  # place/cancel never answer, like a stalled connection
        self.cancel_error: Exception | None = None
        self.status: dict[str, OrderReport] = {}
        self.snapshot = AccountSnapshot("test", "USD", D(100_000), D(100_000))
        self.connects = 0
        self.refuse_connects = 0  # the next N connects fail, like a broker that is down
        self.connect_error: Exception = BrokerNetworkError("connection refused")
        self.trades: list[TradeReport] = []
        self.place_errors: list[Exception] = []  # raised by the next places, in order
        self.heartbeat_delay = 0.0
        self.clock_offset_ns: int | None = None  # None: the broker gives no clock
        self.closes = 0
        self._queue: asyncio.Queue[BrokerReport | None] = asyncio.Queue()

    async def connect(self) -> None:
        self.connects += 1
        if self.refuse_connects > 0:
            self.refuse_connects -= 1
            raise self.connect_error
        self._queue = asyncio.Queue()

    def drop(self) -> None:
        """The connection breaks: the report stream ends."""
        self._queue.put_nowait(None)

    async def close(self) -> None:
        self.closes += 1
        self._queue.put_nowait(None)

    async def heartbeat(self) -> int:
        if self.heartbeat_delay:
            await asyncio.sleep(self.heartbeat_delay)
        return 0 if self.clock_offset_ns is None else time.time_ns() + self.clock_offset_ns

    async def place(self, intent: OrderIntent) -> str | None:
        self.placed[intent.client_order_id] += 1
        if self.place_errors:
            raise self.place_errors.pop(0)
        if self.hang:
            await asyncio.Event().wait()
        if self.place_error is not None:
            raise self.place_error
        return "B-" + intent.client_order_id

    async def cancel(self, client_order_id: str, broker_order_id: str | None) -> None:
        self.cancels[client_order_id] += 1
        if self.hang:
            await asyncio.Event().wait()
        if self.cancel_error is not None:
            raise self.cancel_error

    async def order_status(
        self, client_order_id: str, broker_order_id: str | None
    ) -> OrderReport | None:
        return self.status.get(client_order_id)

    async def open_orders(self) -> Sequence[OrderReport]:
        return [r for r in self.status.values() if r.status.is_open]

    async def today_trades(self) -> Sequence[TradeReport]:
        return list(self.trades)

    async def account(self) -> AccountSnapshot:
        return self.snapshot

    async def reports(self) -> AsyncIterator[BrokerReport]:
        while (item := await self._queue.get()) is not None:
            yield item

    def push(self, report: BrokerReport) -> None:
        self._queue.put_nowait(report)


def scripted_gateway(
    store: Store | None = None, config: GatewayConfig | None = None
) -> tuple[Gateway, ScriptedBroker]:
    broker = ScriptedBroker()
    gateway = Gateway(broker, Journal(store or MemoryStore()), INSTRUMENTS, config)
    return gateway, broker


def paper_gateway(
    directory: Path, config: PaperConfig | None = None, store: Store | None = None
) -> tuple[Gateway, PaperAdapter]:
    """`store`: the journal's; default SQLite in `directory` (see `crash_store`)."""
    adapter = PaperAdapter(directory / "paper.sqlite", config)
    store = store if store is not None else SQLiteStore(directory / "journal.sqlite")
    return Gateway(adapter, Journal(store), INSTRUMENTS), adapter


def crash_store(directory: Path) -> Store:
    """The journal a crash test's gateway writes: SQLite in `directory`, or PostgreSQL when
    `directory/postgres-account` names an account (the lease taken as a restart would:
    waiting out the killed holder's, whose TTL is short)."""
    marker = directory / "postgres-account"
    if not marker.exists():
        return SQLiteStore(directory / "journal.sqlite")
    import os

    from livegate.journal.lease import Lease
    from livegate.journal.postgres import PostgresStore

    dsn, account = os.environ["LIVEGATE_TEST_POSTGRES"], marker.read_text().strip()
    lease = Lease(dsn, account, ttl=1.0)
    lease.connect()
    deadline = time.monotonic() + 10
    while not lease.try_acquire():
        assert time.monotonic() < deadline, "the killed holder's lease never lapsed"
        time.sleep(0.05)
    lease.start_renewing()
    return PostgresStore(dsn, account, lease)


def crash_payloads(directory: Path) -> list[str | bytes]:
    """Every journaled event's JSON in seq order, from whichever store `crash_store` used."""
    marker = directory / "postgres-account"
    if not marker.exists():
        import sqlite3

        with sqlite3.connect(directory / "journal.sqlite") as conn:
            return [p for (p,) in conn.execute("SELECT payload FROM events ORDER BY seq")]
    import os

    from livegate.journal.postgres import PostgresStore

    reader = PostgresStore(os.environ["LIVEGATE_TEST_POSTGRES"], marker.read_text().strip())
    reader.open()
    try:
        return [r.payload for r in reader.read()]
    finally:
        reader.close()


async def settle(gateway: Gateway, rounds: int = 3) -> None:
    """Let queued reports flow from the broker through journal and book."""
    for _ in range(rounds):
        if isinstance(gateway.adapter, PaperAdapter):
            await gateway.adapter.quiesce()
        await asyncio.sleep(0)
        await gateway.journal.drain()
        await asyncio.sleep(0)


def start_and_stop(data: Path) -> None:
    """Start and stop a paper gateway on `data` (with its control folder): a data
    folder of a stopped gateway, which journals what was left for it on each start."""

    async def run() -> None:
        gateway, _ = paper_gateway(data)
        gateway.config.control_dir = data / "control"
        await gateway.start()
        await gateway.stop()

    data.mkdir(parents=True, exist_ok=True)
    asyncio.run(run())


async def filled_orders(
    journal: Path,
    coids: list[str],
    *,
    stop: bool = True,
    checkpoint_each: bool = False,
    retain_hours: float = 26.0,
    left_in_flight: str | None = None,
) -> None:
    """A session of limit buys, each filled, on a SQLite journal through a scripted
    broker. `stop`: a clean stop (its checkpoint retires what finished `retain_hours`
    ago), else a crash; `checkpoint_each`: a checkpoint after every order;
    `left_in_flight`: one more order sent and never answered before the end."""
    config = GatewayConfig(heartbeat_interval=None, retain_hours=retain_hours)
    gateway, broker = scripted_gateway(SQLiteStore(journal), config)
    await gateway.start()
    for coid in coids:
        await gateway.submit_order(
            OrderRequest(symbol="AAPL", side="BUY", quantity=10, price="20", client_order_id=coid)
        )
        boid = "B-" + coid
        broker.trades.append(TradeReport(D(10), D(20), coid, boid, "T" + coid, "AAPL", Side.BUY))
        broker.status[coid] = OrderReport(OrderStatus.FILLED, coid, boid, D(10), D(20))
        broker.push(broker.trades[-1])
        broker.push(broker.status[coid])
        await settle(gateway)
        if checkpoint_each:
            await gateway.pipeline.checkpoint(force=True)
    if left_in_flight is not None:
        await gateway.submit_order(
            OrderRequest(
                symbol="AAPL", side="BUY", quantity=1, price="20", client_order_id=left_in_flight
            )
        )
    if stop:
        await gateway.stop()
    else:
        await gateway.journal.close()
        gateway.supervisor.cancel_stream()
