"""The paper broker: an in-process broker that matches against quotes you feed it.

It behaves like a small real broker on purpose, because the gateway's
hardening is tested against it: it assigns its own order and trade ids,
fills partially when displayed liquidity is short, charges fees, keeps
positions and cash, refuses a second order with a known client id, and
keeps its book in its own file so that it outlives a crash of the gateway
sharing its process. The file is a log of the broker's own events (order
states, trades, refused duplicates) written through the same group-commit
`Journal` as the gateway's, with `synchronous=NORMAL` (survives a killed
process, which is what a simulator needs). Reports are released only after
the events behind them are saved, as a real broker acknowledges only what
it has recorded.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import msgspec

from livegate.broker.errors import BrokerRejected
from livegate.journal.journal import Journal
from livegate.journal.sqlite import SQLiteStore
from livegate.model.account import AccountSnapshot, Position
from livegate.model.decimals import ZERO
from livegate.model.enums import LiquiditySide, OrderStatus, OrderType, RejectReason, Side
from livegate.model.enums import TimeInForce as Tif
from livegate.model.ledger import Ledger
from livegate.model.orders import OrderIntent
from livegate.model.reports import BrokerReport, OrderReport, TradeReport

CENT = Decimal("0.01")


class PaperOrder(msgspec.Struct, gc=False, tag="paper_order"):
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

    def report(self, ts_ns: int = 0, listed: bool = False) -> OrderReport:
        """`listed`: as the broker lists it (with symbol, side and size); stream
        reports leave those out, the order is known."""
        return OrderReport(
            status=self.status,
            client_order_id=self.client_order_id,
            broker_order_id=self.broker_order_id,
            cum_qty=self.filled_qty,
            avg_price=self.filled_notional / self.filled_qty if self.filled_qty else None,
            ts_ns=ts_ns or self.ts_ns,
            symbol=self.symbol if listed else "",
            side=self.side if listed else None,
            quantity=self.quantity if listed else None,
        )


class PaperDuplicate(msgspec.Struct, frozen=True, tag="paper_duplicate"):
    """A refused second order with a known client id (the crash tests count these)."""

    client_order_id: str


class PaperFunded(msgspec.Struct, frozen=True, tag="paper_funded", omit_defaults=True):
    """The account's opening cash (and positions, for a book that takes over from a
    live broker): the first event of a paper book, so reopening the book with
    another configuration cannot change its money."""

    cash: Decimal
    currency: str
    positions: tuple[Position, ...] = ()


class PaperForgotten(msgspec.Struct, frozen=True, tag="paper_forgotten"):
    """An order the broker lost with its book (a simulated restart without state)."""

    broker_order_id: str


PaperEvent = PaperOrder | TradeReport | PaperDuplicate | PaperFunded | PaperForgotten


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
    initial_positions: tuple[Position, ...] = ()  # a fallback book starts from the broker's
    id_prefix: str = ""  # before order and trade ids: a fallback book's never meet the broker's
    # A stricter broker, as real ones are (and certify expects them to be):
    listed: frozenset[str] | None = None  # the symbols it takes; others UNKNOWN_SYMBOL
    tick_size: Decimal | None = None  # limit prices off this tick: TICK_SIZE
    check_funds: bool = False  # a buy beyond the available cash: INSUFFICIENT_FUNDS
    fee_rate: Decimal = Decimal("0.0003")
    min_fee: Decimal = Decimal("1.00")
    displayed_liquidity: Decimal = Decimal(1_000)


@dataclass
class PaperBroker:
    path: Path | str
    config: PaperConfig = field(default_factory=PaperConfig)

    def __post_init__(self) -> None:
        store = SQLiteStore(Path(self.path), synchronous="NORMAL")
        # One generation is one write, so an order's state and its trades are
        # never split across a crash.
        self.journal = Journal(store, max_batch=1 << 62, event_type=PaperEvent)
        self.orders: dict[str, PaperOrder] = {}
        self.by_client_id: dict[str, str] = {}
        self.trades: list[TradeReport] = []
        self.ledger = Ledger(self.config.currency, self.config.initial_cash)
        self.quotes: dict[str, Quote] = {}
        self.resting: dict[str, list[PaperOrder]] = {}
        self.next_order_no = 1
        self.duplicate_place_attempts = 0
        self.clock_ns = 0
        self.fill_parts = 1  # > 1: each fill is split into this many partial fills
        self._dirty: dict[str, PaperOrder] = {}
        self._unsaved: list[msgspec.Struct] = []  # trades and refusals not yet saved
        self.outbox: list[BrokerReport] = []

    # -- persistence -----------------------------------------------------
    def open(self) -> None:
        """Rebuild the book from its log (a fresh broker if there is none)."""
        self.journal.open()
        if self.journal.last_seq == 0:
            funding = PaperFunded(
                self.config.initial_cash, self.config.currency, self.config.initial_positions
            )
            self.journal.write_now([funding])
        for _, event in self.journal.replay():
            if isinstance(event, PaperFunded):
                self.ledger = Ledger(event.currency, event.cash)
                for held in event.positions:
                    self.ledger.set_position(held.symbol, held.quantity, held.avg_price)
            elif isinstance(event, PaperOrder):
                self.orders[event.broker_order_id] = event
                self.by_client_id[event.client_order_id] = event.broker_order_id
                self.next_order_no = max(self.next_order_no, event.number + 1)
            elif isinstance(event, TradeReport):
                assert event.side is not None  # the paper broker always says
                self.trades.append(event)
                self.ledger.apply_fill(
                    event.symbol, event.side, event.quantity, event.price, event.fee
                )
            elif isinstance(event, PaperDuplicate):
                self.duplicate_place_attempts += 1
            elif isinstance(event, PaperForgotten):
                lost = self.orders.pop(event.broker_order_id, None)
                if lost is not None:
                    self.by_client_id.pop(lost.client_order_id, None)
        for order in self.orders.values():
            if order.status.is_open:
                self.resting.setdefault(order.symbol, []).append(order)

    def _take_unsaved(self) -> list[msgspec.Struct]:
        events: list[msgspec.Struct] = [*self._dirty.values(), *self._unsaved]
        self._dirty.clear()
        self._unsaved = []
        return events

    def save(self) -> tuple[list[BrokerReport], asyncio.Future[None] | None]:
        """Queue what changed for saving; the reports may be told once the future resolves."""
        # One unit: an order's new state and the trades that caused it commit
        # together or not at all, as in a real broker's book.
        future = self.journal.append_all(self._take_unsaved())  # encoded now: a snapshot
        out, self.outbox = self.outbox, []
        return out, future

    def flush(self) -> list[BrokerReport]:
        """Save synchronously, with no event loop (offline use), and hand over the reports."""
        self.journal.write_now(self._take_unsaved())
        out, self.outbox = self.outbox, []
        return out

    async def start(self) -> None:
        await self.journal.start()

    async def stop(self) -> None:
        await self.journal.close()

    def close(self) -> None:
        """Offline counterpart of `stop`."""
        self.flush()
        self.journal.store.close()

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
            self._unsaved.append(PaperDuplicate(intent.client_order_id))
            raise BrokerRejected(
                f"duplicate client order id {intent.client_order_id}",
                RejectReason.DUPLICATE_CLIENT_ORDER_ID,
            )
        self._refuse_if_invalid(intent)
        quote = self.quotes.get(intent.symbol)
        if intent.order_type is OrderType.MARKET and (
            quote is None or (quote.ask if intent.side is Side.BUY else quote.bid) is None
        ):
            raise BrokerRejected(f"no quote for {intent.symbol}", RejectReason.NO_LIQUIDITY)
        number = self.next_order_no
        boid = f"{self.config.id_prefix}P{number:09d}"
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

    def _refuse_if_invalid(self, intent: OrderIntent) -> None:
        cfg = self.config
        if cfg.listed is not None and intent.symbol not in cfg.listed:
            raise BrokerRejected(f"unknown symbol {intent.symbol}", RejectReason.UNKNOWN_SYMBOL)
        price = intent.price
        if cfg.tick_size is not None and price is not None and price % cfg.tick_size:
            raise BrokerRejected(f"price {price} is off the tick {cfg.tick_size}",
                                 RejectReason.TICK_SIZE)  # fmt: skip
        if cfg.check_funds and intent.side is Side.BUY:
            quote = self.quotes.get(intent.symbol)
            value_price = price if price is not None else (quote.ask if quote else None)
            available = self.account().available
            if value_price is not None and intent.quantity * value_price > available:
                raise BrokerRejected(
                    f"{intent.quantity} x {value_price} exceeds available cash {available}",
                    RejectReason.INSUFFICIENT_FUNDS,
                )

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

    def forget_open_orders(self) -> list[str]:
        """Lose every open order without a word, as a broker restarting without its book."""
        lost = [o for o in self.orders.values() if o.status.is_open]
        for order in lost:
            del self.orders[order.broker_order_id]
            self.by_client_id.pop(order.client_order_id, None)
            self._dirty.pop(order.broker_order_id, None)
            self._unsaved.append(PaperForgotten(order.broker_order_id))
        self.resting.clear()
        return [o.client_order_id for o in lost]

    def find(self, client_order_id: str | None, broker_order_id: str | None) -> PaperOrder | None:
        if broker_order_id:
            return self.orders.get(broker_order_id)
        boid = self.by_client_id.get(client_order_id or "")
        return self.orders.get(boid) if boid else None

    def open_orders(self) -> list[OrderReport]:
        return [o.report(listed=True) for o in self.orders.values() if o.status.is_open]

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
        parts = min(self.fill_parts, int(qty)) if qty >= 2 else 1
        if parts <= 1:
            self._fill(order, qty, px)
            return
        each = (qty / parts).to_integral_value(rounding="ROUND_DOWN")
        for i in range(parts):
            self._fill(order, each if i < parts - 1 else qty - each * (parts - 1), px)

    def _fill(self, order: PaperOrder, qty: Decimal, price: Decimal) -> None:
        cfg = self.config
        # Each execution gets its own, later time: the order of executions is
        # what average prices are computed in, on both sides.
        self.clock_ns = max(self.clock_ns + 1, time.time_ns())
        notional = qty * price
        fee = (notional * cfg.fee_rate).quantize(CENT, ROUND_HALF_UP)
        if fee < cfg.min_fee:
            fee = cfg.min_fee
        trade = TradeReport(
            qty,
            price,
            order.client_order_id,
            order.broker_order_id,
            f"{self.config.id_prefix}T{len(self.trades) + 1:09d}",
            order.symbol,
            order.side,
            fee,
            LiquiditySide.TAKER,
            self.clock_ns,
        )
        self.trades.append(trade)
        self._unsaved.append(trade)
        self.ledger.apply_fill(order.symbol, order.side, qty, price, fee)
        order.filled_qty += qty
        order.filled_notional += notional
        done = order.filled_qty == order.quantity
        order.status = OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED
        self._dirty[order.broker_order_id] = order
        self.outbox.append(trade)
        self.outbox.append(order.report(self.clock_ns))

    def _finish(self, order: PaperOrder, status: OrderStatus) -> None:
        order.status = status
        self._dirty[order.broker_order_id] = order
        self.outbox.append(order.report(self.clock_ns))
