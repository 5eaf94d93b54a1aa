"""What brokers tell us, and what the gateway tells the strategy.

Immutable values of scalars only, so gc=False: the cyclic collector need
not track the hundreds of thousands a busy day keeps alive.

Adapters produce `OrderReport`, `TradeReport` and `CancelRejectReport` (the
broker's words, normalized). The gateway hands strategies `Fill` values
(counted exactly once) and `ExecutionReport`, the unified form of an order
update with the fill that caused it, always carrying both ids.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from livegate.model.enums import LiquiditySide, OrderStatus, RejectReason, Side


class OrderReport(msgspec.Struct, frozen=True, gc=False, tag="order_report", omit_defaults=True):
    """The broker's view of one order's status.

    Either id may be missing (a report that arrives before the ack may carry
    only the client id; some brokers only ever send their own id).
    `cum_qty` is the broker's cumulative filled quantity, when it says.
    `symbol`, `side` and `quantity` describe the order where the broker
    lists it (open orders, a status query): reconciliation shows them for
    orders we never sent. Stream reports may leave them out.
    """

    status: OrderStatus
    client_order_id: str | None = None
    broker_order_id: str | None = None
    cum_qty: Decimal | None = None
    avg_price: Decimal | None = None
    reject_reason: RejectReason | None = None
    text: str = ""
    ts_ns: int = 0
    symbol: str = ""
    side: Side | None = None
    quantity: Decimal | None = None


class TradeReport(msgspec.Struct, frozen=True, gc=False, tag="trade_report", omit_defaults=True):
    """One execution. `trade_id` is the broker's exec/trade id when it has one."""

    quantity: Decimal
    price: Decimal
    client_order_id: str | None = None
    broker_order_id: str | None = None
    trade_id: str | None = None
    symbol: str = ""
    side: Side | None = None
    fee: Decimal = Decimal(0)
    liquidity: LiquiditySide = LiquiditySide.UNKNOWN
    ts_ns: int = 0

    def dedup_key(self) -> str:
        """The broker's id, or a deterministic fingerprint of what the fill says.

        The fingerprint is only as unique as the broker's reports: two genuine
        fills of the same order with the same size, price and timestamp would
        collide, which is why adapters should pass the broker's exec id.
        """
        if self.trade_id:
            return self.trade_id
        order = self.broker_order_id or self.client_order_id or "?"
        return f"fp:{order}:{self.quantity}:{self.price}:{self.ts_ns}"


class CancelRejectReport(
    msgspec.Struct, frozen=True, gc=False, tag="cancel_reject", omit_defaults=True
):
    """The broker refused a cancel (too late, unknown order, ...)."""

    client_order_id: str | None = None
    broker_order_id: str | None = None
    text: str = ""
    ts_ns: int = 0


BrokerReport = OrderReport | TradeReport | CancelRejectReport


class Fill(msgspec.Struct, frozen=True, gc=False):
    """A fill counted once.

    `inferred`: proven by the broker's cumulative quantity, its trade report
    missing; its price is the broker's average where it gave one.
    `replaces`: this real fill confirms that inferred fill (by trade id), so
    its quantity is not added a second time.
    """

    trade_id: str
    client_order_id: str
    broker_order_id: str | None
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    fee: Decimal
    ts_ns: int
    inferred: bool = False
    replaces: str | None = None


class ExecutionReport(msgspec.Struct, frozen=True, gc=False):
    """One change to one order, with the fill that caused it if any."""

    client_order_id: str
    broker_order_id: str | None
    symbol: str
    side: Side
    status: OrderStatus
    quantity: Decimal
    filled_qty: Decimal
    leaves_qty: Decimal
    avg_fill_price: Decimal | None
    last_qty: Decimal | None = None
    last_price: Decimal | None = None
    trade_id: str | None = None
    reject_reason: RejectReason | None = None
    text: str = ""
    ts_ns: int = 0
