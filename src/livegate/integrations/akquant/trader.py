"""`LivegateTrader`: akquant's TraderGateway, with livegate's whole service behind it.

akquant calls a trader gateway from four threads (its main thread, the
trader thread, the recovery thread, the dispatch thread that runs the
strategy's callbacks). livegate's service (gateway, alerts, reconciliation,
metrics, control folder) runs on one event loop in a thread of its own;
every call here is handed to that loop and waited for (engine/sync_facade).

Rules that keep akquant's books equal to ours (docs/akquant.md):
- the id akquant keys on is our client order id, returned even when the
  outcome is UNKNOWN; only a refusal (the order certainly does not exist)
  raises, classified;
- akquant adds up fills by trade id for the whole session and never checks
  again, so each order's *new filled quantity* is delivered once (an
  inferred fill and the real one that replaces it are one delivery), and
  `sync_today_trades` answers exactly what was delivered;
- order events come only from our state machine, never from raw reports;
- nothing here blocks the loop thread: callbacks only enqueue into akquant.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

from akquant.gateway.broker_models import (
    BrokerCapability,
    UnifiedAccount,
    UnifiedErrorType,
    UnifiedOrderRequest,
    UnifiedOrderSnapshot,
    UnifiedPosition,
    UnifiedTrade,
)
from akquant.gateway.trader_base import TraderGatewayBase

from livegate.broker.paper import PaperAdapter
from livegate.engine.gateway import Gateway
from livegate.engine.sync_facade import SyncGateway
from livegate.integrations.akquant import mapping
from livegate.model.enums import OrderStatus
from livegate.model.errors import LivegateError, OrderNotFoundError
from livegate.model.orders import OrderSnapshot
from livegate.model.reports import Fill
from livegate.ops.profiles import ProfileError, load_profiles, resolve_webhook
from livegate.ops.service import GatewayService, ServiceConfig
from livegate.ops.wiring import build_gateway

log = logging.getLogger("livegate.akquant")
_RISKY = ("RISK_", "ROLLOUT_", "PRICE_", "KILL_SWITCH", "REDUCE_ONLY", "SESSION_CLOSED")


class Refused(LivegateError):
    """livegate refused the order before it reached the broker: it does not exist."""

    def __init__(self, order: OrderSnapshot) -> None:
        super().__init__(f"{order.reject_reason}: {order.reject_text}")
        self.reason = str(order.reject_reason or "")


class ServiceHost(SyncGateway):
    """SyncGateway's loop, running `livegate serve`'s service instead of a bare gateway."""

    def __init__(self, service: GatewayService, timeout: float = 60.0) -> None:
        super().__init__(service.gateway, timeout)
        self.service = service
        self._served: Any = None

    def start(self) -> ServiceHost:
        self._thread.start()
        up = threading.Event()
        self._served = asyncio.run_coroutine_threadsafe(
            self.service.run(on_ready=up.set), self._loop
        )
        while not up.wait(0.05):
            if self._served.done():  # a failed start: its error, here
                self._served.result()
        return self

    def post(self, fn: Any) -> None:
        """Run `fn` on the loop thread, not waiting (akquant's market thread must not block)."""
        self._loop.call_soon_threadsafe(fn)

    def stop(self) -> None:
        try:
            self._loop.call_soon_threadsafe(self.service.request_stop)
            if self._served is not None:
                self._served.result(self.timeout)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(self.timeout)
            self._loop.close()


class PricedFeed:
    """akquant's DataFeed, as a market gateway sees it, also telling livegate each price."""

    def __init__(self, feed: Any, mark: Any) -> None:
        self._feed = feed
        self._mark = mark

    def add_bar(self, bar: Any) -> None:
        self._mark(bar.symbol, bar.close)  # first: the strategy may trade on this bar
        self._feed.add_bar(bar)

    def add_bars(self, bars: Any) -> None:
        for bar in bars:
            self._mark(bar.symbol, bar.close)
        self._feed.add_bars(bars)

    def add_tick(self, tick: Any) -> None:
        self._mark(tick.symbol, tick.price)
        self._feed.add_tick(tick)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._feed, name)


class LivegateTrader(TraderGatewayBase):
    def __init__(
        self,
        config: str | Path | None,
        profile: str | None,
        metrics_port: int | None = None,
        environ: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self._config = Path(config) if config else None
        self._profile = profile
        self._metrics_port = metrics_port
        self._environ = environ
        self._start_lock = threading.Lock()
        self._host: ServiceHost | None = None
        self._lock = threading.Lock()  # the delivery ledger, read from akquant's threads
        self._forwarded: dict[str, Decimal] = {}
        self._since_ns = 0  # when the gateway of this host started
        self._ledger: list[UnifiedTrade] = []
        self._placing: set[str] = set()  # refusals of these are raised, not emitted
        self._marks: dict[str, Decimal] = {}  # the latest price of each symbol

    # -- lifecycle ---------------------------------------------------------------------
    def connect(self) -> None:
        """Start livegate once (idempotent, thread-safe); while it runs, it reconnects to
        the broker by itself, so a later call has nothing to do."""
        with self._start_lock:
            if self._host is not None:
                return
            host = ServiceHost(self._service())
            gateway = host.gateway
            gateway.on_order(self._order_changed)
            gateway.on_trade(self._filled)
            host.start()
            with self._lock:  # what earlier sessions filled was delivered to them
                self._since_ns = gateway.clock.now_ns()
                for order in gateway.book.orders.values():
                    self._forwarded[order.client_order_id] = order.filled_qty
            self._host = host
            atexit.register(self.disconnect)
            marks = list(self._marks.items())  # prices seen before livegate was up
            host.call_in_loop(lambda: self._apply_marks(marks))

    def _service(self) -> GatewayService:
        if self._config is None or not self._profile:
            raise ProfileError(
                "gateway_options need livegate_config (a profiles file) and livegate_profile"
            )
        profiles = load_profiles(self._config)
        if self._profile not in profiles:
            raise ProfileError(f"{self._config}: no profile {self._profile!r}")
        profile = profiles[self._profile]
        gateway = build_gateway(profile, self._environ)
        config = ServiceConfig(
            Path(profile.data_dir),
            environment=profile.environment,
            metrics_port=self._metrics_port,
            webhook=resolve_webhook(profile, self._environ),
            profile=profile,
            calendar=profile.calendar,
        )
        return GatewayService(gateway, config)

    def start(self) -> None:
        """akquant's event-loop hook: livegate's loop runs already."""

    def disconnect(self) -> None:
        """akquant never calls it; atexit does (the journal makes a hard exit safe too)."""
        with self._start_lock:
            host, self._host = self._host, None
        if host is not None:
            host.stop()

    @property
    def gateway(self) -> Gateway | None:
        return self._host.gateway if self._host is not None else None

    def heartbeat(self) -> bool:
        """Cheap and non-blocking: connected and recovered, read from the gateway."""
        host = self._host
        return host is not None and host.gateway.ready

    def get_capabilities(self) -> BrokerCapability:
        return BrokerCapability(broker_name="livegate", supports_short_sell=False)

    # -- orders ---------------------------------------------------------------------------
    def place_order(self, req: UnifiedOrderRequest) -> str:
        host = self._require()
        ours = mapping.request(req)
        coid = str(req.client_order_id)
        with self._lock:
            self._placing.add(coid)
        try:
            order = host.submit_order(ours)
        finally:
            with self._lock:
                self._placing.discard(coid)
        if order.status is OrderStatus.REJECTED:
            raise Refused(order)
        return coid  # UNKNOWN included: the broker is asked, never sent twice

    def classify_order_error(self, exc: BaseException) -> UnifiedErrorType:
        if isinstance(exc, Refused):
            risky = exc.reason.startswith(_RISKY)
            return UnifiedErrorType.RISK_REJECTED if risky else UnifiedErrorType.NON_RETRYABLE
        if isinstance(exc, mapping.Unsupported | LivegateError | ValueError):
            return UnifiedErrorType.NON_RETRYABLE  # refused before anything was journaled
        return UnifiedErrorType.RETRYABLE  # an unknown outcome: akquant must not say rejected

    def cancel_order(self, broker_order_id: str) -> None:
        self._require().cancel_order(client_order_id=broker_order_id)

    def query_order(self, broker_order_id: str) -> UnifiedOrderSnapshot | None:
        try:
            return mapping.order_snapshot(self._require().order(broker_order_id))
        except OrderNotFoundError:
            return None

    def sync_open_orders(self) -> list[UnifiedOrderSnapshot]:
        return [mapping.order_snapshot(o) for o in self._require().orders(open_only=True)]

    def sync_today_trades(self) -> list[UnifiedTrade]:
        with self._lock:
            return list(self._ledger)

    def query_trades(self, since: int | None = None) -> list[UnifiedTrade]:
        with self._lock:
            return [t for t in self._ledger if since is None or t.timestamp_ns >= since]

    def query_account(self) -> UnifiedAccount | None:
        host = self._require()
        cash = host.cash()
        held = host.positions()
        equity = cash.balance + sum((p.quantity * p.avg_price for p in held), Decimal(0))
        account = host.gateway.config.account
        clock = host.gateway.clock.now_ns()
        return UnifiedAccount(
            account, float(equity), float(cash.balance), float(cash.available), clock
        )

    def query_positions(self) -> list[UnifiedPosition]:
        return [mapping.position(p) for p in self._require().positions()]

    def _require(self) -> ServiceHost:
        host = self._host
        if host is None:
            raise LivegateError("livegate is not connected yet (akquant calls connect() first)")
        return host

    # -- prices from akquant's market side ---------------------------------------------------
    def mark(self, symbol: str, price: float) -> None:
        """The market's latest price: livegate's reference price (risk caps value market
        orders with it) and, on the embedded paper broker, its quote."""
        try:
            value = Decimal(str(price))
        except ArithmeticError:
            return
        if not value.is_finite() or value <= 0:
            return
        self._marks[symbol] = value
        host = self._host
        if host is not None and host.gateway.running:
            host.post(lambda: self._apply_mark(symbol, value))

    def _apply_marks(self, marks: list[tuple[str, Decimal]]) -> None:
        for symbol, price in marks:
            self._apply_mark(symbol, price)

    def _apply_mark(self, symbol: str, price: Decimal) -> None:
        gateway = self.gateway
        if gateway is None or not gateway.running:
            return
        gateway.set_reference_price(symbol, price)
        if isinstance(gateway.adapter, PaperAdapter):
            gateway.adapter.set_quote(symbol, price, price)

    # -- from livegate's loop thread: enqueue into akquant only ------------------------------
    def _order_changed(self, order: OrderSnapshot) -> None:
        with self._lock:
            held_back = (
                order.status is OrderStatus.REJECTED and order.client_order_id in self._placing
            )
        if held_back:
            return  # place_order raises it, classified: one rejection, not two
        snapshot = mapping.order_snapshot(order)
        self._emit_order(snapshot)
        self._emit_exec_from_order(snapshot)

    def _filled(self, fill: Fill) -> None:
        gateway = self.gateway
        order = gateway.book.orders.get(fill.client_order_id) if gateway is not None else None
        if order is None:
            return
        with self._lock:
            if fill.client_order_id not in self._forwarded and fill.replaces is None:
                # An order not in memory when this host started (it had left for the
                # archive): what it filled before this fill was delivered back then.
                before = order.filled_qty - fill.quantity
                self._forwarded[fill.client_order_id] = (
                    before if order.created_ns < self._since_ns else Decimal(0)
                )
            new = order.filled_qty - self._forwarded.get(fill.client_order_id, Decimal(0))
            if new <= 0:
                return  # the real fill of an inferred one: delivered already
            self._forwarded[fill.client_order_id] = order.filled_qty
            delivered = mapping.trade(fill, new)
            self._ledger.append(delivered)
        self._emit_trade(delivered)
