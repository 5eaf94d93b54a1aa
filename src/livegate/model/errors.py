"""Errors raised to the caller of the gateway.

These are for requests the gateway refuses to even record (bad input, an id
conflict). A request that is valid but refused by risk or by the broker is
not an error: it becomes a Rejected order delivered through the callbacks.
"""

from __future__ import annotations


class LivegateError(Exception):
    """Base of every error livegate raises on purpose."""


class InvalidOrderError(LivegateError, ValueError):
    """The request is malformed; nothing was journaled or sent.

    `reason` is the stable code where one applies (TICK_SIZE, LOT_SIZE,
    UNKNOWN_SYMBOL, ...), so a program can act on it like on a reject reason.
    """

    def __init__(self, message: str, reason: str = "INVALID_ORDER") -> None:
        super().__init__(message)
        self.reason = reason


class DuplicateClientOrderIdError(LivegateError):
    """The client_order_id belongs to an order that is already finished.

    An active order with the same id is returned as it is instead; reusing
    the id of a finished order is always a mistake in the caller, because
    a client_order_id maps to at most one broker order, ever.
    """


class OrderNotFoundError(LivegateError, KeyError):
    """No order with that client or broker id is known to this gateway."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else "order not found"


class JournalError(LivegateError):
    """The journal could not make an event durable; nothing depending on it ran."""


class GatewayNotRunningError(LivegateError):
    """The gateway is not started (or already stopped)."""


class CancelRefusedError(LivegateError):
    """A cancel the risk chain will not send (its rate limit); `reason` is the code."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason
