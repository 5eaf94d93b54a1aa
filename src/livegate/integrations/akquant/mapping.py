"""livegate's values in akquant's unified broker model, and akquant's requests in ours.

akquant speaks floats and title-case words ("Buy", "Market"); livegate
refuses floats, so every number crosses as `Decimal(str(x))`. Only what
livegate's state machine decided reaches akquant: it has no ordering guard
of its own (a late Submitted after Filled would reach the strategy).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from akquant.gateway.broker_models import (
    UnifiedOrderRequest,
    UnifiedOrderSnapshot,
    UnifiedOrderStatus,
    UnifiedPosition,
    UnifiedTrade,
)

from livegate.model.account import Position
from livegate.model.enums import OrderStatus
from livegate.model.orders import OrderRequest, OrderSnapshot
from livegate.model.reports import Fill

_STATUS = {
    OrderStatus.NEW: UnifiedOrderStatus.NEW,
    OrderStatus.UNKNOWN: UnifiedOrderStatus.NEW,
    OrderStatus.SUBMITTED: UnifiedOrderStatus.SUBMITTED,
    OrderStatus.PARTIALLY_FILLED: UnifiedOrderStatus.PARTIALLY_FILLED,
    OrderStatus.FILLED: UnifiedOrderStatus.FILLED,
    OrderStatus.CANCELLED: UnifiedOrderStatus.CANCELLED,
    OrderStatus.REJECTED: UnifiedOrderStatus.REJECTED,
    OrderStatus.EXPIRED: UnifiedOrderStatus.EXPIRED,
}
_TIME_IN_FORCE = {"DAY": "DAY", "GTC": "GTC", "IOC": "IOC"}  # FOK and GTD: refused


class Unsupported(ValueError):
    """An akquant request livegate cannot express; the order certainly was not sent."""


def status_of(order: OrderSnapshot) -> UnifiedOrderStatus:
    if order.status is OrderStatus.PENDING_CANCEL:
        working = order.filled_qty > 0
        return UnifiedOrderStatus.PARTIALLY_FILLED if working else UnifiedOrderStatus.SUBMITTED
    return _STATUS[order.status]


def order_snapshot(order: OrderSnapshot) -> UnifiedOrderSnapshot:
    """akquant's broker order id is our client order id: it keys cancels and dedup on it."""
    reason = ""
    if order.status is OrderStatus.REJECTED:
        reason = f"{order.reject_reason or 'REJECTED'}: {order.reject_text}"
    return UnifiedOrderSnapshot(
        client_order_id=order.client_order_id,
        broker_order_id=order.client_order_id,
        symbol=order.symbol,
        status=status_of(order),
        filled_quantity=float(order.filled_qty),
        avg_fill_price=float(order.avg_fill_price or 0),
        reject_reason=reason,
        timestamp_ns=order.updated_ns,
    )


def trade(fill: Fill, quantity: Decimal) -> UnifiedTrade:
    """One delivery of an order's new filled quantity (never the fill's own, see trader)."""
    return UnifiedTrade(
        trade_id=fill.trade_id,
        broker_order_id=fill.client_order_id,
        client_order_id=fill.client_order_id,
        symbol=fill.symbol,
        side="Buy" if fill.side.value == "BUY" else "Sell",
        quantity=float(quantity),
        price=float(fill.price),
        timestamp_ns=fill.ts_ns,
    )


def position(held: Position) -> UnifiedPosition:
    available = held.available if held.available is not None else held.quantity
    return UnifiedPosition(
        symbol=held.symbol,
        quantity=float(held.quantity),
        available_quantity=float(available),
        direction="long" if held.quantity >= 0 else "short",
        avg_price=float(held.avg_price),
    )


def request(req: UnifiedOrderRequest) -> OrderRequest:
    """Ours, or Unsupported for what we cannot trade as asked."""
    tif = _TIME_IN_FORCE.get(str(req.time_in_force).upper())
    if tif is None:
        raise Unsupported(f"time in force {req.time_in_force!r}: livegate trades DAY, GTC, IOC")
    if req.reduce_only:
        raise Unsupported("reduce_only orders: use livegate's REDUCING trading state")
    if req.extra:
        raise Unsupported(f"extra fields {sorted(req.extra)}: livegate takes none")
    # akquant's `buy(price=p)` documents p as a limit ("None means market"), but its live
    # submitter sends it as a "Market" order carrying the price: a price makes a limit.
    order_type = "LIMIT" if req.price is not None else str(req.order_type).upper()
    return OrderRequest(
        symbol=req.symbol,
        side=str(req.side).upper(),
        quantity=_decimal(req.quantity, "quantity"),
        order_type=order_type,
        price=None if req.price is None else _decimal(req.price, "price"),
        time_in_force=tif,
        client_order_id=req.client_order_id,
    )


def _decimal(value: Any, what: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise Unsupported(f"{what} {value!r} is not a number") from None
    if not number.is_finite():
        raise Unsupported(f"{what} {value!r} is not finite")
    return number
