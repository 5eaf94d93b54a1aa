"""Positions and cash, as the broker states them and as our fills imply them."""

from __future__ import annotations

from decimal import Decimal

import msgspec


class Position(msgspec.Struct, frozen=True, gc=False):
    """`available`: what may be sold now, where the broker says (T+1 markets)."""

    symbol: str
    quantity: Decimal
    avg_price: Decimal
    realized_pnl: Decimal = Decimal(0)
    available: Decimal | None = None


class CashBalance(msgspec.Struct, frozen=True):
    currency: str
    balance: Decimal
    available: Decimal
    fees_paid: Decimal = Decimal(0)


class AccountSnapshot(msgspec.Struct, frozen=True, tag="account_snapshot"):
    """A broker's statement of the account at one moment."""

    account: str
    currency: str
    cash: Decimal
    available: Decimal
    positions: tuple[Position, ...] = ()
    ts_ns: int = 0
