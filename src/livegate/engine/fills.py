"""Fill accounting for the order book: each fill counted once, positions and cash from fills.

Part of `OrderBook` (a mixin: the book is one object on the hot path, and
this keeps the file of each concern readable). Invariants guarded here: a
fill is counted exactly once, keyed by (order, broker trade id); a fill that
would take an order past its quantity is refused; an inferred fill is
replaced by the real one, never added to it; positions follow the broker's
execution order, whatever order the reports arrived in.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import msgspec

from livegate.engine.anomalies import Anomalies
from livegate.engine.archive import Anchor, Archive
from livegate.model.account import AccountSnapshot
from livegate.model.decimals import ZERO
from livegate.model.enums import OrderStatus
from livegate.model.events import FillInferred
from livegate.model.fsm import can_transition
from livegate.model.instrument import InstrumentRegistry
from livegate.model.ledger import Ledger
from livegate.model.orders import Order
from livegate.model.reports import Fill, TradeReport

S = OrderStatus
_ONE = Decimal(1)
_KEY_SEP = "\x1f"


def order_of_fill_key(key: str) -> str:
    """The client id a fill key (`FillAccounting.fill_key`) belongs to."""
    return key.partition(_KEY_SEP)[0]


EARLY = frozenset({S.NEW, S.UNKNOWN, S.SUBMITTED})  # not yet working at the broker


class FillAccounting:
    """The fill half of OrderBook; the book owns the state declared here."""

    orders: dict[str, Order]
    fills: list[Fill]
    fill_keys: set[str]
    ledger: Ledger
    baseline: AccountSnapshot | None
    instruments: InstrumentRegistry | None
    on_change: Callable[[Order, Fill | None], None]
    on_anomaly: Callable[[str, str | None, str], None]
    _multipliers: dict[str, Decimal]
    _last_fill_ns: dict[str, int]
    anchor: Anchor | None
    archive: Archive | None

    def find(self, client_order_id: str | None, broker_order_id: str | None) -> Order | None:
        raise NotImplementedError  # the book's

    def fill_key(self, order: Order, trade: TradeReport) -> str:
        """A fill's identity: the broker's trade id within its order. Both sides of a
        self-cross carry the exchange's one trade id, and both are real fills."""
        return f"{order.client_order_id}{_KEY_SEP}{trade.dedup_key()}"

    def knows_fill(self, trade: TradeReport) -> bool:
        """Whether the fill is counted; asking changes nothing (an order out of memory is
        answered from its archived keys, not brought back: a recovery sync asks about
        every trade of the day)."""
        order = self.held_order(trade.client_order_id, trade.broker_order_id)
        if order is not None:
            return self.fill_key(order, trade) in self.fill_keys
        retired = (
            self.archive.find(trade.client_order_id, trade.broker_order_id)
            if self.archive
            else None
        )
        if retired is None:
            return False
        return self.fill_key(retired.order, trade) in retired.fill_keys

    def held_order(self, client_order_id: str | None, broker_order_id: str | None) -> Order | None:
        raise NotImplementedError  # the book's

    def _apply_trade(self, order: Order, trade: TradeReport, bound: bool) -> None:
        key = trade.dedup_key()
        if (trade.symbol and trade.symbol != order.symbol) or (
            trade.side is not None and trade.side is not order.side
        ):
            self.on_anomaly(
                Anomalies.REPORT_CONTRADICTS_ORDER,
                order.client_order_id,
                f"fill {key} says {trade.side} {trade.symbol}; the order is"
                f" {order.side} {order.symbol}",
            )
            return
        if self.fill_key(order, trade) in self.fill_keys:
            self.on_anomaly(Anomalies.DUPLICATE_FILL, order.client_order_id, key)
            return
        # A real fill first confirms what was inferred for this order.
        confirmed = min(trade.quantity, order.inferred_qty)
        if order.filled_qty - confirmed + trade.quantity > order.quantity:
            self.on_anomaly(
                Anomalies.OVERFILL,
                order.client_order_id,
                f"fill {key} of {trade.quantity} on {order.filled_qty}/{order.quantity}",
            )
            return
        self.fill_keys.add(self.fill_key(order, trade))
        replaces = None
        if confirmed:
            replaces = self._unwind_inferred(order, confirmed)
        order.filled_qty += trade.quantity - confirmed
        order.filled_notional += trade.quantity * trade.price
        order.updated_ns = trade.ts_ns or order.updated_ns
        fill = _fill_of(
            order, key, trade.quantity, trade.price, trade.fee, trade.ts_ns, replaces=replaces
        )
        self.fills.append(fill)
        if confirmed:
            self._rebuild_ledger()
        else:
            self.ledger.apply_fill(
                order.symbol,
                order.side,
                trade.quantity,
                trade.price,
                trade.fee,
                self._multiplier(order.symbol),
            )
            last = self._last_fill_ns.get(order.symbol, 0)
            if trade.ts_ns < last:
                self._reposition(order.symbol)  # reported out of execution order
            else:
                self._last_fill_ns[order.symbol] = trade.ts_ns
        self._after_fill(order, key)
        self.on_change(order, fill)

    def _after_fill(self, order: Order, key: str) -> None:
        status = order.status
        if order.filled_qty == order.quantity and can_transition(status, S.FILLED):
            order.status = S.FILLED
        elif status in EARLY:
            order.status = S.PARTIALLY_FILLED
        elif status is S.REJECTED:
            self.on_anomaly(Anomalies.FILL_ON_REJECTED, order.client_order_id, key)

    def _infer_fill(self, event: FillInferred) -> None:
        order = self.orders.get(event.client_order_id)
        if order is None:
            return
        quantity = min(event.quantity, order.quantity - order.filled_qty)
        if quantity <= 0:
            return
        order.filled_qty += quantity
        order.inferred_qty += quantity
        order.filled_notional += quantity * event.price
        key = f"inferred:{order.client_order_id}:{order.filled_qty}"
        fill = _fill_of(order, key, quantity, event.price, ZERO, event.ts_ns, inferred=True)
        self.fills.append(fill)
        self.ledger.apply_fill(
            order.symbol, order.side, quantity, event.price, ZERO, self._multiplier(order.symbol)
        )
        self.on_anomaly(
            Anomalies.FILL_INFERRED,
            order.client_order_id,
            f"{quantity} at {event.price}: broker reports {order.reported_cum_qty} filled",
        )
        self._after_fill(order, key)
        self.on_change(order, fill)

    def _unwind_inferred(self, order: Order, quantity: Decimal) -> str | None:
        """Take `quantity` back out of this order's inferred fills, newest first."""
        order.inferred_qty -= quantity
        replaced = None
        for index in range(len(self.fills) - 1, -1, -1):
            fill = self.fills[index]
            if not fill.inferred or fill.client_order_id != order.client_order_id:
                continue
            take = min(quantity, fill.quantity)
            order.filled_notional -= take * fill.price
            replaced = fill.trade_id
            if take == fill.quantity:
                del self.fills[index]
            else:
                self.fills[index] = msgspec.structs.replace(fill, quantity=fill.quantity - take)
            quantity -= take
            if not quantity:
                break
        return replaced

    def _reposition(self, symbol: str) -> None:
        """One symbol's position from the baseline (or the anchor the fills folded away
        made, archive.py) and its fills in the broker's time order."""
        start, cost = None, None
        if self.anchor is not None:
            start, cost = self.anchor.position(symbol)
        elif self.baseline is not None:
            start = next((p for p in self.baseline.positions if p.symbol == symbol), None)
        multiplier = self._multiplier(symbol)
        fills = sorted((f for f in self.fills if f.symbol == symbol), key=_execution_order)
        self.ledger.rebuild_position(
            symbol, start, ((f.side, f.quantity, f.price, multiplier) for f in fills), cost
        )

    def _rebuild_ledger(self) -> None:
        """Recompute positions and cash from the baseline (or the anchor) and every fill
        held (rare path)."""
        if self.anchor is not None:
            ledger = Ledger.from_state(self.anchor.state)
        else:
            ledger = Ledger.from_snapshot(self.baseline) if self.baseline else Ledger()
        for fill in sorted(self.fills, key=_execution_order):
            ledger.apply_fill(
                fill.symbol,
                fill.side,
                fill.quantity,
                fill.price,
                fill.fee,
                self._multiplier(fill.symbol),
            )
        self.ledger = ledger

    def _multiplier(self, symbol: str) -> Decimal:
        multiplier = self._multipliers.get(symbol)
        if multiplier is None:
            known = self.instruments is not None and symbol in self.instruments
            multiplier = self.instruments.get(symbol).multiplier if known else _ONE  # type: ignore[union-attr]
            self._multipliers[symbol] = multiplier
        return multiplier


def _fill_of(
    order: Order,
    key: str,
    quantity: Decimal,
    price: Decimal,
    fee: Decimal,
    ts_ns: int,
    inferred: bool = False,
    replaces: str | None = None,
) -> Fill:
    return Fill(
        key,
        order.client_order_id,
        order.broker_order_id,
        order.symbol,
        order.side,
        quantity,
        price,
        fee,
        ts_ns,
        inferred,
        replaces,
    )


def _execution_order(fill: Fill) -> int:
    """The broker's time; a stable sort keeps arrival order among equal or missing times."""
    return fill.ts_ns
