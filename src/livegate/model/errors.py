"""Errors raised to the caller of the gateway.

These are for requests the gateway refuses to even record (bad input, an id
conflict). A request that is valid but refused by risk or by the broker is
not an error: it becomes a Rejected order delivered through the callbacks.
"""

from __future__ import annotations


class LivegateError(Exception):
    """Base of every error livegate raises on purpose."""


class InvalidOrderError(LivegateError, ValueError):
    """The request is malformed; nothing was journaled or sent."""


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
