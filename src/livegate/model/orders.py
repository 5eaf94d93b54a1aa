"""Orders: what a caller asks for, what the gateway tracks, what it hands back.

Three shapes on purpose: `OrderRequest` is loose input from the caller,
`OrderIntent` is the validated, journaled form (the write-ahead record), and
`Order` is the gateway's mutable working copy, of which callers only ever
see immutable `OrderSnapshot` values.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from livegate.model.decimals import ZERO
from livegate.model.enums import OrderStatus, OrderType, RejectReason, Side, TimeInForce

Number = Decimal | int | str


class OrderRequest(msgspec.Struct, frozen=True, kw_only=True):
    """What a strategy submits. Validated by `model.validation` before anything happens."""

    symbol: str
    side: Side | str
    quantity: Number
    order_type: OrderType | str = OrderType.LIMIT
    price: Number | None = None
    time_in_force: TimeInForce | str = TimeInForce.DAY
    client_order_id: str | None = None
    tag: str = ""


class OrderIntent(msgspec.Struct, frozen=True, tag="intent"):
    """The journaled intent: written and made durable before the order goes out."""

    client_order_id: str
    account: str
    symbol: str
    side: Side
    order_type: OrderType
    quantity: Decimal
    price: Decimal | None
    time_in_force: TimeInForce
    ts_ns: int
    tag: str = ""


class OrderSnapshot(msgspec.Struct, frozen=True):
    client_order_id: str
    broker_order_id: str | None
    account: str
    symbol: str
    side: Side
    order_type: OrderType
    quantity: Decimal
    price: Decimal | None
    status: OrderStatus
    filled_qty: Decimal
    avg_fill_price: Decimal | None
    reject_reason: RejectReason | None
    reject_text: str
    created_ns: int
    updated_ns: int

    @property
    def leaves_qty(self) -> Decimal:
        return ZERO if self.status.is_terminal else self.quantity - self.filled_qty


class Order:
    """Mutable state of one order; only `engine.order_book` changes it."""

    __slots__ = (
        "account",
        "broker_order_id",
        "client_order_id",
        "created_ns",
        "filled_notional",
        "filled_qty",
        "order_type",
        "pre_cancel_status",
        "price",
        "quantity",
        "reject_reason",
        "reject_text",
        "reported_cum_qty",
        "side",
        "status",
        "symbol",
        "time_in_force",
        "updated_ns",
    )

    def __init__(self, intent: OrderIntent) -> None:
        self.client_order_id = intent.client_order_id
        self.broker_order_id: str | None = None
        self.account = intent.account
        self.symbol = intent.symbol
        self.side = intent.side
        self.order_type = intent.order_type
        self.quantity = intent.quantity
        self.price = intent.price
        self.time_in_force = intent.time_in_force
        self.status = OrderStatus.NEW
        self.filled_qty = ZERO
        self.filled_notional = ZERO
        self.reported_cum_qty = ZERO
        self.reject_reason: RejectReason | None = None
        self.reject_text = ""
        self.created_ns = intent.ts_ns
        self.updated_ns = intent.ts_ns
        self.pre_cancel_status: OrderStatus | None = None

    @property
    def leaves_qty(self) -> Decimal:
        return ZERO if self.status.is_terminal else self.quantity - self.filled_qty

    @property
    def avg_fill_price(self) -> Decimal | None:
        return self.filled_notional / self.filled_qty if self.filled_qty else None

    def snapshot(self) -> OrderSnapshot:
        return OrderSnapshot(
            self.client_order_id,
            self.broker_order_id,
            self.account,
            self.symbol,
            self.side,
            self.order_type,
            self.quantity,
            self.price,
            self.status,
            self.filled_qty,
            self.avg_fill_price,
            self.reject_reason,
            self.reject_text,
            self.created_ns,
            self.updated_ns,
        )
