"""Running a capture through the gateway's real ingest, with no broker behind it.

The `ReplayBroker` plays the capture's reports onto the report stream and
keeps the broker's view so far (latest report per order, trades), which is
what recovery sees after a `restart` line. Everything else is the ordinary
gateway: journal (in memory), dedup, ordering, state machine, recovery.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from livegate.broker.adapter import Capabilities
from livegate.drills.capture import CancelLine, CaptureLine, RestartLine, SubmitLine
from livegate.engine.gateway import Gateway, GatewayConfig
from livegate.journal import Journal, MemoryStore
from livegate.journal.journal import decode_event
from livegate.model import (
    AccountSnapshot,
    BrokerReport,
    Fill,
    Instrument,
    InstrumentRegistry,
    OrderIntent,
    OrderReport,
    OrderRequest,
    OrderSnapshot,
    Position,
    TradeReport,
)
from livegate.model.events import Anomalies, Anomaly


class ReplayBroker:
    name = "replay"
    capabilities = Capabilities(query_by_client_order_id=True)

    def __init__(self) -> None:
        self.latest: dict[str, OrderReport] = {}  # by client id, else broker id
        self.trades: dict[str, TradeReport] = {}
        self._queue: asyncio.Queue[BrokerReport | None] = asyncio.Queue()

    def learn(self, report: BrokerReport) -> None:
        """The broker's own view moves on (whether or not we hear about it)."""
        if isinstance(report, TradeReport):
            self.trades.setdefault(report.dedup_key(), report)
        elif isinstance(report, OrderReport):
            key = report.client_order_id or report.broker_order_id or ""
            previous = self.latest.get(key)
            if previous is None or (report.cum_qty or 0) >= (previous.cum_qty or 0):
                self.latest[key] = report

    def deliver(self, report: BrokerReport) -> None:
        self.learn(report)
        self._queue.put_nowait(report)

    async def connect(self) -> None:
        self._queue = asyncio.Queue()

    async def close(self) -> None:
        self._queue.put_nowait(None)

    async def heartbeat(self) -> int:
        return 0

    async def place(self, intent: OrderIntent) -> str | None:
        return None  # the capture's own reports acknowledge it

    async def cancel(self, client_order_id: str, broker_order_id: str | None) -> None:
        return None  # the capture says what the broker answered

    async def order_status(
        self, client_order_id: str, broker_order_id: str | None
    ) -> OrderReport | None:
        return self.latest.get(client_order_id) or self.latest.get(broker_order_id or "")

    async def open_orders(self) -> Sequence[OrderReport]:
        return [r for r in self.latest.values() if r.status.is_open]

    async def today_trades(self) -> Sequence[TradeReport]:
        return list(self.trades.values())

    async def account(self) -> AccountSnapshot:
        return AccountSnapshot("replay", "", Decimal(0), Decimal(0))

    async def reports(self) -> AsyncIterator[BrokerReport]:
        while (report := await self._queue.get()) is not None:
            yield report


@dataclass
class ReplayResult:
    orders: list[OrderSnapshot]
    fills: list[Fill]
    positions: list[Position]
    anomalies: list[Anomaly]
    gaps: dict[str, Decimal]
    external: list[BrokerReport]
    restarts: int = 0
    counts: Counter[str] = field(default_factory=Counter)


def _instruments(lines: Sequence[CaptureLine]) -> InstrumentRegistry:
    """Captures carry no reference data: accept any price and size as recorded."""
    symbols = {line.symbol for line in lines if isinstance(line, SubmitLine)}
    tiny = Decimal("1e-8")
    return InstrumentRegistry(
        Instrument(symbol, tick_size=tiny, lot_size=tiny, min_qty=tiny) for symbol in symbols
    )


async def replay(lines: Sequence[CaptureLine]) -> ReplayResult:
    store = MemoryStore()
    broker = ReplayBroker()
    instruments = _instruments(lines)
    # No time passes in a replay: the resolver never runs on its own.
    config = GatewayConfig(account="replay", resolve_interval=1e9)
    gateway = Gateway(broker, Journal(store), instruments, config)
    await gateway.start()
    restarts = 0
    for line in lines:
        if isinstance(line, SubmitLine):
            request = OrderRequest(
                symbol=line.symbol,
                side=line.side,
                quantity=line.quantity,
                order_type=line.order_type,
                price=line.price,
                time_in_force=line.time_in_force,
                client_order_id=line.client_order_id,
            )
            await gateway.submit_order(request)
        elif isinstance(line, CancelLine):
            await gateway.cancel_order(line.client_order_id)
        elif isinstance(line, RestartLine):
            await gateway.stop()
            for missed in line.missed:
                broker.learn(missed)
            gateway = Gateway(broker, Journal(store), instruments, config)
            await gateway.start()  # replays the journal, then syncs with the broker
            restarts += 1
        else:
            broker.deliver(line)
        await _settle(gateway)
    await _settle(gateway)
    result = ReplayResult(
        orders=gateway.orders(),
        fills=gateway.trades(),
        positions=gateway.positions(),
        anomalies=[],
        gaps={
            o.client_order_id: o.fill_gap for o in gateway.book.orders.values() if o.fill_gap > 0
        },
        external=gateway.external(),
        restarts=restarts,
    )
    await gateway.stop()
    for record in store.records:
        if record.kind == "anomalies":
            batch = decode_event(record.payload)
            assert isinstance(batch, Anomalies)
            result.anomalies.extend(batch.items)
    result.counts = Counter(a.kind for a in result.anomalies)
    if result.gaps:
        result.counts["FILL_GAP"] = len(result.gaps)
    return result


async def _settle(gateway: Gateway) -> None:
    for _ in range(3):
        await asyncio.sleep(0)
        await gateway.journal.drain()
        await asyncio.sleep(0)
