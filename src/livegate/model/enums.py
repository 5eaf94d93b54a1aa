"""Closed vocabularies of the domain.

String-valued enums so that journal entries, reports and logs stay readable
and stable across versions: a value, once journaled, must decode forever.
"""

from __future__ import annotations

import enum


class Side(enum.StrEnum):
    BUY = "BUY"
    SELL = "SELL"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1


class OrderType(enum.StrEnum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"


class TimeInForce(enum.StrEnum):
    DAY = "DAY"
    GTC = "GTC"
    IOC = "IOC"


class OrderStatus(enum.StrEnum):
    """Lifecycle states; see `model.fsm` for the allowed moves between them.

    NEW: the intent is journaled and the order is on its way to the broker.
    UNKNOWN: the submit's outcome is not known (timeout, connection lost
    mid-send); only the broker can say whether it exists.
    PENDING_CANCEL: a cancel request is in flight.
    """

    NEW = "NEW"
    UNKNOWN = "UNKNOWN"
    SUBMITTED = "SUBMITTED"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    PENDING_CANCEL = "PENDING_CANCEL"
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def is_open(self) -> bool:
        return self not in _TERMINAL


_TERMINAL = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)


class RejectReason(enum.StrEnum):
    """Stable codes a program can act on; the human text travels beside them.

    Broker-side refusals are mapped into the same codes (BROKER_* or the
    specific code when the adapter can tell), keeping the raw text alongside.
    """

    INVALID_ORDER = "INVALID_ORDER"
    UNKNOWN_SYMBOL = "UNKNOWN_SYMBOL"
    TICK_SIZE = "TICK_SIZE"
    LOT_SIZE = "LOT_SIZE"
    RISK_MAX_QTY = "RISK_MAX_QTY"
    RISK_MAX_NOTIONAL = "RISK_MAX_NOTIONAL"
    RISK_POSITION_LIMIT = "RISK_POSITION_LIMIT"
    RISK_EXPOSURE = "RISK_EXPOSURE"
    RISK_MAX_OPEN_ORDERS = "RISK_MAX_OPEN_ORDERS"
    RISK_RATE_LIMIT = "RISK_RATE_LIMIT"
    RISK_DUPLICATE_ORDER = "RISK_DUPLICATE_ORDER"
    PRICE_BAND = "PRICE_BAND"
    PRICE_LIMIT = "PRICE_LIMIT"
    SESSION_CLOSED = "SESSION_CLOSED"
    NOT_READY = "NOT_READY"
    KILL_SWITCH = "KILL_SWITCH"
    REDUCE_ONLY = "REDUCE_ONLY"
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    INSUFFICIENT_POSITION = "INSUFFICIENT_POSITION"
    NO_LIQUIDITY = "NO_LIQUIDITY"
    THROTTLED = "THROTTLED"
    AUTH_FAILED = "AUTH_FAILED"
    DUPLICATE_CLIENT_ORDER_ID = "DUPLICATE_CLIENT_ORDER_ID"
    NOT_FOUND_AT_BROKER = "NOT_FOUND_AT_BROKER"
    BROKER_REJECTED = "BROKER_REJECTED"
    CALLER_CANCELLED = "CALLER_CANCELLED"  # the caller gave up before it was sent
    ROLLOUT_SYMBOL = "ROLLOUT_SYMBOL"
    ROLLOUT_WINDOW = "ROLLOUT_WINDOW"
    ROLLOUT_CAPITAL = "ROLLOUT_CAPITAL"
    ROLLOUT_ORDERS = "ROLLOUT_ORDERS"
    ROLLOUT_POSITION = "ROLLOUT_POSITION"


class TradingState(enum.StrEnum):
    """The whole gateway's permission to trade.

    ACTIVE: everything the risk chain allows. REDUCING: only orders that
    reduce a position. HALTED: nothing new; cancels still go out.
    """

    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"


class LiquiditySide(enum.StrEnum):
    MAKER = "MAKER"
    TAKER = "TAKER"
    UNKNOWN = "UNKNOWN"


class ConnectionState(enum.StrEnum):
    """Where the broker connection stands; orders go out only when READY.

    DISCONNECTED -> CONNECTING -> SYNCING (recovery) -> READY, and back to
    DISCONNECTED when the connection drops. DEGRADED: connected and
    trading, but something is slow or failing (heartbeats late, throttled).
    """

    DISCONNECTED = "DISCONNECTED"
    CONNECTING = "CONNECTING"
    AUTHENTICATING = "AUTHENTICATING"
    SYNCING = "SYNCING"
    READY = "READY"
    DEGRADED = "DEGRADED"
