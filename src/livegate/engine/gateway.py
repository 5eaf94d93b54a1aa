"""The Gateway: the one way orders go out and reports come in.

Every change follows the same path: journal the event, wait until it is
durable, apply it to the order book in journal order, then tell the
strategy. Submits and cancels journal their intent before touching the
wire; reports are journaled before they change anything. See
docs/decisions/0001-core-gateway.md for why it is shaped this way, and
docs/decisions/0006-engine-rooms.md for the rooms this facade wires:

- pipeline.py: journal, apply, tell (write-ahead, journal order);
- supervisor.py: the broker connection and its state;
- orders.py: order entry (one broker order per client id);
- recovery.py: syncs and the resolver (fills once, unknowns asked about).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from decimal import Decimal

import msgspec

from livegate import __version__
from livegate.broker.adapter import BrokerAdapter
from livegate.engine.config import GatewayConfig
from livegate.engine.hooks import MetricsHook, OrderLogHook
from livegate.engine.order_book import OrderBook
from livegate.engine.orders import OrderEntry
from livegate.engine.parts import Parts
from livegate.engine.parts_access import ConnectionStatus, PartsAccess
from livegate.engine.pipeline import ExecCallback, OrderCallback, Pipeline, TradeCallback
from livegate.engine.recovery import Recovery
from livegate.engine.release import ReleaseControls
from livegate.engine.supervisor import Supervisor
from livegate.engine.venues import Venues
from livegate.journal.journal import Journal
from livegate.model.account import CashBalance, Position
from livegate.model.clock import Clock
from livegate.model.enums import ConnectionState, OrderStatus, TradingState
from livegate.model.errors import GatewayNotRunningError, JournalError, OrderNotFoundError
from livegate.model.events import (
    AccountBaseline,
    GatewayStarted,
    JournalEvent,
    ReleaseRecorded,
    SafeStopReport,
    SubmitUnknown,
    TradingStateChanged,
)
from livegate.model.instrument import InstrumentRegistry
from livegate.model.orders import Order, OrderRequest, OrderSnapshot
from livegate.model.reports import BrokerReport, CancelRejectReport, Fill
from livegate.risk.engine import RiskEngine
from livegate.risk.limits import RiskLimits

__all__ = ["Gateway", "GatewayConfig"]


class Gateway(PartsAccess, ConnectionStatus):
    def __init__(
        self,
        adapter: BrokerAdapter,
        journal: Journal,
        instruments: InstrumentRegistry,
        config: GatewayConfig | None = None,
        risk: RiskEngine | None = None,
        metrics: MetricsHook | None = None,
        order_log: OrderLogHook | None = None,
        clock: Clock | None = None,
    ) -> None:
        # Without limits the risk chain still enforces the trading state.
        risk = risk or RiskEngine(RiskLimits(), instruments)
        self.parts = Parts(adapter, journal, instruments, config or GatewayConfig(), risk)
        if clock is not None:
            self.parts.clock = clock
        self.pipeline = Pipeline(self.parts)
        self.supervisor = Supervisor(self.parts, self.pipeline)
        self.entry = OrderEntry(self.parts, self.pipeline, self.supervisor)
        self.recovery = Recovery(
            self.parts, self.pipeline, self.entry.place_outcome, self.entry.cancelling
        )
        self.release_controls = ReleaseControls(
            self.parts, self.pipeline, self.entry, self.supervisor
        )
        self.recovery.each_round += [
            self.release_controls.take_commands,
            self.release_controls.resume,
            self.pipeline.checkpoint_round,  # every `checkpoint_every` events
        ]
        self.venues = Venues(self.parts, self.pipeline, self._swap_adapter)
        self.release: ReleaseRecorded | None = None  # journaled at each start when set
        self.metrics = metrics
        self.order_log = order_log
        self._running = False
        self._resolver_task: asyncio.Task[None] | None = None
        self._observer_tick: asyncio.Task[None] | None = None
        self._host_switch_interval: float | None = None

    @property
    def book(self) -> OrderBook:
        return self.pipeline.book

    @property
    def anomalies(self) -> Counter[str]:
        return self.pipeline.anomalies

    @property
    def refused_reports(self) -> deque[tuple[float, str, str | None, str]]:
        return self.pipeline.refused_reports

    @property
    def callback_errors(self) -> int:
        return self.pipeline.callback_errors

    @property
    def after_recover(self) -> list[Callable[[], Awaitable[None]]]:
        """Awaited after every recovery sync (reconciliation plugs in here)."""
        return self.recovery.after_recover

    # -- subscriptions -----------------------------------------------------
    def on_order(self, callback: OrderCallback) -> OrderCallback:
        self.pipeline.order_cbs.append(callback)
        return callback

    def on_trade(self, callback: TradeCallback) -> TradeCallback:
        self.pipeline.trade_cbs.append(callback)
        return callback

    def on_execution_report(self, callback: ExecCallback) -> ExecCallback:
        self.pipeline.exec_cbs.append(callback)
        return callback

    # -- lifecycle -----------------------------------------------------------
    async def start(self) -> None:
        """Rebuild from the journal, connect, recover, and only then accept orders."""
        self.supervisor.stopping = False
        if self.config.gil_switch_interval is not None:
            self._host_switch_interval = sys.getswitchinterval()
            sys.setswitchinterval(self.config.gil_switch_interval)
        self.journal.open()
        try:
            self.pipeline.rebuild()  # a retried start replays from scratch
            self.venues.at_start()  # stopped while fallen back to paper: start on paper
            archive = self.book.archive
            self.risk.rebuild(
                self.book.open_orders(),
                self.book.orders.values(),
                self.book.fills,
                self.clock.now_ns(),
                archive.usage_rows() if archive else (),
            )
        except BaseException:
            await self.journal.close()  # history unreadable: hold no lock, keep nothing open
            raise
        await self.journal.start()
        try:
            await self._connect_and_recover()
        except BaseException:
            # Nothing half-started stays behind: the caller may retry start().
            self.supervisor.cancel_stream()
            if self._resolver_task is not None:
                self._resolver_task.cancel()
            self._resolver_task = None
            self.supervisor.set_connection(ConnectionState.DISCONNECTED)
            await self.adapter.close()
            await self.journal.close()
            raise
        self._running = True
        self.supervisor.set_connection(ConnectionState.READY)
        await self.pipeline.settle()  # "up" is durable before the first order
        self.supervisor.watch()
        if self.order_log is not None or self.metrics is not None:
            self._observer_tick = asyncio.create_task(
                self.pipeline.observe_tick(), name="livegate-observe"
            )

    async def _connect_and_recover(self) -> None:
        supervisor, pipeline = self.supervisor, self.pipeline
        pipeline.record_nowait(GatewayStarted(self.clock.now_ns(), self.adapter.name, __version__))
        if self.release is not None:
            pipeline.record_nowait(msgspec.structs.replace(self.release, ts_ns=self.clock.now_ns()))
        supervisor.health = []
        try:
            await supervisor.check("connect", supervisor.open_session())
        except Exception as exc:
            supervisor.last_connect_error = exc
            supervisor.set_connection(ConnectionState.DISCONNECTED)
            raise
        supervisor.set_connection(ConnectionState.SYNCING)
        if self.config.heartbeat_interval:
            await supervisor.check("heartbeat", supervisor.startup_heartbeat())
        account = await supervisor.check("account", self.adapter.account())
        if self.book.baseline is None:
            await pipeline.record(AccountBaseline(account))
        supervisor.start_stream(self.recover)
        for order in [
            o
            for o in self.book.open_orders()  # on every reconnect: what is open, not the day
            if o.status is OrderStatus.PENDING_CANCEL and o.broker_order_id is None
        ]:
            # Cancelled before it was acknowledged, then the process died: the
            # cancel died with it, and whether the order went out is unknown.
            lost = CancelRejectReport(
                order.client_order_id, None, "cancel lost with the previous run"
            )
            await pipeline.record(pipeline.received(lost, "sync"))
        for order in [o for o in self.book.open_orders() if o.status is OrderStatus.NEW]:
            # Journaled by the previous run but never acknowledged: it may or
            # may not have gone out. Never resent; the broker is asked.
            await pipeline.record(
                SubmitUnknown(order.client_order_id, "in flight at restart", self.clock.now_ns())
            )
        await supervisor.check("recovery sync", self.recovery.recover(restart=True))
        await self.recovery.apply_control_commands()  # a halt issued while we were down holds
        await self.release_controls.at_start()
        self._resolver_task = asyncio.create_task(
            self.recovery.resolve_loop(), name="livegate-resolver"
        )

    async def _swap_adapter(self, new: BrokerAdapter) -> None:
        """Close the adapter in use, then connect, recover and stream from `new`.

        Orders are refused (NOT_READY) from the first step to READY on `new`.
        """
        supervisor = self.supervisor
        supervisor.set_connection(ConnectionState.DISCONNECTED)
        supervisor.stopping = True
        supervisor.unwatch()
        await self.pipeline.settle()
        await self.adapter.close()
        await supervisor.end_stream()
        self.adapter = new
        supervisor.stopping = False
        await supervisor.open_session()
        supervisor.set_connection(ConnectionState.SYNCING)
        await self.recovery.recover()
        supervisor.start_stream(self.recover)
        supervisor.set_connection(ConnectionState.READY)
        supervisor.watch()

    async def stop(self, checkpoint: bool = True) -> None:
        """Stop, leaving a checkpoint for the next start (`checkpoint=False`: a journal
        nobody starts from again, such as a replay's)."""
        self._running = False
        self.supervisor.set_connection(ConnectionState.DISCONNECTED)
        self.supervisor.stopping = True
        self.supervisor.unwatch()
        if self._resolver_task is not None:
            self._resolver_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._resolver_task
            self._resolver_task = None
        await self.pipeline.settle()
        await self.adapter.close()
        await self.supervisor.end_stream()
        await self.pipeline.settle()
        if checkpoint:
            await self.checkpoint()  # the next start reads this, not the day's events
        await self.journal.close()
        if self._observer_tick is not None:
            self._observer_tick.cancel()
            self._observer_tick = None
        if self.order_log is not None:
            self.order_log.flush()
        if self._host_switch_interval is not None:
            sys.setswitchinterval(self._host_switch_interval)
            self._host_switch_interval = None

    async def __aenter__(self) -> Gateway:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def running(self) -> bool:
        return self._running

    @property
    def ready(self) -> bool:
        """Connected and recovered: new orders go out."""
        return self._running and self.supervisor.ready

    # -- orders ----------------------------------------------------------------
    def new_client_order_id(self) -> str:
        return self.entry.new_client_order_id()

    async def submit_order(self, request: OrderRequest) -> OrderSnapshot:
        """Send an order at most once per client_order_id.

        A duplicate submit of an active order returns that order and sends
        nothing; the id of a finished order cannot be reused.
        """
        self._require_running()
        return await self.entry.submit(request)

    async def submit_orders(self, requests: Sequence[OrderRequest]) -> list[OrderSnapshot]:
        """Submit a basket: one journal wait for all intents, one adapter call, one for acks.

        The same promises as `submit_order` for each order. The basket is
        validated whole before anything is recorded, so one bad order refuses
        the basket with nothing journaled or sent. Adapters that can send
        many orders in one call implement `place_many(intents)`, returning a
        result or an exception per intent; others get concurrent `place` calls.
        """
        self._require_running()
        return await self.entry.submit_many(requests)

    async def cancel_order(
        self, client_order_id: str | None = None, broker_order_id: str | None = None
    ) -> OrderSnapshot:
        """Idempotent: a finished order returns its final state; one cancel in flight at most."""
        self._require_running()
        return await self.entry.cancel(client_order_id, broker_order_id)

    # -- trading state and market data for the risk chain ----------------------------
    @property
    def trading_state(self) -> TradingState:
        return self.book.trading_state

    @property
    def on_control(self) -> list[Callable[[JournalEvent], object]]:
        """Called with each trading state or release change once applied (a status view)."""
        return self.pipeline.control_cbs

    async def set_trading_state(self, state: TradingState | str, who: str, why: str) -> None:
        """ACTIVE, REDUCING (only orders that reduce a position) or HALTED (no new orders).

        Journaled with who and why; survives a restart. Cancels always go out.
        """
        self._require_running()
        new_state = TradingState(str(state).upper())
        if not who or not why:
            raise ValueError("a trading state change needs who and why")
        await self.pipeline.record(TradingStateChanged(new_state, who, why, self.clock.now_ns()))

    @property
    def venue(self) -> str:
        """ "live" (the configured broker) or "paper" (after a fallback; ops/fallback.py)."""
        return self.venues.name

    @property
    def rollout_stage(self) -> str | None:
        """The rollout stage in force (None: no rollout file loaded)."""
        return self.release_controls.stage

    async def set_rollout_stage(self, stage: str, who: str, why: str) -> None:
        """Promote or demote: journaled with who and why; the next order is checked by it."""
        self._require_running()
        await self.release_controls.set_stage(stage, who, why)

    async def safe_stop(
        self, who: str, why: str, flatten: bool = False, wait: float = 30.0
    ) -> SafeStopReport:
        """The kill switch: HALTED first, then every open order cancelled (then, with
        `flatten`, positions closed by reduce-only market orders). Returns when done or
        after `wait` seconds; what is left goes on once the broker is back. Idempotent."""
        self._require_running()
        return await self.release_controls.safe_stop(who, why, flatten, wait)

    def set_broker_rate_limit(self, rate: float | None, burst: int | None = None) -> None:
        """Places and cancels per second we allow ourselves (None: no limit), e.g. when
        the broker publishes a new limit; takes effect for the next request."""
        self.entry.set_broker_rate_limit(rate, burst)

    def set_reference_price(self, symbol: str, price: Decimal) -> None:
        """Last trade or mid for the price band and for valuing market orders."""
        self.risk.set_reference_price(symbol, price, self.clock.now_ns())

    # -- recovery ----------------------------------------------------------------
    async def recover(self, restart: bool = False) -> None:
        """Bring local state to the broker's after a start or reconnect."""
        await self.recovery.recover(restart)

    async def sync_open_orders(self, lost_cancels: bool = False) -> None:
        await self.recovery.sync_open_orders(lost_cancels)

    async def sync_today_trades(self) -> None:
        await self.recovery.sync_today_trades()

    async def resolve_once(self) -> None:
        """One resolver round: control commands, missing fills, unknown orders."""
        await self.recovery.resolve_once()

    # -- queries -----------------------------------------------------------------
    def order(self, client_order_id: str) -> OrderSnapshot:
        order = self.book.lookup(client_order_id)  # in memory, or retired to the archive
        if order is None:
            raise OrderNotFoundError(f"no order with client id {client_order_id!r}")
        return order.snapshot()

    def orders(self, open_only: bool = False) -> list[OrderSnapshot]:
        """Open orders and those finished within `retain_hours` (a day and more by default);
        older ones left memory at a checkpoint: `order(id)` still finds them."""
        source: Iterable[Order] = (
            self.book.open_orders() if open_only else self.book.orders.values()
        )
        return [o.snapshot() for o in source]

    def trades(self) -> list[Fill]:
        """The fills held: of the orders in memory, from the last `retain_hours` at least."""
        return list(self.book.fills)

    def external(self) -> list[BrokerReport]:
        """Broker orders and trades we never sent, as the last syncs found them."""
        return list(self.book.external.values())

    def positions(self) -> list[Position]:
        return [p for p in self.book.ledger.positions.values() if p.quantity != 0]

    def cash(self) -> CashBalance:
        return self.book.ledger.balance(self.book.reserved_cash())

    # -- for the gateway's own collaborators ------------------------------------------
    async def record(self, event: JournalEvent) -> None:
        """Journal an event and apply it once durable: for the gateway's own collaborators
        (reconciliation decisions), never a way around the order path."""
        await self.pipeline.record(event)

    async def checkpoint(self) -> int | None:
        """Store the book's state now (engine/book_state.py), so a start replays only what
        comes after; the journal position it covers, None if none could be taken (a busy
        moment, a failed journal). The gateway takes its own: at a clean stop and every
        `checkpoint_every` events; reconciliation takes one after each end of day."""
        return await self.pipeline.checkpoint(force=True)

    async def apply_broker_report(self, report: BrokerReport, source: str) -> None:
        """Ingest a report fetched outside the stream (a recovery or reconciliation query)."""
        await self.pipeline.record(self.pipeline.received(report, source))

    def _require_running(self) -> None:
        if not self._running:
            raise GatewayNotRunningError("gateway is not running; start() it first")
        if self.journal.failed is not None:
            raise JournalError(f"journal failed, trading stopped: {self.journal.failed}")
