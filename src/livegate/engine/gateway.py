"""The Gateway: the one way orders go out and reports come in.

Every change follows the same path: journal the event, wait until it is
durable, apply it to the order book in journal order, then tell the
strategy. Submits and cancels journal their intent before touching the
wire; reports are journaled before they change anything. See
docs/decisions/0001-core-gateway.md for why it is shaped this way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import sys
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

from livegate import __version__
from livegate.broker.adapter import BrokerAdapter
from livegate.broker.errors import (
    BrokerAuthError,
    BrokerNetworkError,
    BrokerRejected,
    BrokerThrottled,
)
from livegate.engine.control import read_trading_state_command
from livegate.engine.deadlines import Deadlines
from livegate.engine.health import ClockSkewError, HealthCheck
from livegate.engine.order_book import REFUSED_REPORTS, OrderBook, external_key
from livegate.engine.retry import RetryPolicy, TokenBucket, call_with_retry
from livegate.journal.journal import Journal
from livegate.model.account import CashBalance, Position
from livegate.model.enums import ConnectionState, OrderStatus, RejectReason, TradingState
from livegate.model.errors import (
    CancelRefusedError,
    DuplicateClientOrderIdError,
    GatewayNotRunningError,
    JournalError,
    OrderNotFoundError,
)
from livegate.model.events import (
    AccountBaseline,
    Anomaly,
    CancelRequested,
    ClosedAtBroker,
    ExternalActivity,
    FillInferred,
    GatewayStarted,
    JournalEvent,
    OrderDenied,
    Received,
    SubmitResent,
    SubmitUnknown,
    TradingStateChanged,
)
from livegate.model.events import Anomalies as AnomalyBatch
from livegate.model.instrument import InstrumentRegistry
from livegate.model.orders import Order, OrderIntent, OrderRequest, OrderSnapshot
from livegate.model.reports import (
    BrokerReport,
    CancelRejectReport,
    ExecutionReport,
    Fill,
    OrderReport,
)
from livegate.model.validation import validate_request
from livegate.observe.logs import OrderLog
from livegate.observe.metrics import GatewayMetrics
from livegate.risk.engine import RiskEngine
from livegate.risk.limits import RiskLimits

log = logging.getLogger("livegate.gateway")
T = TypeVar("T")

OrderCallback = Callable[[OrderSnapshot], object]
TradeCallback = Callable[[Fill], object]
ExecCallback = Callable[[ExecutionReport], object]


@dataclass
class GatewayConfig:
    """Timeouts and recovery timing, in seconds.

    gap_fetch_after: a fill gap (the broker says more is filled than the
        fills we hold) this old makes us fetch today's trades.
    gap_grace: a gap this old, still open, is closed with an inferred fill.
    unknown_grace: an UNKNOWN order the broker still shows no sign of after
        this long is resent (only to a broker that dedups client ids) or
        finalized as REJECTED / NOT_FOUND_AT_BROKER.
    resolve_interval: how often the resolver looks at gaps and unknowns.
    gil_switch_interval: set as the interpreter's switch interval while the
        gateway runs (restored on stop), so the journal writer thread gets
        the GIL back within this long instead of the default 5 ms; measured:
        SQLite batch inserts 303k rows/s beside a busy thread at 5 ms, 439k at
        1 ms. None leaves the host's setting alone.
    heartbeat_interval: how often the broker's liveness is checked with a
        heartbeat round trip (None: never); one that takes longer than
        `heartbeat_timeout` drops the connection, which then reconnects.
    degraded_latency / max_clock_skew: a heartbeat slower than this, or a
        broker clock further off than this, makes the connection DEGRADED
        (orders still go out). At start, a skew beyond max_clock_skew
        refuses to start.
    reconnect_delay / reconnect_max_delay: exponential backoff with jitter
        between reconnect attempts; a refused credential waits at least
        `auth_retry_delay`, so we never hammer a broker with a bad key.
    retry: how a place or cancel that certainly did not reach the broker,
        or was throttled, is tried again (engine/retry.py).
    broker_rate_limit / broker_rate_burst: a client-side token bucket on
        places and cancels, to stay under the broker's published limit.
    """

    account: str = "default"
    place_timeout: float = 10.0
    cancel_timeout: float = 10.0
    gap_fetch_after: float = 1.0
    gap_grace: float = 5.0
    unknown_grace: float = 10.0
    resolve_interval: float = 0.5
    gil_switch_interval: float | None = 0.0005
    reconnect_delay: float = 0.5
    reconnect_max_delay: float = 30.0
    auth_retry_delay: float = 30.0
    heartbeat_interval: float | None = 2.0
    heartbeat_timeout: float = 3.0
    degraded_latency: float = 0.5
    max_clock_skew: float = 2.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    broker_rate_limit: float | None = None
    broker_rate_burst: int | None = None
    control_dir: Path | None = None  # where `livegate trading-state` drops commands

    def __post_init__(self) -> None:
        """Refuse what would misbehave later: a negative timeout makes every order
        UNKNOWN, a negative rate a traceback on the first order."""
        for name in (*_POSITIVE_SECONDS, *_GRACES):
            value = getattr(self, name)
            if value is None and name in _OPTIONAL:
                continue
            number = isinstance(value, int | float) and not isinstance(value, bool)
            low_ok = number and (value >= 0 if name in _GRACES else value > 0)
            if not (low_ok and value < float("inf")):
                sign = "zero or more" if name in _GRACES else "positive"
                raise ValueError(f"GatewayConfig.{name}={value!r}: must be a {sign} number")
        for name in ("broker_rate_limit", "broker_rate_burst"):
            value = getattr(self, name)
            if value is not None and not 0 < value < float("inf"):
                raise ValueError(f"GatewayConfig.{name}={value!r}: must be positive (or None)")


_GRACES = ("gap_fetch_after", "gap_grace", "unknown_grace")  # 0: at once
_POSITIVE_SECONDS = (
    "place_timeout",
    "cancel_timeout",
    "resolve_interval",
    "reconnect_delay",
    "reconnect_max_delay",
    "auth_retry_delay",
    "heartbeat_interval",
    "heartbeat_timeout",
    "degraded_latency",
    "max_clock_skew",
    "gil_switch_interval",
)
_OPTIONAL = ("heartbeat_interval", "gil_switch_interval")


class Gateway:
    def __init__(
        self,
        adapter: BrokerAdapter,
        journal: Journal,
        instruments: InstrumentRegistry,
        config: GatewayConfig | None = None,
        risk: RiskEngine | None = None,
        metrics: GatewayMetrics | None = None,
        order_log: OrderLog | None = None,
    ) -> None:
        self.adapter = adapter
        self.journal = journal
        self.instruments = instruments
        self.config = config or GatewayConfig()
        # Without limits the chain still enforces the trading state.
        self.risk = risk or RiskEngine(RiskLimits(), instruments)
        self.metrics = metrics  # None: no metric costs anything on the hot path
        self.order_log = order_log  # None: no log line on the order path
        self._acknowledged: set[str] = set()  # for the round-trip metric only
        self._counted_rejects: set[str] = set()
        if metrics is not None:
            metrics.watch_journal(lambda: float(len(self.journal._pending)))
        self.book = OrderBook(instruments)
        self.anomalies: Counter[str] = Counter()
        # (monotonic time, kind, client id, detail) of the latest reports refused.
        self.refused_reports: deque[tuple[float, str, str | None, str]] = deque(maxlen=100)
        self.callback_errors = 0
        self._order_cbs: list[OrderCallback] = []
        self._trade_cbs: list[TradeCallback] = []
        self._exec_cbs: list[ExecCallback] = []
        self._inbox: deque[tuple[asyncio.Future[None], JournalEvent]] = deque()
        self._last_batch: asyncio.Future[None] | None = None
        self._cancels_in_flight: dict[str, asyncio.Future[None]] = {}
        self._ingest_task: asyncio.Task[None] | None = None
        self._resolver_task: asyncio.Task[None] | None = None
        self._observer_tick: asyncio.Task[None] | None = None
        self._gap_seen: dict[str, float] = {}  # client_order_id -> monotonic first seen
        self._host_switch_interval: float | None = None
        # Awaited after every recovery sync (reconciliation plugs in here).
        self.after_recover: list[Callable[[], Awaitable[None]]] = []
        self._anomalies: list[Anomaly] = []  # found while applying, journaled together
        self._place_deadlines = Deadlines(self.config.place_timeout)
        self._cancel_deadlines = Deadlines(self.config.cancel_timeout)
        self._running = False
        self._ready = False  # connected and recovered: new orders may go out
        self.connection_state = ConnectionState.DISCONNECTED
        self.last_connect_error: BaseException | None = None  # cleared once connected
        self.reconnects = 0
        self.connected_ns = 0  # when the current broker session began
        self.health: list[HealthCheck] = []  # the start-up checks of the last start
        self.heartbeat_rtt: float | None = None
        self.throttled = 0  # requests the broker throttled at least once
        self.clock_skew: float | None = None  # broker clock minus ours, seconds
        self._heartbeat_task: asyncio.Task[None] | None = None
        cfg = self.config
        self._bucket = (
            TokenBucket(cfg.broker_rate_limit, cfg.broker_rate_burst)
            if cfg.broker_rate_limit
            else None
        )
        # Called with each new connection state (metrics, alerts, a status view).
        self.on_connection_state: list[Callable[[ConnectionState], None]] = []
        self._stopping = False
        self.disconnects = 0
        self._id_prefix = secrets.token_hex(4)
        self._id_counter = 0

    # -- subscriptions -----------------------------------------------------
    def on_order(self, callback: OrderCallback) -> OrderCallback:
        self._order_cbs.append(callback)
        return callback

    def on_trade(self, callback: TradeCallback) -> TradeCallback:
        self._trade_cbs.append(callback)
        return callback

    def on_execution_report(self, callback: ExecCallback) -> ExecCallback:
        self._exec_cbs.append(callback)
        return callback

    # -- lifecycle -----------------------------------------------------------
    async def start(self) -> None:
        """Rebuild from the journal, connect, recover, and only then accept orders."""
        self.book = OrderBook(self.instruments)  # a retried start replays from scratch
        self._stopping = False
        if self.config.gil_switch_interval is not None:
            self._host_switch_interval = sys.getswitchinterval()
            sys.setswitchinterval(self.config.gil_switch_interval)
        self.journal.open()
        for _, event in self.journal.replay():  # no callbacks: the strategy saw these
            self.book.apply(event)
        self.risk.rebuild(self.book.open_orders())
        self.book.on_change = self._on_change
        self.book.on_anomaly = self._anomaly
        await self.journal.start()
        try:
            await self._connect_and_recover()
        except BaseException:
            # Nothing half-started stays behind: the caller may retry start().
            for task in (self._ingest_task, self._resolver_task):
                if task is not None:
                    task.cancel()
            self._ingest_task = self._resolver_task = None
            self._set_connection(ConnectionState.DISCONNECTED)
            await self.adapter.close()
            await self.journal.close()
            raise
        self._running = True
        self._set_connection(ConnectionState.READY)
        if self.config.heartbeat_interval:
            self._heartbeat_task = asyncio.create_task(
                self._watch_heartbeats(self.config.heartbeat_interval), name="livegate-heartbeat"
            )
        if self.order_log is not None or self.metrics is not None:
            self._observer_tick = asyncio.create_task(self._tick(), name="livegate-observe")

    async def _tick(self) -> None:
        """Observability work kept off the order path: order log lines are written
        and latency observations bucketed in batches (see observe/)."""
        interval = self.order_log.flush_interval if self.order_log is not None else 0.2
        while True:
            await asyncio.sleep(interval)
            if self.order_log is not None:
                self.order_log.flush()
            if self.metrics is not None:
                self.metrics.fold()

    async def _connect_and_recover(self) -> None:
        self._record_nowait(GatewayStarted(time.time_ns(), self.adapter.name, __version__))
        self.health = []
        try:
            await self._check("connect", self._open_session())
        except Exception as exc:
            self.last_connect_error = exc
            self._set_connection(ConnectionState.DISCONNECTED)
            raise
        self._set_connection(ConnectionState.SYNCING)
        if self.config.heartbeat_interval:
            await self._check("heartbeat", self._startup_heartbeat())
        account = await self._check("account", self.adapter.account())
        if self.book.baseline is None:
            await self._record(AccountBaseline(account))
        self._ingest_task = asyncio.create_task(self._ingest_stream(), name="livegate-ingest")
        for order in [
            o
            for o in self.book.orders.values()
            if o.status is OrderStatus.PENDING_CANCEL and o.broker_order_id is None
        ]:
            # Cancelled before it was acknowledged, then the process died: the
            # cancel died with it, and whether the order went out is unknown.
            lost = CancelRejectReport(
                order.client_order_id, None, "cancel lost with the previous run"
            )
            await self._record(Received(lost, time.time_ns(), "sync"))
        for order in [o for o in self.book.orders.values() if o.status is OrderStatus.NEW]:
            # Journaled by the previous run but never acknowledged: it may or
            # may not have gone out. Never resent; the broker is asked.
            await self._record(
                SubmitUnknown(order.client_order_id, "in flight at restart", time.time_ns())
            )
        await self._check("recovery sync", self.recover(restart=True))
        await self._apply_control_commands()  # a halt issued while we were down holds
        self._resolver_task = asyncio.create_task(self._resolve_loop(), name="livegate-resolver")

    async def _check(self, name: str, step: Awaitable[T]) -> T:
        """One start-up health check, timed and kept in `health`; a failure stops the start."""
        started = time.perf_counter()
        try:
            result = await step
        except Exception as exc:
            ms = (time.perf_counter() - started) * 1e3
            self.health.append(HealthCheck(name, False, f"{type(exc).__name__}: {exc}", ms))
            log.error("start-up check %r failed: %s", name, exc)
            exc.add_note(f"livegate: the start-up check {name!r} failed; nothing was sent")
            raise
        ms = (time.perf_counter() - started) * 1e3
        self.health.append(HealthCheck(name, True, "", ms))
        return result

    async def _open_session(self) -> None:
        """Connect, then authenticate where the adapter does that as its own step."""
        self._set_connection(ConnectionState.CONNECTING)
        await self.adapter.connect()
        authenticate = getattr(self.adapter, "authenticate", None)
        if authenticate is not None:
            self._set_connection(ConnectionState.AUTHENTICATING)
            await authenticate()
        self.last_connect_error = None
        self.connected_ns = time.time_ns()

    async def _startup_heartbeat(self) -> None:
        _, skew = await self._heartbeat_once()
        if skew is not None and abs(skew) > self.config.max_clock_skew:
            raise ClockSkewError(
                f"broker clock is {skew:+.3f}s from ours (limit {self.config.max_clock_skew:g}s)"
            )
        self.health.append(
            HealthCheck(
                "clock skew", True, "broker gives no clock" if skew is None else f"{skew:+.4f}s", 0
            )
        )

    async def _heartbeat_once(self) -> tuple[float, float | None]:
        """A heartbeat round trip: (seconds, broker clock minus ours or None)."""
        started = time.perf_counter()
        sent_ns = time.time_ns()
        broker_ns = await asyncio.wait_for(self.adapter.heartbeat(), self.config.heartbeat_timeout)
        rtt = time.perf_counter() - started
        skew = None
        if broker_ns:
            skew = (broker_ns - (sent_ns + int(rtt * 5e8))) / 1e9  # against our midpoint
        self.heartbeat_rtt, self.clock_skew = rtt, skew
        return rtt, skew

    async def _watch_heartbeats(self, interval: float) -> None:
        """Tell a quiet broker from a dead one; mark the connection DEGRADED while slow."""
        cfg = self.config
        while True:
            await asyncio.sleep(interval)
            if self.connection_state not in (ConnectionState.READY, ConnectionState.DEGRADED):
                continue  # the reconnect loop owns the connection now
            try:
                rtt, skew = await self._heartbeat_once()
            except Exception as exc:
                log.warning("heartbeat failed (%r): dropping the connection to reconnect", exc)
                await self._abort_connection()
                continue
            slow = rtt > cfg.degraded_latency or (
                skew is not None and abs(skew) > cfg.max_clock_skew
            )
            if slow and self.connection_state is ConnectionState.READY:
                log.warning("broker connection degraded: rtt %.3fs, skew %s", rtt, skew)
                self._set_connection(ConnectionState.DEGRADED)
            elif not slow and self.connection_state is ConnectionState.DEGRADED:
                self._set_connection(ConnectionState.READY)

    async def _abort_connection(self) -> None:
        abort = getattr(self.adapter, "abort", None)
        if abort is not None:
            abort()
        else:
            await self.adapter.close()

    async def stop(self) -> None:
        self._running = False
        self._set_connection(ConnectionState.DISCONNECTED)
        self._stopping = True
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            self._heartbeat_task = None
        if self._resolver_task is not None:
            self._resolver_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._resolver_task
            self._resolver_task = None
        await self.journal.drain()
        self._drain_inbox()
        await self.adapter.close()
        if self._ingest_task is not None:
            try:
                await asyncio.wait_for(self._ingest_task, 5)
            except (TimeoutError, asyncio.CancelledError):
                self._ingest_task.cancel()
            self._ingest_task = None
        await self.journal.drain()
        self._drain_inbox()
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
        return self._running and self._ready

    # -- orders ----------------------------------------------------------------
    def new_client_order_id(self) -> str:
        while True:
            self._id_counter += 1
            coid = f"LG{self._id_prefix}{self._id_counter:08d}"
            if coid not in self.book.orders:
                return coid

    async def submit_order(self, request: OrderRequest) -> OrderSnapshot:
        """Send an order at most once per client_order_id.

        A duplicate submit of an active order returns that order and sends
        nothing; the id of a finished order cannot be reused.
        """
        self._require_running()
        existing, intent = self._admit(request, set())
        if intent is None:
            return existing  # type: ignore[return-value]
        refusal = self._risk_check(intent)
        order = self.book.open_order(intent)
        self.risk.track(order)
        coid = intent.client_order_id
        try:
            await self._record(intent)
        except JournalError:
            self.book.forget(coid)  # never durable, never sent
            self.risk.forget(coid)
            raise
        except asyncio.CancelledError:
            # The intent is durable (the journal's future outlives a cancelled
            # waiter), the order never went out: it ends here, with the reason.
            self._record_nowait(
                OrderDenied(
                    coid,
                    RejectReason.CALLER_CANCELLED,
                    "the caller gave up before the order was sent",
                    time.time_ns(),
                )
            )
            raise
        if self.metrics is not None:
            self.metrics.orders_submitted.value += 1  # not .inc(): a call costs more
        if self.order_log is not None:
            self.order_log.submit(intent)
        if refusal is None and not self._ready:
            refusal = (RejectReason.NOT_READY, "broker connection is down or recovering")
        if refusal is not None:
            reason, text = refusal
            await self._record(OrderDenied(coid, reason, text, time.time_ns()))
            return order.snapshot()
        deadlines = self._place_deadlines
        deadlines.arm(coid)  # covers the adapter call only, never our own journal waits
        try:
            if self._bucket is not None:
                await self._bucket.acquire()
            try:
                result: str | BaseException | None = await self.adapter.place(intent)
            except (BrokerNetworkError, BrokerThrottled) as first:
                result = await self._retry(first, lambda: self.adapter.place(intent))
        except asyncio.CancelledError:
            if not deadlines.expired(coid):
                # The caller gave up mid-send; whether it went out is unknown.
                self._record_nowait(SubmitUnknown(coid, "caller cancelled", time.time_ns()))
                raise
            result = TimeoutError(f"place timed out after {deadlines.timeout}s")
        except Exception as exc:
            result = exc
        finally:
            deadlines.disarm(coid)
        outcome = self._place_outcome(coid, result)
        if outcome is not None:
            await self._record(outcome)
        return order.snapshot()

    async def submit_orders(self, requests: Sequence[OrderRequest]) -> list[OrderSnapshot]:
        """Submit a basket: one journal wait for all intents, one adapter call, one for acks.

        The same promises as `submit_order` for each order. The basket is
        validated whole before anything is recorded, so one bad order refuses
        the basket with nothing journaled or sent. Adapters that can send
        many orders in one call implement `place_many(intents)`, returning a
        result or an exception per intent; others get concurrent `place` calls.
        """
        self._require_running()
        admitted: list[tuple[OrderSnapshot | None, OrderIntent | None]] = []
        seen: set[str] = set()
        for request in requests:
            admitted.append(self._admit(request, seen))
        intents = [intent for _, intent in admitted if intent is not None]
        refusals: dict[str, tuple[RejectReason, str]] = {}
        orders = []
        for intent in intents:  # in order: each order uses up room for the next
            refusal = self._risk_check(intent)
            if refusal is not None:
                refusals[intent.client_order_id] = refusal
            order = self.book.open_order(intent)
            self.risk.track(order)
            orders.append(order)
        if intents:
            try:
                for intent in intents[:-1]:
                    self._record_nowait(intent)
                await self._record(intents[-1])  # batches commit in order
            except JournalError:
                for intent in intents:
                    self.book.forget(intent.client_order_id)
                    self.risk.forget(intent.client_order_id)
                raise
            if self.metrics is not None:
                self.metrics.orders_submitted.inc(len(intents))
            if self.order_log is not None:
                for intent in intents:
                    self.order_log.submit(intent, basket=True)
            now = time.time_ns()
            outcomes: list[JournalEvent] = [
                OrderDenied(coid, reason, text, now) for coid, (reason, text) in refusals.items()
            ]
            to_send = [i for i in intents if i.client_order_id not in refusals]
            results: Sequence[str | BaseException | None] = []
            if to_send and self._ready:
                results = await self._place_basket(to_send)
            elif to_send:
                down = BrokerNetworkError("broker connection is down or recovering")
                results = [down] * len(to_send)
            outcomes += [
                outcome
                for intent, result in zip(to_send, results, strict=True)
                if (outcome := self._place_outcome(intent.client_order_id, result)) is not None
            ]
            for outcome in outcomes[:-1]:
                self._record_nowait(outcome)
            if outcomes:
                await self._record(outcomes[-1])
        placed = iter(orders)
        return [
            existing if intent is None else next(placed).snapshot()  # type: ignore[misc]
            for existing, intent in admitted
        ]

    def _risk_check(self, intent: OrderIntent) -> tuple[RejectReason, str] | None:
        now = time.time_ns()
        state = self.book.trading_state
        refusal = self.risk.check(intent, self.book.ledger.positions, now, state)
        if refusal is None:
            self.risk.passed(intent, now)
        return refusal

    # -- trading state and market data for the risk chain ----------------------------
    @property
    def trading_state(self) -> TradingState:
        return self.book.trading_state

    async def set_trading_state(self, state: TradingState | str, who: str, why: str) -> None:
        """ACTIVE, REDUCING (only orders that reduce a position) or HALTED (no new orders).

        Journaled with who and why; survives a restart. Cancels always go out.
        """
        self._require_running()
        new_state = TradingState(str(state).upper())
        if not who or not why:
            raise ValueError("a trading state change needs who and why")
        await self._record(TradingStateChanged(new_state, who, why, time.time_ns()))

    def set_broker_rate_limit(self, rate: float | None, burst: int | None = None) -> None:
        """Places and cancels per second we allow ourselves (None: no limit), e.g. when
        the broker publishes a new limit; takes effect for the next request."""
        self._bucket = TokenBucket(rate, burst) if rate else None

    def set_reference_price(self, symbol: str, price: Decimal) -> None:
        """Last trade or mid for the price band and for valuing market orders."""
        self.risk.set_reference_price(symbol, price, time.time_ns())

    def _admit(
        self, request: OrderRequest, basket: set[str]
    ) -> tuple[OrderSnapshot | None, OrderIntent | None]:
        """(existing order, None) for a duplicate of an active order, else (None, new intent)."""
        coid = request.client_order_id or self.new_client_order_id()
        existing = self.book.orders.get(coid)
        if existing is not None:
            if existing.status.is_open:
                return existing.snapshot(), None
            raise DuplicateClientOrderIdError(
                f"client_order_id {coid} belongs to a finished order ({existing.status})"
            )
        if coid in basket:
            raise DuplicateClientOrderIdError(f"client_order_id {coid} appears twice in a basket")
        basket.add(coid)
        intent = validate_request(
            request,
            self.instruments,
            account=self.config.account,
            client_order_id=coid,
            ts_ns=time.time_ns(),
        )
        return None, intent

    async def _place_basket(
        self, intents: Sequence[OrderIntent]
    ) -> Sequence[str | BaseException | None]:
        key = object()  # one deadline for the whole basket
        deadlines = self._place_deadlines
        deadlines.arm(key)
        try:
            place_many = getattr(self.adapter, "place_many", None)
            if place_many is not None:
                results: Sequence[str | BaseException | None] = await place_many(intents)
            else:
                results = await asyncio.gather(
                    *(self._place_with_retry(intent) for intent in intents),
                    return_exceptions=True,
                )
        except asyncio.CancelledError:
            if not deadlines.expired(key):
                for intent in intents:
                    self._record_nowait(
                        SubmitUnknown(intent.client_order_id, "caller cancelled", time.time_ns())
                    )
                raise
            timeout = TimeoutError(f"place timed out after {deadlines.timeout}s")
            results = [timeout] * len(intents)
        except Exception as exc:
            results = [exc] * len(intents)
        finally:
            deadlines.disarm(key)
        return results

    async def _place_with_retry(self, intent: OrderIntent) -> str | None:
        if self._bucket is not None:
            await self._bucket.acquire()
        try:
            return await self.adapter.place(intent)
        except (BrokerNetworkError, BrokerThrottled) as first:
            return await self._retry(first, lambda: self.adapter.place(intent))

    async def _retry(self, first: BaseException, call: Callable[[], Awaitable[T]]) -> T:
        """A request that certainly did not reach the broker, or was throttled, again.

        Only here, off the fast path; the policy is engine/retry.py's. The
        caller's deadline still bounds the whole.
        """
        if isinstance(first, BrokerThrottled):
            self.throttled += 1
        return await call_with_retry(call, self.config.retry, self._bucket, first)

    def _place_outcome(self, coid: str, result: str | BaseException | None) -> JournalEvent | None:
        """What the answer to place() means for the order, as the event to journal."""
        now = time.time_ns()
        if isinstance(result, BrokerRejected):
            report = OrderReport(
                OrderStatus.REJECTED, coid, reject_reason=result.reason, text=result.text
            )
            return Received(report, now, "place")
        if isinstance(result, BrokerNetworkError | BrokerThrottled | BrokerAuthError):
            # Certainly not at the broker: refused here, nothing to recover.
            reason = {
                BrokerThrottled: RejectReason.THROTTLED,
                BrokerAuthError: RejectReason.AUTH_FAILED,
            }.get(type(result), RejectReason.NOT_READY)
            return OrderDenied(coid, reason, f"not sent: {result}", now)
        if isinstance(result, BaseException):
            # Timeout, UnknownOutcome, an adapter bug: it may have gone out.
            log.warning("submit outcome unknown for %s: %r", coid, result)
            return SubmitUnknown(coid, repr(result), now)
        if result:
            return Received(
                OrderReport(OrderStatus.SUBMITTED, coid, result, ts_ns=now), now, "place"
            )
        return None

    async def cancel_order(
        self, client_order_id: str | None = None, broker_order_id: str | None = None
    ) -> OrderSnapshot:
        """Idempotent: a finished order returns its final state; one cancel in flight at most."""
        self._require_running()
        order = self.book.find(client_order_id, broker_order_id)
        if order is None:
            raise OrderNotFoundError(
                f"no order with client id {client_order_id!r} / broker id {broker_order_id!r}"
            )
        coid = order.client_order_id
        in_flight = self._cancels_in_flight.get(coid)
        if in_flight is not None:
            # One request on the wire per order; the others share its outcome.
            await asyncio.shield(in_flight)
            return order.snapshot()
        if order.status.is_terminal or order.status is OrderStatus.PENDING_CANCEL:
            return order.snapshot()
        refused = self.risk.check_cancel(time.time_ns())
        if refused is not None:
            if self.metrics is not None:
                self.metrics.cancels_refused.inc()
            raise CancelRefusedError(refused[1], refused[0])
        if self.order_log is not None:
            self.order_log.cancel(coid, order.broker_order_id)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._cancels_in_flight[coid] = done
        # Once journaled, the request goes out whether or not its caller waits.
        await asyncio.shield(asyncio.ensure_future(self._cancel_flow(order, done)))
        return order.snapshot()

    async def _cancel_flow(self, order: Order, done: asyncio.Future[None]) -> None:
        coid = order.client_order_id
        try:
            await self._record(CancelRequested(coid, time.time_ns()))
            # Re-read: a report applied meanwhile may have finished the order.
            if self.book.orders[coid].status is OrderStatus.PENDING_CANCEL:
                await self._send_cancel(order)
        finally:
            del self._cancels_in_flight[coid]
            done.set_result(None)

    async def _send_cancel(self, order: Order) -> None:
        coid, boid = order.client_order_id, order.broker_order_id
        refused: CancelRejectReport | None = None
        deadlines = self._cancel_deadlines
        if self.metrics is not None:
            self.metrics.cancels.inc()
        deadlines.arm(coid)
        try:
            if self._bucket is not None:
                await self._bucket.acquire()
            try:
                await self.adapter.cancel(coid, boid)
            except (BrokerNetworkError, BrokerThrottled) as first:
                await self._retry(first, lambda: self.adapter.cancel(coid, boid))
        except asyncio.CancelledError:
            if not deadlines.expired(coid):
                raise
            # Outcome unknown: stays PENDING_CANCEL until the broker's reports
            # or a recovery sync say what happened.
            log.warning("cancel of %s timed out; outcome unknown", coid)
        except (BrokerRejected, BrokerNetworkError, BrokerThrottled, BrokerAuthError) as exc:
            # Refused or never sent: the order lives on and may be cancelled again.
            refused = CancelRejectReport(coid, boid, f"cancel failed: {exc}", time.time_ns())
        except Exception as exc:
            log.warning("cancel outcome unknown for %s: %r", coid, exc)
        finally:
            deadlines.disarm(coid)
        if refused is not None:
            if self.metrics is not None:
                self.metrics.cancels_refused.inc()
            await self._record(Received(refused, refused.ts_ns, "cancel"))

    # -- recovery ----------------------------------------------------------------
    async def recover(self, restart: bool = False) -> None:
        """Bring local state to the broker's after a start or reconnect.

        On `restart` no request of ours can still be in flight, so a cancel
        the broker never acted on is known to be lost and the order is live
        again (the strategy may cancel it anew).
        """
        if self.adapter.capabilities.query_by_client_order_id:
            for order in [o for o in self.book.orders.values() if o.status is OrderStatus.UNKNOWN]:
                report = await self.adapter.order_status(
                    order.client_order_id, order.broker_order_id
                )
                if report is not None:
                    await self._record(Received(report, time.time_ns(), "sync"))
        await self.sync_today_trades()
        await self.sync_open_orders(lost_cancels=restart)
        for hook in list(self.after_recover):
            await hook()

    async def sync_open_orders(self, lost_cancels: bool = False) -> None:
        """Apply the broker's open orders, learn how ours ended, record orders not ours.

        A live order the broker no longer lists is asked about where the
        adapter can; where it cannot, it is closed (CANCELLED) with a
        CLOSED_AT_BROKER anomaly, never silently believed live.
        """
        if not self.adapter.capabilities.lists_orders:
            # Nothing to ask. A cancel cut off by the restart is lost as far as we
            # know; if it did reach the broker, its Cancelled comes with the resend.
            for pending in list(self.book.open_orders()):
                if lost_cancels and pending.status is OrderStatus.PENDING_CANCEL:
                    lost = CancelRejectReport(
                        pending.client_order_id, pending.broker_order_id, "cancel lost at restart"
                    )
                    self._ingest(lost, "sync")
            await self._settle()
            return
        started_ns = time.time_ns()
        broker_open = await self.adapter.open_orders()
        seen: set[str] = set()
        for report in broker_open:
            order = self.book.find(report.client_order_id, report.broker_order_id)
            if order is None:
                self._record_external(report)
                continue
            seen.add(order.client_order_id)
            if order.status is not report.status or (report.cum_qty or 0) > order.reported_cum_qty:
                self._ingest(report, "sync")
            if (
                order.status is OrderStatus.PENDING_CANCEL
                and order.client_order_id not in self._cancels_in_flight
                and (lost_cancels or order.updated_ns <= started_ns)
            ):
                # Still open at the broker, and no cancel of ours is on its way
                # (one cut off by a drop failed with the connection): it was lost.
                lost = CancelRejectReport(
                    order.client_order_id,
                    order.broker_order_id,
                    "cancel not received by the broker before the connection was lost",
                )
                self._ingest(lost, "sync")
        await self._settle()
        can_ask = self.adapter.capabilities.query_by_client_order_id
        for order in list(self.book.open_orders()):
            if order.client_order_id in seen or order.status is OrderStatus.UNKNOWN:
                continue
            if order.broker_order_id is None and not can_ask:
                continue  # never acknowledged: the unknown-order path owns it
            if order.updated_ns > started_ns:
                continue  # changed after the broker's list was taken
            status = await self.adapter.order_status(order.client_order_id, order.broker_order_id)
            if status is not None:
                if status.status is not order.status:
                    self._ingest(status, "sync")
            elif order.status is not OrderStatus.NEW:
                text = "not among the broker's open orders and unknown to it"
                self._record_nowait(ClosedAtBroker(order.client_order_id, text, time.time_ns()))
        await self._settle()

    async def sync_today_trades(self) -> None:
        """Count the broker's fills we missed; fills we hold are skipped, never recounted."""
        if not self.adapter.capabilities.lists_orders:
            return  # what was missed comes again through the stream (a FIX resend)
        for trade in await self.adapter.today_trades():
            if self.book.knows_fill(trade):
                continue
            if self.book.find(trade.client_order_id, trade.broker_order_id) is None:
                self._record_external(trade)
            else:
                self._ingest(trade, "sync")
        await self._settle()

    def _record_external(self, report: BrokerReport) -> None:
        if external_key(report) not in self.book.external:
            self._record_nowait(ExternalActivity(report, time.time_ns()))

    async def _settle(self) -> None:
        await self.journal.drain()
        self._drain_inbox()

    # -- the resolver: fill gaps and unknown orders --------------------------------
    async def _resolve_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.resolve_interval)
            try:
                await self.resolve_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("resolver round failed; trying again next round")

    async def resolve_once(self) -> None:
        """One round: take control commands, fetch or infer missing fills, settle unknowns."""
        cfg = self.config
        await self._apply_control_commands()
        now = time.monotonic()
        gaps = [o for o in self.book.orders.values() if o.fill_gap > 0]
        for coid in list(self._gap_seen):
            if coid not in {o.client_order_id for o in gaps}:
                del self._gap_seen[coid]
        if gaps:
            for order in gaps:
                self._gap_seen.setdefault(order.client_order_id, now)
            if any(now - self._gap_seen[o.client_order_id] >= cfg.gap_fetch_after for o in gaps):
                await self.sync_today_trades()
            for order in gaps:
                age = now - self._gap_seen.get(order.client_order_id, now)
                if order.fill_gap > 0 and age >= cfg.gap_grace:
                    self._record_nowait(
                        FillInferred(
                            order.client_order_id,
                            order.fill_gap,
                            _gap_price(order),
                            time.time_ns(),
                        )
                    )
            await self._settle()
        unknown = [o for o in self.book.orders.values() if o.status is OrderStatus.UNKNOWN]
        if unknown:
            await self._resolve_unknown(unknown)

    async def _apply_control_commands(self) -> None:
        if self.config.control_dir is None:
            return
        command = read_trading_state_command(self.config.control_dir)
        if command is not None and command.command_id not in self.book.applied_commands:
            log.warning("trading state -> %s by %s: %s", command.state, command.who, command.why)
            await self._record(
                TradingStateChanged(
                    command.state, command.who, command.why, time.time_ns(), command.command_id
                )
            )

    async def _resolve_unknown(self, unknown: list[Order]) -> None:
        caps = self.adapter.capabilities
        if caps.query_by_client_order_id:
            for order in unknown:
                report = await self.adapter.order_status(order.client_order_id, None)
                if report is not None:
                    self._ingest(report, "sync")
        else:
            # Only the broker's lists can tell: is it among the open orders or trades?
            await self.sync_today_trades()
            await self.sync_open_orders()
        await self._settle()
        grace_ns = int(self.config.unknown_grace * 1e9)
        now_ns = time.time_ns()
        for order in unknown:
            if order.status is not OrderStatus.UNKNOWN or now_ns - order.updated_ns < grace_ns:
                continue
            coid = order.client_order_id
            if caps.dedups_client_order_id and order.resent == 0:
                # Safe only because the broker refuses a second order with this id.
                await self._record(SubmitResent(coid, now_ns))
                await self._resend(order)
            else:
                text = (
                    f"no sign of {coid} at the broker {self.config.unknown_grace:g}s after"
                    " its submit became unknown" + (" and a resend" if order.resent else "")
                )
                await self._record(
                    OrderDenied(coid, RejectReason.NOT_FOUND_AT_BROKER, text, now_ns)
                )

    async def _resend(self, order: Order) -> None:
        coid = order.client_order_id
        try:
            async with asyncio.timeout(self.config.place_timeout):
                result: str | BaseException | None = await self.adapter.place(order.to_intent())
        except BrokerRejected as exc:
            if exc.reason is RejectReason.DUPLICATE_CLIENT_ORDER_ID:
                return  # the broker has it after all: its reports or the next round tell us
            result = exc
        except Exception as exc:
            result = exc
        outcome = self._place_outcome(coid, result)
        if outcome is not None and not isinstance(outcome, SubmitUnknown):
            await self._record(outcome)

    # -- queries -----------------------------------------------------------------
    def order(self, client_order_id: str) -> OrderSnapshot:
        order = self.book.orders.get(client_order_id)
        if order is None:
            raise OrderNotFoundError(f"no order with client id {client_order_id!r}")
        return order.snapshot()

    def orders(self, open_only: bool = False) -> list[OrderSnapshot]:
        source: Iterable[Order] = (
            self.book.open_orders() if open_only else self.book.orders.values()
        )
        return [o.snapshot() for o in source]

    def trades(self) -> list[Fill]:
        return list(self.book.fills)

    def external(self) -> list[BrokerReport]:
        """Broker orders and trades we never sent, as the last syncs found them."""
        return list(self.book.external.values())

    def positions(self) -> list[Position]:
        return [p for p in self.book.ledger.positions.values() if p.quantity != 0]

    def cash(self) -> CashBalance:
        return self.book.ledger.balance(self.book.reserved_cash())

    # -- the write-ahead path ----------------------------------------------------
    def _require_running(self) -> None:
        if not self._running:
            raise GatewayNotRunningError("gateway is not running; start() it first")
        if self.journal.failed is not None:
            raise JournalError(f"journal failed, trading stopped: {self.journal.failed}")

    def _ingest(self, report: BrokerReport, source: str) -> asyncio.Future[None]:
        now = time.time_ns()
        if self.metrics is not None and report.ts_ns and source == "stream":
            self.metrics.report_latency.observe(now - report.ts_ns)
        return self._record_nowait(Received(report, now, source))

    async def record(self, event: JournalEvent) -> None:
        """Journal an event and apply it once durable: for the gateway's own collaborators
        (reconciliation decisions), never a way around the order path."""
        await self._record(event)

    async def apply_broker_report(self, report: BrokerReport, source: str) -> None:
        """Ingest a report fetched outside the stream (a recovery or reconciliation query)."""
        await self._record(Received(report, time.time_ns(), source))

    def _record_nowait(self, event: JournalEvent) -> asyncio.Future[None]:
        """Journal an event; it is applied once durable, in journal order."""
        future = self.journal.append(event)
        self._inbox.append((future, event))
        if future is not self._last_batch:
            self._last_batch = future
            future.add_done_callback(self._drain_inbox)
        return future

    async def _record(self, event: JournalEvent) -> None:
        """Journal an event and return once it is durable and applied."""
        await self._record_nowait(event)
        self._drain_inbox()

    def _drain_inbox(self, _: object = None) -> None:
        inbox, apply, metrics = self._inbox, self.book.apply, self.metrics
        checked: asyncio.Future[None] | None = None  # events of one batch share a future
        while inbox:
            future, event = inbox[0]
            if future is not checked:
                if not future.done():
                    break
                if future.cancelled() or future.exception() is not None:
                    # Not durable: must not be applied. The journal is now failed
                    # and the gateway refuses new orders (see _require_running).
                    inbox.popleft()
                    continue
                checked = future
            inbox.popleft()
            apply(event)
            if metrics is not None and type(event) is Received:
                metrics.report_handling.observe(time.time_ns() - event.received_ns)
        if self._anomalies:
            self._note_anomalies()

    async def _ingest_stream(self) -> None:
        """Consume the report stream; when it ends while we run, reconnect and recover.

        Between the drop and the end of the recovery sync, new orders are
        refused (NOT_READY), never queued. The heartbeat watch drops a
        connection that stopped answering, which ends the stream and brings
        us here too.
        """
        while True:
            try:
                async for report in self.adapter.reports():
                    self._ingest(report, "stream")
            except JournalError:
                log.error("journal failed; report ingest stopped")
                return
            except Exception:
                log.exception("report stream ended with an error")
            if self._stopping:
                return
            self.disconnects += 1
            if self.metrics is not None:
                self.metrics.disconnects.inc()
            self._set_connection(ConnectionState.DISCONNECTED)
            log.warning("broker connection lost; reconnecting")
            attempt = 0
            while not self._stopping:
                await asyncio.sleep(self._reconnect_wait(attempt))
                attempt += 1
                try:
                    await self._open_session()
                    break
                except Exception as exc:
                    self.last_connect_error = exc
                    self._set_connection(ConnectionState.DISCONNECTED)
                    log.warning("reconnect attempt %d failed: %r", attempt, exc)
            if self._stopping:
                return
            self.reconnects += 1
            if self.metrics is not None:
                self.metrics.reconnects.inc()
            self._set_connection(ConnectionState.SYNCING)
            try:
                await self.recover()
            except Exception:
                log.exception("recovery after reconnect failed; reconnecting again")
                await self._abort_connection()
                continue
            self._set_connection(ConnectionState.READY)

    def _reconnect_wait(self, attempt: int) -> float:
        """Exponential backoff with equal jitter; a refused credential waits longer."""
        cfg = self.config
        ceiling = min(cfg.reconnect_max_delay, cfg.reconnect_delay * (2**attempt))
        wait: float = ceiling / 2 + random.uniform(0, ceiling / 2)
        if isinstance(self.last_connect_error, BrokerAuthError):
            wait = max(wait, cfg.auth_retry_delay)  # a bad key does not improve by asking
        return wait

    def _set_connection(self, state: ConnectionState) -> None:
        """One place for the connection state: readiness, the gauge, the hooks."""
        self._ready = state in (ConnectionState.READY, ConnectionState.DEGRADED)
        if state is self.connection_state:
            return
        self.connection_state = state
        if self.metrics is not None:
            self.metrics.ready.set(1 if self._ready else 0)
            self.metrics.connection_state = state
        for hook in self.on_connection_state:
            try:
                hook(state)
            except Exception:
                log.exception("connection state hook %r failed", hook)

    # -- telling the strategy ----------------------------------------------------
    def _on_change(self, order: Order, fill: Fill | None) -> None:
        self.risk.track(order)
        if self.metrics is not None:
            self._measure(order, fill)
        if self.order_log is not None:
            self.order_log.change(order, fill)
        self._dispatch(order, fill)

    def _measure(self, order: Order, fill: Fill | None) -> None:
        m = self.metrics
        assert m is not None
        coid = order.client_order_id
        if fill is not None:
            m.fills.value += 1
        if order.broker_order_id is not None and coid not in self._acknowledged:
            self._acknowledged.add(coid)
            m.orders_accepted.value += 1
            # A negative value (the clock stepped back) lands in the first bucket.
            m.order_round_trip.observe(time.time_ns() - order.created_ns)
        if order.status is OrderStatus.REJECTED and coid not in self._counted_rejects:
            self._counted_rejects.add(coid)
            reason = order.reject_reason.value if order.reject_reason else "UNKNOWN"
            m.orders_rejected.labels(reason).inc()

    def _dispatch(self, order: Order, fill: Fill | None) -> None:
        if self._order_cbs:
            snapshot = order.snapshot()
            for order_cb in self._order_cbs:
                self._call(order_cb, snapshot)
        if fill is not None:
            for trade_cb in self._trade_cbs:
                self._call(trade_cb, fill)
        if self._exec_cbs:
            report = ExecutionReport(
                order.client_order_id,
                order.broker_order_id,
                order.symbol,
                order.side,
                order.status,
                order.quantity,
                order.filled_qty,
                order.leaves_qty,
                order.avg_fill_price,
                fill.quantity if fill else None,
                fill.price if fill else None,
                fill.trade_id if fill else None,
                order.reject_reason,
                order.reject_text,
                order.updated_ns,
            )
            for exec_cb in self._exec_cbs:
                self._call(exec_cb, report)

    def _call(self, callback: Callable[[T], object], value: T) -> None:
        started = time.perf_counter_ns() if self.metrics is not None else 0
        try:
            callback(value)
        except Exception:
            # A strategy's bug must not stop report ingest for every other order.
            self.callback_errors += 1
            log.exception("strategy callback %r failed", callback)
        if self.metrics is not None:
            self.metrics.callback_duration.observe(time.perf_counter_ns() - started)

    def _anomaly(self, kind: str, client_order_id: str | None, detail: str) -> None:
        self.anomalies[kind] += 1
        if kind in REFUSED_REPORTS:
            # Something the broker said is not in our books: say so now, not only
            # in the journal (the alert rule `refused-reports` reads this).
            log.warning("%s for %s: %s", kind, client_order_id, detail)
            self.refused_reports.append((time.monotonic(), kind, client_order_id, detail))
        if self.metrics is not None:
            self.metrics.anomalies.labels(kind).inc()
        self._anomalies.append(Anomaly(kind, client_order_id, detail, time.time_ns()))

    def _note_anomalies(self) -> None:
        """Journal the anomalies of what was just applied, as one record."""
        if self._anomalies and self.journal.failed is None:
            items, self._anomalies = tuple(self._anomalies), []
            self.journal.append(AnomalyBatch(items)).add_done_callback(_retrieve)


def _gap_price(order: Order) -> Decimal:
    """The price of fills we never saw: from the broker's average where it gave one."""
    avg, cum = order.reported_avg_price, order.reported_cum_qty
    gap = order.fill_gap
    if avg is not None and gap > 0:
        missing = (avg * cum - order.filled_notional) / gap
        if missing > 0:
            return missing
    return avg or order.price or order.avg_fill_price or Decimal(0)


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()
