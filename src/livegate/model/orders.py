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


class OrderIntent(msgspec.Struct, frozen=True, gc=False, tag="intent", omit_defaults=True):
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


class OrderSnapshot(msgspec.Struct, frozen=True, gc=False):
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
    confirmed_ns: int = 0  # when a broker report last showed it (see Order)

    @property
    def leaves_qty(self) -> Decimal:
        return ZERO if self.status.is_terminal else self.quantity - self.filled_qty

    def as_request(self) -> OrderRequest:
        """The same order asked for again, same id: what a retrying strategy sends."""
        return OrderRequest(
            symbol=self.symbol,
            side=self.side,
            quantity=self.quantity,
            order_type=self.order_type,
            price=self.price,
            client_order_id=self.client_order_id,
        )


class Order(msgspec.Struct, gc=False):
    """Mutable state of one order; only `engine.order_book` changes it.

    A msgspec Struct: built in C, and with gc=False the cyclic garbage
    collector does not rescan a hundred thousand live orders (none of its
    fields can form a cycle).
    """

    client_order_id: str
    account: str
    symbol: str
    side: Side
    order_type: OrderType
    quantity: Decimal
    price: Decimal | None
    time_in_force: TimeInForce
    created_ns: int
    updated_ns: int
    broker_order_id: str | None = None
    status: OrderStatus = OrderStatus.NEW
    filled_qty: Decimal = ZERO
    filled_notional: Decimal = ZERO
    reported_cum_qty: Decimal = ZERO
    reported_avg_price: Decimal | None = None
    inferred_qty: Decimal = ZERO  # part of filled_qty whose trade reports are still missing
    resent: int = 0
    reject_reason: RejectReason | None = None
    reject_text: str = ""
    pre_cancel_status: OrderStatus | None = None
    # When a broker report last showed the order (ours, such as a cancel request,
    # do not count): an order unconfirmed since a broker session began is unverified.
    confirmed_ns: int = 0

    @classmethod
    def from_intent(cls, intent: OrderIntent) -> Order:
        return cls(
            intent.client_order_id,
            intent.account,
            intent.symbol,
            intent.side,
            intent.order_type,
            intent.quantity,
            intent.price,
            intent.time_in_force,
            intent.ts_ns,
            intent.ts_ns,
        )

    def to_intent(self, tag: str = "") -> OrderIntent:
        """The intent this order was made from (for a resend under the same id)."""
        return OrderIntent(
            self.client_order_id,
            self.account,
            self.symbol,
            self.side,
            self.order_type,
            self.quantity,
            self.price,
            self.time_in_force,
            self.created_ns,
            tag,
        )

    @property
    def leaves_qty(self) -> Decimal:
        return ZERO if self.status.is_terminal else self.quantity - self.filled_qty

    @property
    def avg_fill_price(self) -> Decimal | None:
        return self.filled_notional / self.filled_qty if self.filled_qty else None

    @property
    def fill_gap(self) -> Decimal:
        """How much more the broker says is filled than the fills we counted."""
        return self.reported_cum_qty - self.filled_qty

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
            self.confirmed_ns,
        )
