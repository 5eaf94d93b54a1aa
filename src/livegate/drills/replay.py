"""Running a capture through the gateway's real ingest, with no broker behind it.

Each report line goes to the gateway's ingest as the report stream's consumer
hands it, in capture order; the `ReplayBroker` keeps the broker's view so far
(latest report per order, trades), which is what recovery sees after a
`restart` line. Everything else is the ordinary gateway: journal (in memory),
dedup, ordering, state machine, recovery.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import cast

import msgspec

from livegate.broker.adapter import Capabilities
from livegate.drills.capture import CancelLine, Capture, CaptureLine, RestartLine, SubmitLine
from livegate.engine.gateway import Gateway, GatewayConfig
from livegate.journal import Journal, MemoryStore
from livegate.journal.journal import decode_event
from livegate.model import (
    AccountSnapshot,
    BrokerReport,
    CancelRejectReport,
    Fill,
    Instrument,
    InstrumentRegistry,
    OrderIntent,
    OrderReport,
    OrderSnapshot,
    Position,
    TradeReport,
)
from livegate.model.decimals import ZERO
from livegate.model.enums import OrderStatus as S
from livegate.model.errors import LivegateError
from livegate.model.events import Anomalies, Anomaly


class ReplayBroker:
    name = "replay"
    capabilities = Capabilities(query_by_client_order_id=True)

    def __init__(self) -> None:
        self.latest: dict[str, OrderReport] = {}  # by client id, else broker id
        self._open: dict[str, None] = {}  # keys of `latest` still open, in its order
        self.trades: dict[str, TradeReport] = {}
        self._client_of: dict[str, str] = {}  # broker id -> client id, once a report says both
        self._broker_of: dict[str, str] = {}
        self._traded: dict[str, Decimal] = {}  # by broker id, else client id
        self._client_ids: set[str] = set()  # ids trades gave as client ids
        self._closed: asyncio.Future[None] | None = None
        self._untold: list[BrokerReport] = []  # learnt, not yet folded into the view

    def learn(self, report: BrokerReport) -> None:
        """The broker's own view moves on (whether or not we hear about it): folded in
        when recovery asks (a restart), not for every line of a capture."""
        self._untold.append(report)

    def _catch_up(self) -> None:
        untold, self._untold = self._untold, []
        for report in untold:
            self._fold(report)

    def _fold(self, report: BrokerReport) -> None:
        """One report into the broker's view.

        A broker's book only moves forward: a late open status never replaces
        a final one, nor a lower cumulative quantity a higher one. An order
        first named by its broker id alone is the same order once a report
        names both ids.
        """
        if type(report) is TradeReport:
            key = report.dedup_key()
            if key not in self.trades:
                self.trades[key] = report
                traded_key = report.broker_order_id or report.client_order_id or ""
                self._traded[traded_key] = self._traded.get(traded_key, ZERO) + report.quantity
                if report.client_order_id:
                    self._client_ids.add(report.client_order_id)
        elif type(report) is OrderReport:
            key = self._key(report.client_order_id, report.broker_order_id)
            boid = report.broker_order_id
            previous = self.latest.get(key)
            if report.client_order_id and boid and boid not in self._client_of:
                self._client_of[boid] = report.client_order_id
                self._broker_of[report.client_order_id] = boid
                earlier = self.latest.pop(boid, None)  # known by broker id only, until now
                self._open.pop(boid, None)
                if earlier is not None and (previous is None or _ahead(earlier, previous)):
                    previous = earlier
            if previous is None or _ahead(report, previous):
                latest = self.latest[key] = _with_ids(report, previous)
            elif previous.broker_order_id is None or previous.client_order_id is None:
                latest = self.latest[key] = _with_ids(previous, report)
            else:
                latest = previous
            if latest.status.is_open:
                self._open[key] = None
            else:
                self._open.pop(key, None)

    def _key(self, client_order_id: str | None, broker_order_id: str | None) -> str:
        if client_order_id:
            return client_order_id
        return self._client_of.get(broker_order_id or "", broker_order_id or "")

    async def connect(self) -> None:
        self._closed = asyncio.get_running_loop().create_future()  # this connection's end

    async def close(self) -> None:
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)

    async def heartbeat(self) -> int:
        return 0

    async def place(self, intent: OrderIntent) -> str | None:
        return None  # the capture's own reports acknowledge it

    async def cancel(self, client_order_id: str, broker_order_id: str | None) -> None:
        return None  # the capture says what the broker answered

    async def order_status(
        self, client_order_id: str, broker_order_id: str | None
    ) -> OrderReport | None:
        self._catch_up()
        key = self._key(client_order_id, broker_order_id)
        if key not in self.latest and broker_order_id:
            key = self._key(None, broker_order_id)
        return self._view(key)

    async def open_orders(self) -> Sequence[OrderReport]:
        self._catch_up()
        views = (self._view(key) for key in self._open)  # not every order of the day
        return [r for r in views if r is not None and r.status.is_open]

    def _view(self, key: str) -> OrderReport | None:
        """The broker's status of an order, never behind its own trades: a broker
        that executed a fill has the order, at least that filled."""
        traded = self._traded.get(key, ZERO) + self._traded.get(self._broker_of.get(key, ""), ZERO)
        report = self.latest.get(key)
        if traded == 0 or (report is not None and report.status.is_terminal):
            return report
        if report is None:
            if key in self._traded and key not in self._client_ids:  # a broker id
                return OrderReport(S.PARTIALLY_FILLED, None, key, cum_qty=traded)
            return OrderReport(S.PARTIALLY_FILLED, key, self._broker_of.get(key), cum_qty=traded)
        if (report.cum_qty or 0) < traded:
            return msgspec.structs.replace(report, status=S.PARTIALLY_FILLED, cum_qty=traded)
        return report

    async def today_trades(self) -> Sequence[TradeReport]:
        self._catch_up()
        return list(self.trades.values())

    async def account(self) -> AccountSnapshot:
        return AccountSnapshot("replay", "", Decimal(0), Decimal(0))

    async def reports(self) -> AsyncIterator[BrokerReport]:
        """Open until closed, and empty: the replay hands each report line to the gateway's
        ingest itself (what the stream's consumer does with a report), in capture order.
        A stream would cost a future and a turn of the loop per report, a tenth of a
        replay, to say the same."""
        if self._closed is None:  # (connect makes it; a stream asked for first waits too)
            self._closed = asyncio.get_running_loop().create_future()
        await self._closed
        return
        yield  # an async generator that yields nothing


def _ahead(new: OrderReport, old: OrderReport) -> bool:
    """Whether `new` may replace `old` in a book that only moves forward."""
    if old.status.is_terminal and not new.status.is_terminal:
        return False
    return (new.cum_qty or 0) >= (old.cum_qty or 0)


def _with_ids(report: OrderReport, other: OrderReport | None) -> OrderReport:
    """`report`, with the id it lacks taken from `other`."""
    if other is None:
        return report
    if report.client_order_id is None and other.client_order_id is not None:
        report = msgspec.structs.replace(report, client_order_id=other.client_order_id)
    if report.broker_order_id is None and other.broker_order_id is not None:
        report = msgspec.structs.replace(report, broker_order_id=other.broker_order_id)
    return report


class ReplayError(ValueError):
    """A capture line that cannot be replayed (a cancel of an order never submitted, say)."""


@dataclass(repr=False)  # see __repr__
class ReplayResult:
    orders: list[OrderSnapshot]
    fills: list[Fill]
    positions: list[Position]
    anomalies: list[Anomaly]
    gaps: dict[str, Decimal]
    external: list[BrokerReport]
    restarts: int = 0
    counts: Counter[str] = field(default_factory=Counter)

    def __repr__(self) -> str:
        # Short on purpose: on Python 3.11, asyncio.run() reprs its finished main
        # task (signal handler bookkeeping), result included; a day's orders in
        # that repr cost a third of a second.
        return (
            f"ReplayResult({len(self.orders)} orders, {len(self.fills)} fills,"
            f" {len(self.anomalies)} anomalies, {self.restarts} restarts)"
        )


def _instruments(lines: Sequence[CaptureLine]) -> InstrumentRegistry:
    """Captures carry no reference data: accept any price and size as recorded."""
    symbols = {line.symbol for line in lines if isinstance(line, SubmitLine)}
    tiny = Decimal("1e-8")
    return InstrumentRegistry(
        Instrument(symbol, tick_size=tiny, lot_size=tiny, min_qty=tiny) for symbol in symbols
    )


async def replay(lines: Capture | Sequence[CaptureLine]) -> ReplayResult:
    """Run the capture; a line the gateway refuses raises ReplayError naming it."""
    capture = (
        lines
        if isinstance(lines, Capture)
        else Capture(list(lines), list(range(1, len(lines) + 1)))
    )
    try:
        return await _replay(capture)
    except _LineFailed as failed:
        cause = failed.__cause__
        raise ReplayError(f"{capture.where(failed.index)}: {cause}") from None


class _LineFailed(Exception):
    def __init__(self, index: int) -> None:
        self.index = index


async def _replay(capture: Capture) -> ReplayResult:
    lines = capture.lines
    store = MemoryStore()
    broker = ReplayBroker()
    instruments = _instruments(lines)
    # No time passes in a replay: the resolver never runs on its own.
    config = GatewayConfig(account="replay", resolve_interval=1e9)
    gateway = Gateway(broker, Journal(store, inline=True), instruments, config)
    await gateway.start()
    restarts = 0
    learn, ingest = broker.learn, gateway.pipeline.ingest
    for index, line in enumerate(lines):
        try:
            if type(line) in _REPORTS:  # most lines: no coroutine made for them
                learn(line)  # type: ignore[arg-type]  # the broker's book moves on and it
                ingest(line, "stream")  # type: ignore[arg-type]  # tells us, in capture order
                continue
            ours = cast(SubmitLine | CancelLine | RestartLine, line)
            gateway, restarted = await _act(gateway, broker, store, instruments, config, ours)
        except LivegateError as exc:
            await gateway.stop(checkpoint=False)
            raise _LineFailed(index) from exc
        restarts += restarted
        ingest = gateway.pipeline.ingest
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
    await gateway.stop(checkpoint=False)  # its journal is thrown away
    for record in store.read_kind("anomalies"):
        if record.kind == "anomalies":
            batch = decode_event(record.payload)
            assert isinstance(batch, Anomalies)
            result.anomalies.extend(batch.items)
    result.counts = Counter(a.kind for a in result.anomalies)
    if result.gaps:
        result.counts["FILL_GAP"] = len(result.gaps)
    return result


_REPORTS = frozenset((OrderReport, TradeReport, CancelRejectReport))


async def _act(
    gateway: Gateway,
    broker: ReplayBroker,
    store: MemoryStore,
    instruments: InstrumentRegistry,
    config: GatewayConfig,
    line: SubmitLine | CancelLine | RestartLine,
) -> tuple[Gateway, int]:
    """One line of ours (submit, cancel, restart), once what came before is applied:
    (the gateway from here on, 1 if it restarted)."""
    await _settle(gateway)
    if isinstance(line, SubmitLine):
        await gateway.submit_order(line.as_request())
    elif isinstance(line, CancelLine):
        await gateway.cancel_order(line.client_order_id)
    else:
        await gateway.stop()
        for missed in line.missed:
            broker.learn(missed)
        gateway = Gateway(broker, Journal(store, inline=True), instruments, config)
        await gateway.start()  # replays the journal, then syncs with the broker
        return gateway, 1
    return gateway, 0


async def _settle(gateway: Gateway) -> None:
    """Until what was ingested is journaled and applied (and what that caused,
    anomalies included): the capture's next line sees its effects.

    The replay's journal writes on the loop itself (durable at once), so what
    waits is the pipeline's drain: done here rather than in a turn of the loop
    of its own, then one turn for whatever applying it set going.
    """
    journal, pipeline = gateway.journal, gateway.pipeline
    while True:
        pipeline.drain_inbox()
        await asyncio.sleep(0)
        if journal.idle and pipeline.applied:
            return
