"""What an adapter raises, by what the gateway should do about it.

The class decides the gateway's reaction, so an adapter author's one job is
to raise the right one:

| error             | meaning                                   | gateway does                  |
|-------------------|-------------------------------------------|-------------------------------|
| BrokerNetworkError| could not reach the broker; nothing sent  | order not sent, safe to retry |
| BrokerAuthError   | credentials refused                       | cannot trade; no hammering    |
| BrokerThrottled   | broker says slow down (retry_after)       | honours retry_after           |
| BrokerRejected    | broker refused this request               | Rejected order, never retried |
| UnknownOutcome    | sent, but no answer (timeout, drop)       | UNKNOWN state, ask the broker |

When in doubt between "not sent" and "unknown", raise UnknownOutcome: it
costs a recovery query, whereas a wrong "not sent" can double an order.
"""

from __future__ import annotations

from livegate.model.enums import RejectReason


class BrokerError(Exception):
    """Base of adapter errors."""


class BrokerNetworkError(BrokerError):
    """The request certainly did not reach the broker."""


class BrokerAuthError(BrokerError):
    """Authentication or authorization failed."""


class BrokerThrottled(BrokerError):
    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BrokerRejected(BrokerError):
    """The broker refused the request; `reason` is the normalized code."""

    def __init__(self, text: str, reason: RejectReason = RejectReason.BROKER_REJECTED) -> None:
        super().__init__(text)
        self.text = text
        self.reason = reason


class UnknownOutcome(BrokerError):
    """The request may or may not have taken effect at the broker."""
