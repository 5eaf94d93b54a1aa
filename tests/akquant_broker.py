"""A small akquant custom broker, written the way akquant's guide writes one.

`DeskBroker` subclasses akquant's `TraderGatewayBase`: its "SDK" is an
in-memory exchange that answers on a thread of its own, as a vendor SDK's
callbacks do, matching orders against the quotes a test sets. It knows
nothing of livegate; `certify_target` wraps it with livegate's
`AkquantBroker` so that `livegate certify` can judge it.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from akquant.gateway.broker_models import (
    BrokerCapability,
    UnifiedAccount,
    UnifiedErrorType,
    UnifiedOrderRequest,
    UnifiedOrderSnapshot,
    UnifiedOrderStatus,
    UnifiedPosition,
    UnifiedTrade,
)
from akquant.gateway.trader_base import TraderGatewayBase

from livegate.drills.certify.target import CertifyEnv, Target
from livegate.integrations.akquant import AkquantBroker  # type: ignore[attr-defined]
from livegate.model.samples import DEMO_START_PRICES

SYMBOLS = frozenset(DEMO_START_PRICES)
OPEN = (UnifiedOrderStatus.NEW, UnifiedOrderStatus.SUBMITTED, UnifiedOrderStatus.PARTIALLY_FILLED)


class Refused(RuntimeError):
    """The desk refused the order: it does not exist there."""


@dataclass
class _Order:
    request: UnifiedOrderRequest
    broker_order_id: str
    status: UnifiedOrderStatus = UnifiedOrderStatus.SUBMITTED
    filled: float = 0.0
    cost: float = 0.0
    reason: str = ""

    def snapshot(self) -> UnifiedOrderSnapshot:
        avg = self.cost / self.filled if self.filled else 0.0
        return UnifiedOrderSnapshot(
            self.request.client_order_id, self.broker_order_id, self.request.symbol,
            self.status, self.filled, avg, self.reason, time.time_ns(),
        )  # fmt: skip


@dataclass
class Exchange:
    """The desk's venue: orders, trades, cash and positions, one lock."""

    cash: float = 1_000_000.0
    quotes: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    orders: dict[str, _Order] = field(default_factory=dict)
    trades: list[UnifiedTrade] = field(default_factory=list)
    positions: dict[str, float] = field(default_factory=dict)
    costs: dict[str, float] = field(default_factory=dict)  # what the position cost
    lock: threading.Lock = field(default_factory=threading.Lock)
    ids: Any = field(default_factory=lambda: itertools.count(1))


class DeskBroker(TraderGatewayBase):
    def __init__(self, exchange: Exchange | None = None, api_key: str = "desk-key") -> None:
        super().__init__()
        self.exchange = exchange or Exchange()
        self.api_key = api_key
        self.connected = False
        self._events: queue.Queue[Any] = queue.Queue()
        self._sdk = threading.Thread(target=self._sdk_loop, name="desk-sdk", daemon=True)
        self._sdk.start()

    def _sdk_loop(self) -> None:  # the vendor SDK's callback thread
        while True:
            kind, payload = self._events.get()
            if kind == "order":
                self._emit_order(payload)
                self._emit_exec_from_order(payload)
            else:
                self._emit_trade(payload)

    # --- session ---
    def connect(self) -> None:
        if self.api_key != "desk-key":
            raise PermissionError("login refused")
        self.connected = True

    def disconnect(self) -> None:
        self.connected = False

    def start(self) -> None:
        pass

    def heartbeat(self) -> bool:
        return self.connected

    def get_capabilities(self) -> BrokerCapability:
        return BrokerCapability(broker_name="desk")

    # --- orders ---
    def place_order(self, req: UnifiedOrderRequest) -> str:
        ex = self.exchange
        with ex.lock:
            if req.symbol not in SYMBOLS:
                raise Refused(f"unknown symbol {req.symbol}")
            if req.client_order_id in {o.request.client_order_id for o in ex.orders.values()}:
                raise Refused(f"duplicate client order id {req.client_order_id}")
            order = _Order(req, f"D{next(ex.ids)}")
            if req.order_type == "Market" and req.symbol not in ex.quotes:
                order.status, order.reason = UnifiedOrderStatus.REJECTED, "no quote"
            ex.orders[order.broker_order_id] = order
            self._events.put(("order", order.snapshot()))
            self._match(order)
        return order.broker_order_id

    def classify_order_error(self, exc: BaseException) -> UnifiedErrorType:
        if isinstance(exc, Refused):
            return UnifiedErrorType.NON_RETRYABLE
        return UnifiedErrorType.RETRYABLE

    def cancel_order(self, broker_order_id: str) -> None:
        ex = self.exchange
        with ex.lock:
            order = ex.orders.get(broker_order_id)
            if order is None or order.status not in OPEN:
                raise Refused(f"{broker_order_id} is not open")
            order.status = UnifiedOrderStatus.CANCELLED
            self._events.put(("order", order.snapshot()))

    def set_quote(self, symbol: str, bid: float, ask: float, size: float = 1e9) -> None:
        ex = self.exchange
        with ex.lock:
            ex.quotes[symbol] = (bid, ask, size)
            for order in list(ex.orders.values()):
                if order.status in OPEN and order.request.symbol == symbol:
                    self._match(order)

    def _match(self, order: _Order) -> None:
        """Called with the lock held: fill what the quote allows."""
        ex, req = self.exchange, order.request
        if order.status not in OPEN or req.symbol not in ex.quotes:
            return
        bid, ask, size = ex.quotes[req.symbol]
        buy = req.side.lower() == "buy"
        price = ask if buy else bid
        if req.order_type == "Limit" and (price > req.price if buy else price < req.price):
            return
        quantity = min(req.quantity - order.filled, size)
        if quantity <= 0:
            return
        ex.quotes[req.symbol] = (bid, ask, size - quantity)
        order.filled += quantity
        order.cost += quantity * price
        signed = quantity if buy else -quantity
        held = ex.positions.get(req.symbol, 0.0)
        if held == 0 or (held > 0) == buy:  # opening or adding: the average moves
            ex.costs[req.symbol] = ex.costs.get(req.symbol, 0.0) + quantity * price
        else:  # reducing at the average; a flip starts a new average at this price
            average = ex.costs.get(req.symbol, 0.0) / abs(held)
            left = held + signed
            ex.costs[req.symbol] = (
                abs(left) * average if (left > 0) == (held > 0) else abs(left) * price
            )
        ex.positions[req.symbol] = held + signed
        ex.cash -= signed * price
        done = order.filled >= req.quantity
        order.status = UnifiedOrderStatus.FILLED if done else UnifiedOrderStatus.PARTIALLY_FILLED
        fill = UnifiedTrade(
            f"X{next(ex.ids)}", order.broker_order_id, req.client_order_id, req.symbol,
            req.side, quantity, price, time.time_ns(),
        )  # fmt: skip
        ex.trades.append(fill)
        self._events.put(("trade", fill))
        self._events.put(("order", order.snapshot()))

    # --- queries ---
    def query_order(self, broker_order_id: str) -> UnifiedOrderSnapshot | None:
        with self.exchange.lock:
            order = self.exchange.orders.get(broker_order_id)
            return order.snapshot() if order else None

    def query_trades(self, since: int | None = None) -> list[UnifiedTrade]:
        return self.sync_today_trades()

    def sync_open_orders(self) -> list[UnifiedOrderSnapshot]:
        with self.exchange.lock:
            return [o.snapshot() for o in self.exchange.orders.values() if o.status in OPEN]

    def sync_today_trades(self) -> list[UnifiedTrade]:
        with self.exchange.lock:
            return list(self.exchange.trades)

    def query_account(self) -> UnifiedAccount:
        """Available: cash less what open limit buys hold back, as real desks report it."""
        with self.exchange.lock:
            cash = self.exchange.cash
            held = sum(
                (o.request.quantity - o.filled) * (o.request.price or 0.0)
                for o in self.exchange.orders.values()
                if o.status in OPEN and o.request.side.lower() == "buy"
            )
        return UnifiedAccount("desk", cash, cash, cash - held, time.time_ns())

    def query_positions(self) -> list[UnifiedPosition]:
        with self.exchange.lock:
            ex = self.exchange
            return [
                UnifiedPosition(s, q, q, avg_price=ex.costs.get(s, 0.0) / abs(q))
                for s, q in ex.positions.items()
                if q
            ]


# --- for `livegate certify tests/akquant_broker.py:certify_target` --------------------------
_EXCHANGES: dict[Path, Exchange] = {}  # one venue per certify folder: restarts find it


@dataclass
class DeskMarket:
    broker: DeskBroker
    symbol: str = "AAPL"
    mid: Decimal = DEMO_START_PRICES["AAPL"]
    tick: Decimal = Decimal("0.01")

    async def quote(self, bid: Decimal, ask: Decimal, size: Decimal | None = None) -> None:
        self.broker.set_quote(self.symbol, float(bid), float(ask), float(size or 1e9))

    async def throttle(self, on: bool) -> bool:
        return False


def certify_target(env: CertifyEnv) -> Target:
    exchange = _EXCHANGES.setdefault(env.directory, Exchange())
    broker = DeskBroker(exchange, "wrong-key" if env.bad_credentials else "desk-key")
    return Target(
        AkquantBroker(broker, currency="USD"),
        DeskMarket(broker),
        checks_symbol=True,
        time_in_force=("DAY",),
        reachable_from_another_process=False,
    )
