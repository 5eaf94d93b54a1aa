"""The paper broker: an in-process broker that matches against quotes you feed it.

It behaves like a small real broker on purpose, because the gateway's
hardening is tested against it: it assigns its own order and trade ids,
fills partially when displayed liquidity is short, charges fees, keeps
positions and cash, refuses a second order with a known client id, and
keeps its book in its own file (`PaperBookFile`) so that it outlives a crash
of the gateway sharing its process. Reports are released only after the
book holding them is saved, as a real broker acknowledges only what it
has recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import msgspec

from livegate.broker.errors import BrokerRejected
from livegate.broker.paper.book_file import PaperBookFile, PaperState
from livegate.model.account import AccountSnapshot
from livegate.model.decimals import ZERO
from livegate.model.enums import LiquiditySide, OrderStatus, OrderType, RejectReason, Side
from livegate.model.enums import TimeInForce as Tif
from livegate.model.ledger import Ledger
from livegate.model.orders import OrderIntent
from livegate.model.reports import BrokerReport, OrderReport, TradeReport

CENT = Decimal("0.01")


class PaperOrder(msgspec.Struct):
    broker_order_id: str
    client_order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    time_in_force: Tif
    quantity: Decimal
    price: Decimal | None
    status: OrderStatus = OrderStatus.SUBMITTED
    filled_qty: Decimal = ZERO
    filled_notional: Decimal = ZERO
    ts_ns: int = 0
    number: int = 0

    def report(self, ts_ns: int = 0) -> OrderReport:
        return OrderReport(
            status=self.status,
            client_order_id=self.client_order_id,
            broker_order_id=self.broker_order_id,
            cum_qty=self.filled_qty,
            avg_price=self.filled_notional / self.filled_qty if self.filled_qty else None,
            ts_ns=ts_ns or self.ts_ns,
        )


@dataclass
class Quote:
    bid: Decimal | None
    ask: Decimal | None
    bid_size: Decimal  # liquidity still available at the bid
    ask_size: Decimal


@dataclass
class PaperConfig:
    """Liquidity and cost model.

    displayed_liquidity: size available at each quote when the quote gives none;
    a quote's size is consumed by fills until the next quote refreshes it.
    """

    initial_cash: Decimal = Decimal(1_000_000)
    currency: str = "USD"
    fee_rate: Decimal = Decimal("0.0003")
    min_fee: Decimal = Decimal("1.00")
    displayed_liquidity: Decimal = Decimal(1_000)


@dataclass
class PaperBroker:
    path: Path | str
    config: PaperConfig = field(default_factory=PaperConfig)

    def __post_init__(self) -> None:
        self.file = PaperBookFile(Path(self.path))
        self.orders: dict[str, PaperOrder] = {}
        self.by_client_id: dict[str, str] = {}
        self.trades: list[TradeReport] = []
        self.ledger = Ledger(self.config.currency, self.config.initial_cash)
        self.quotes: dict[str, Quote] = {}
        self.resting: dict[str, list[PaperOrder]] = {}
        self.next_order_no = 1
        self.next_trade_no = 1
        self.duplicate_place_attempts = 0
        self.clock_ns = 0
        self._dirty: dict[str, PaperOrder] = {}
        self._new_trades: list[TradeReport] = []
        self._state_dirty = False
        self.outbox: list[BrokerReport] = []

    # -- persistence -----------------------------------------------------
    def open(self) -> None:
        """Load the book from its file (a fresh broker if there is none)."""
        self.file.open()
        state = self.file.load_state()
        if state is not None:
            self.ledger.cash = state.cash
            self.ledger.fees_paid = state.fees_paid
            self.ledger.positions = {p.symbol: p for p in state.positions}
            self.next_order_no = state.next_order_no
            self.next_trade_no = state.next_trade_no
            self.duplicate_place_attempts = state.duplicate_place_attempts
        for order in self.file.load_orders(PaperOrder):
            self.orders[order.broker_order_id] = order
            self.by_client_id[order.client_order_id] = order.broker_order_id
            if order.status.is_open:
                self.resting.setdefault(order.symbol, []).append(order)
        self.trades = list(self.file.load_trades(TradeReport))

    def flush(self) -> list[BrokerReport]:
        """Save what changed, then hand over the reports that may now be told."""
        if self._dirty or self._new_trades or self._state_dirty:
            self.file.save(list(self._dirty.values()), self._new_trades, self._state())
            self._dirty.clear()
            self._new_trades = []
            self._state_dirty = False
        out, self.outbox = self.outbox, []
        return out

    def _state(self) -> PaperState:
        return PaperState(
            cash=self.ledger.cash,
            fees_paid=self.ledger.fees_paid,
            positions=tuple(self.ledger.positions.values()),
            next_order_no=self.next_order_no,
            next_trade_no=self.next_trade_no,
            duplicate_place_attempts=self.duplicate_place_attempts,
        )

    def close(self) -> None:
        self.flush()
        self.file.close()

    # -- market data -----------------------------------------------------
    def set_quote(
        self,
        symbol: str,
        bid: Decimal | None,
        ask: Decimal | None,
        bid_size: Decimal | None = None,
        ask_size: Decimal | None = None,
        ts_ns: int = 0,
    ) -> None:
        depth = self.config.displayed_liquidity
        self.quotes[symbol] = Quote(bid, ask, bid_size or depth, ask_size or depth)
        self.clock_ns = max(self.clock_ns, ts_ns)
        resting = self.resting.get(symbol)
        if resting:
            for order in list(resting):
                self._match(order)
            self.resting[symbol] = [o for o in resting if o.status.is_open]

    # -- orders ----------------------------------------------------------
    def place(self, intent: OrderIntent) -> str:
        if intent.client_order_id in self.by_client_id:
            self.duplicate_place_attempts += 1
            self._state_dirty = True
            raise BrokerRejected(
                f"duplicate client order id {intent.client_order_id}",
                RejectReason.DUPLICATE_CLIENT_ORDER_ID,
            )
        quote = self.quotes.get(intent.symbol)
        if intent.order_type is OrderType.MARKET and (
            quote is None or (quote.ask if intent.side is Side.BUY else quote.bid) is None
        ):
            raise BrokerRejected(f"no quote for {intent.symbol}", RejectReason.NO_LIQUIDITY)
        number = self.next_order_no
        boid = f"P{number:09d}"
        self.next_order_no += 1
        order = PaperOrder(
            boid,
            intent.client_order_id,
            intent.symbol,
            intent.side,
            intent.order_type,
            intent.time_in_force,
            intent.quantity,
            intent.price,
            ts_ns=self.clock_ns,
            number=number,
        )
        self.orders[boid] = order
        self.by_client_id[order.client_order_id] = boid
        self._dirty[boid] = order
        self._match(order)
        if order.status.is_open:
            if order.time_in_force is Tif.IOC:
                self._finish(order, OrderStatus.CANCELLED)
            else:
                self.resting.setdefault(order.symbol, []).append(order)
        return boid

    def cancel(self, client_order_id: str, broker_order_id: str | None) -> None:
        order = self.find(client_order_id, broker_order_id)
        if order is None:
            raise BrokerRejected(f"unknown order {broker_order_id or client_order_id}")
        if not order.status.is_open:
            raise BrokerRejected(f"order {order.broker_order_id} is {order.status}, not open")
        self._finish(order, OrderStatus.CANCELLED)
        resting = self.resting.get(order.symbol)
        if resting and order in resting:
            resting.remove(order)

    def find(self, client_order_id: str | None, broker_order_id: str | None) -> PaperOrder | None:
        if broker_order_id:
            return self.orders.get(broker_order_id)
        boid = self.by_client_id.get(client_order_id or "")
        return self.orders.get(boid) if boid else None

    def open_orders(self) -> list[OrderReport]:
        return [o.report() for o in self.orders.values() if o.status.is_open]

    def account(self, account: str = "paper") -> AccountSnapshot:
        reserved = sum(
            (
                (o.quantity - o.filled_qty) * (o.price or ZERO)
                for o in self.orders.values()
                if o.status.is_open and o.side is Side.BUY
            ),
            ZERO,
        )
        return AccountSnapshot(
            account=account,
            currency=self.ledger.currency,
            cash=self.ledger.cash,
            available=self.ledger.cash - reserved,
            positions=tuple(p for p in self.ledger.positions.values() if p.quantity != 0),
            ts_ns=self.clock_ns,
        )

    # -- matching --------------------------------------------------------
    def _match(self, order: PaperOrder) -> None:
        quote = self.quotes.get(order.symbol)
        if quote is None:
            return
        if order.side is Side.BUY:
            px, available = quote.ask, quote.ask_size
            crosses = px is not None and (order.price is None or order.price >= px)
        else:
            px, available = quote.bid, quote.bid_size
            crosses = px is not None and (order.price is None or order.price <= px)
        if not crosses or available <= 0 or px is None:
            return
        qty = min(order.quantity - order.filled_qty, available)
        if order.side is Side.BUY:
            quote.ask_size -= qty
        else:
            quote.bid_size -= qty
        self._fill(order, qty, px)

    def _fill(self, order: PaperOrder, qty: Decimal, price: Decimal) -> None:
        cfg = self.config
        fee = max(cfg.min_fee, (qty * price * cfg.fee_rate).quantize(CENT, ROUND_HALF_UP))
        trade = TradeReport(
            quantity=qty,
            price=price,
            client_order_id=order.client_order_id,
            broker_order_id=order.broker_order_id,
            trade_id=f"T{self.next_trade_no:09d}",
            symbol=order.symbol,
            side=order.side,
            fee=fee,
            liquidity=LiquiditySide.TAKER,
            ts_ns=self.clock_ns,
        )
        self.next_trade_no += 1
        self.trades.append(trade)
        self._new_trades.append(trade)
        self.ledger.apply_fill(order.symbol, order.side, qty, price, fee)
        order.filled_qty += qty
        order.filled_notional += qty * price
        done = order.filled_qty == order.quantity
        order.status = OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED
        self._dirty[order.broker_order_id] = order
        self.outbox.append(trade)
        self.outbox.append(order.report(self.clock_ns))

    def _finish(self, order: PaperOrder, status: OrderStatus) -> None:
        order.status = status
        self._dirty[order.broker_order_id] = order
        self.outbox.append(order.report(self.clock_ns))
