"""The contract a custom broker implements.

An adapter maps one broker protocol onto these few async methods and
nothing else: no retries, no dedup, no state machine, no journal; the
gateway owns all of that. See docs/adapter-guide.md for a worked example.

Optionally an adapter keeps `problems` (an `AdapterProblems`): what it
refused or gave up on that no report can carry (a garbled message, a trade
bust it will not book, a gap its peer never filled). The alert rule
`broker-problems` raises a P1 while one is recent.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from typing import Protocol, runtime_checkable

import msgspec

from livegate.model.account import AccountSnapshot
from livegate.model.orders import OrderIntent
from livegate.model.reports import BrokerReport, OrderReport, TradeReport

log = logging.getLogger("livegate.broker")


class AdapterProblems:
    """Recent problems of an adapter, for the person on call: (monotonic time, text)."""

    def __init__(self, keep: int = 100) -> None:
        self.recent: deque[tuple[float, str]] = deque(maxlen=keep)

    def add(self, text: str) -> None:
        log.error("broker adapter: %s", text)
        self.recent.append((time.monotonic(), text))

    def since(self, monotonic: float) -> list[str]:
        return [text for when, text in self.recent if when >= monotonic]


class Capabilities(msgspec.Struct, frozen=True):
    """What the broker can do, so the gateway knows what it must make up for.

    dedups_client_order_id: the broker refuses a second order with a known
        client id; only then may the gateway resend after an unknown outcome.
    query_by_client_order_id: `order_status` works with a client id alone.
    cancel_by_client_order_id: cancel works before the broker id is known.
    lists_orders: `open_orders`, `today_trades` and `order_status` answer.
        Without them (a plain FIX order session), recovery relies on the
        report stream replaying what was missed (a FIX resend), and
        reconciliation flags open orders a reconnect left unconfirmed.
    reports_account: `account` states the broker's cash and positions; if
        not, reconciliation does not compare them.
    """

    dedups_client_order_id: bool = False
    query_by_client_order_id: bool = False
    cancel_by_client_order_id: bool = False
    lists_orders: bool = True
    reports_account: bool = True


@runtime_checkable
class BrokerAdapter(Protocol):
    name: str
    capabilities: Capabilities

    async def connect(self) -> None:
        """Open the session and authenticate. Raises BrokerAuthError / BrokerNetworkError.

        An adapter may instead log on in an optional `async def authenticate()`,
        which the gateway calls right after `connect` (state AUTHENTICATING).
        """

    async def close(self) -> None: ...

    async def heartbeat(self) -> int:
        """Round trip to the broker; returns the broker's clock in ns (0 if it has none)."""

    async def place(self, intent: OrderIntent) -> str | None:
        """Send a new order. Returns the broker order id when the broker gives it now.

        Further news (acks, fills, cancels) comes through `reports()`.
        """

    async def cancel(self, client_order_id: str, broker_order_id: str | None) -> None:
        """Ask the broker to cancel. The confirmation comes through `reports()`."""

    async def order_status(
        self, client_order_id: str, broker_order_id: str | None
    ) -> OrderReport | None:
        """The broker's current report for one order, or None if it has no such order."""

    async def open_orders(self) -> Sequence[OrderReport]: ...

    async def today_trades(self) -> Sequence[TradeReport]: ...

    async def account(self) -> AccountSnapshot:
        """Cash and positions as the broker states them."""

    def reports(self) -> AsyncIterator[BrokerReport]:
        """The stream of everything the broker tells us, in the order it arrives.

        Ends when the session ends. Duplicates and disorder are expected:
        the gateway deduplicates and orders them.
        """
