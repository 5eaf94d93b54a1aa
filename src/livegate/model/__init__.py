"""Pure domain: no I/O here. Everything above imports from this package."""

from livegate.model.account import AccountSnapshot, CashBalance, Position
from livegate.model.enums import (
    LiquiditySide,
    OrderStatus,
    OrderType,
    RejectReason,
    Side,
    TimeInForce,
)
from livegate.model.errors import (
    DuplicateClientOrderIdError,
    GatewayNotRunningError,
    InvalidOrderError,
    JournalError,
    LivegateError,
    OrderNotFoundError,
)
from livegate.model.instrument import Instrument, InstrumentRegistry
from livegate.model.orders import Order, OrderIntent, OrderRequest, OrderSnapshot
from livegate.model.reports import (
    BrokerReport,
    CancelRejectReport,
    ExecutionReport,
    Fill,
    OrderReport,
    TradeReport,
)

__all__ = [
    "AccountSnapshot",
    "BrokerReport",
    "CancelRejectReport",
    "CashBalance",
    "DuplicateClientOrderIdError",
    "ExecutionReport",
    "Fill",
    "GatewayNotRunningError",
    "Instrument",
    "InstrumentRegistry",
    "InvalidOrderError",
    "JournalError",
    "LiquiditySide",
    "LivegateError",
    "Order",
    "OrderIntent",
    "OrderNotFoundError",
    "OrderReport",
    "OrderRequest",
    "OrderSnapshot",
    "OrderStatus",
    "OrderType",
    "Position",
    "RejectReason",
    "Side",
    "TimeInForce",
    "TradeReport",
]
