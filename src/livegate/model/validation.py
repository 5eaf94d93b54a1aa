"""Turning a caller's `OrderRequest` into a journaled `OrderIntent`, or a clear error.

Runs before anything is recorded, so a malformed request leaves no trace
anywhere: not in the journal, not at the broker.
"""

from __future__ import annotations

import enum
import re
from decimal import Decimal
from typing import TypeVar

from livegate.model.decimals import is_multiple, to_decimal
from livegate.model.enums import OrderType, RejectReason, Side, TimeInForce
from livegate.model.errors import InvalidOrderError
from livegate.model.instrument import InstrumentRegistry
from livegate.model.orders import OrderIntent, OrderRequest
from livegate.model.reports import CancelRejectReport, OrderReport, TradeReport

E = TypeVar("E", bound=enum.Enum)

MAX_CLIENT_ORDER_ID_LEN = 64


# Enum.__members__ builds a new mapping proxy on every access; look up here.
_BY_NAME: dict[type[enum.Enum], dict[str, enum.Enum]] = {
    kind: {name: member for name, member in kind.__members__.items()}
    for kind in (Side, OrderType, TimeInForce)
}


def _enum(kind: type[E], value: object, field: str) -> E:
    if isinstance(value, kind):
        return value
    if isinstance(value, str):
        member = _BY_NAME[kind].get(value) or _BY_NAME[kind].get(value.upper())
        if member is not None:
            return member  # type: ignore[return-value]
    allowed = ", ".join(str(m.value) for m in kind)
    raise InvalidOrderError(f"{field}={value!r} is not one of {allowed}")


# Printable ASCII without blanks: what FIX's ClOrdID and every broker API we
# know accept, so an id valid here is valid on any wire.
_CLIENT_ORDER_ID = re.compile(rf"[!-~]{{1,{MAX_CLIENT_ORDER_ID_LEN}}}")


def check_client_order_id(client_order_id: str) -> None:
    if not isinstance(client_order_id, str) or not _CLIENT_ORDER_ID.fullmatch(client_order_id):
        raise InvalidOrderError(
            f"client_order_id {client_order_id!r} must be 1-{MAX_CLIENT_ORDER_ID_LEN}"
            " printable ASCII characters without blanks"
        )


def validate_request(
    request: OrderRequest,
    instruments: InstrumentRegistry,
    *,
    account: str,
    client_order_id: str,
    ts_ns: int,
) -> OrderIntent:
    check_client_order_id(client_order_id)
    instrument = instruments.get(request.symbol)
    side = _enum(Side, request.side, "side")
    order_type = _enum(OrderType, request.order_type, "order_type")
    tif = _enum(TimeInForce, request.time_in_force, "time_in_force")

    quantity = to_decimal(request.quantity, "quantity")
    if quantity <= 0:
        raise InvalidOrderError(f"quantity={quantity} must be positive")
    if not is_multiple(quantity, instrument.lot_size):
        raise InvalidOrderError(
            f"quantity={quantity} is not a multiple of the lot size {instrument.lot_size}"
            f" for {instrument.symbol}",
            RejectReason.LOT_SIZE,
        )
    if quantity < instrument.min_qty:
        raise InvalidOrderError(f"quantity={quantity} is below the minimum {instrument.min_qty}")
    if instrument.max_qty is not None and quantity > instrument.max_qty:
        raise InvalidOrderError(f"quantity={quantity} is above the maximum {instrument.max_qty}")

    price = None
    if order_type is OrderType.LIMIT:
        if request.price is None:
            raise InvalidOrderError("a LIMIT order needs a price")
        price = to_decimal(request.price, "price")
        if price <= 0:
            raise InvalidOrderError(f"price={price} must be positive")
        if not is_multiple(price, instrument.tick_size):
            raise InvalidOrderError(
                f"price={price} is not on the tick size {instrument.tick_size}"
                f" for {instrument.symbol}",
                RejectReason.TICK_SIZE,
            )
    elif request.price is not None:
        raise InvalidOrderError("a MARKET order takes no price")

    return OrderIntent(
        client_order_id=client_order_id,
        account=account,
        symbol=instrument.symbol,
        side=side,
        order_type=order_type,
        quantity=quantity,
        price=price,
        time_in_force=tif,
        ts_ns=ts_ns,
        tag=request.tag,
    )


# Reports: what a broker may say at all, before it is compared with our order.
# The bound keeps every later sum and product finite and exact (a quantity
# of 1e999999999 is a finite Decimal whose arithmetic overflows).
MAX_DIGITS = 15  # integer digits: below 1e15
MIN_EXPONENT = -18  # finer than any tick or lot a broker uses


def number_problem(value: Decimal, field: str, *, positive: bool, signed: bool = False) -> str:
    if not isinstance(value, Decimal) or not value.is_finite():
        return f"{field}={value} is not a finite number"
    # Compared by exponent, not value: abs() of 1e999999999 already overflows.
    if value != 0 and value.adjusted() >= MAX_DIGITS:
        return f"{field}={value} is out of range"
    if value != 0 and value.adjusted() < MIN_EXPONENT:
        return f"{field}={value} is smaller than any tick or lot"
    if signed:
        return ""
    if positive and value <= 0:
        return f"{field}={value} must be positive"
    if value < 0:
        return f"{field}={value} must not be negative"
    return ""


def report_problem(report: OrderReport | TradeReport | CancelRejectReport) -> str:
    """What makes this report impossible on its own (empty when it is not).

    Checked before a report may change anything; a report that fails is
    journaled as refused, never applied, so no value in it can stop a replay.
    Every report passes here, so the usual case is one chain of comparisons
    (NaN and sNaN raise on ordering, infinities and huge values compare
    false); the named reasons are worked out only for a report that fails it.
    """
    if not report.client_order_id and not report.broker_order_id:
        return "names no order: it has neither a client nor a broker order id"
    if isinstance(report, TradeReport):
        if _plain_trade(report):
            return ""
        return (
            number_problem(report.quantity, "quantity", positive=True)
            or number_problem(report.price, "price", positive=True)
            or number_problem(report.fee, "fee", positive=False, signed=True)
            or ("" if report.trade_id is None or report.trade_id else "trade_id is empty")
        )
    if isinstance(report, OrderReport):
        cum, avg = report.cum_qty, report.avg_price
        if _plain_or_none(cum) and _plain_or_none(avg):
            return ""
        problem = "" if cum is None else number_problem(cum, "cum_qty", positive=False)
        if not problem and avg is not None:
            problem = number_problem(avg, "avg_price", positive=False)
        return problem
    return ""


_HIGH = Decimal(10) ** MAX_DIGITS
_FINE = Decimal(10) ** MIN_EXPONENT


def _plain_trade(trade: TradeReport) -> bool:
    q, p, fee = trade.quantity, trade.price, trade.fee
    try:
        return (
            type(q) is Decimal
            and type(p) is Decimal
            and _FINE <= q < _HIGH
            and _FINE <= p < _HIGH
            and (fee == 0 or (type(fee) is Decimal and _FINE <= abs(fee) < _HIGH))
            and trade.trade_id != ""
        )
    except ArithmeticError:  # NaN compared
        return False


def _plain_or_none(value: Decimal | None) -> bool:
    if value is None:
        return True
    try:
        return type(value) is Decimal and (value == 0 or _FINE <= value < _HIGH)
    except ArithmeticError:
        return False
