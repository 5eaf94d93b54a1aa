"""The adapter contract, its error classes, and the shipped adapters."""

from livegate.broker.adapter import BrokerAdapter, Capabilities
from livegate.broker.errors import (
    BrokerAuthError,
    BrokerError,
    BrokerNetworkError,
    BrokerRejected,
    BrokerThrottled,
    UnknownOutcome,
)

__all__ = [
    "BrokerAdapter",
    "BrokerAuthError",
    "BrokerError",
    "BrokerNetworkError",
    "BrokerRejected",
    "BrokerThrottled",
    "Capabilities",
    "UnknownOutcome",
]
