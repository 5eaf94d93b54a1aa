"""Positions and cash implied by fills: one accounting, used by our books and the paper broker.

Average-cost positions: adding to a position moves the average price,
reducing it realizes P&L against that average, crossing through zero opens
the remainder at the fill price.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

import msgspec

from livegate.model.account import AccountSnapshot, CashBalance, Position
from livegate.model.decimals import ZERO
from livegate.model.enums import Side


class LedgerState(msgspec.Struct, kw_only=True):
    """A ledger as data: what a checkpoint keeps of it."""

    currency: str
    cash: Decimal
    fees_paid: Decimal
    positions: list[Position]
    cost: dict[str, Decimal]  # exact: quantity * average price


class Ledger:
    """Exact cost basis per symbol; the average price is derived from it.

    Keeping the running average instead would round at every fill, and the
    result would depend on the order fills arrive in (found by the property
    tests), so two correct books could disagree in the last digit.
    """

    __slots__ = ("_cost", "cash", "currency", "fees_paid", "positions")

    def __init__(self, currency: str = "USD", cash: Decimal = ZERO) -> None:
        self.currency = currency
        self.cash = cash
        self.fees_paid = ZERO
        self.positions: dict[str, Position] = {}
        self._cost: dict[str, Decimal] = {}

    @classmethod
    def from_snapshot(cls, snapshot: AccountSnapshot) -> Ledger:
        ledger = cls(snapshot.currency, snapshot.cash)
        for position in snapshot.positions:
            ledger.positions[position.symbol] = position
            ledger._cost[position.symbol] = position.quantity * position.avg_price
        return ledger

    def apply_fill(
        self,
        symbol: str,
        side: Side,
        quantity: Decimal,
        price: Decimal,
        fee: Decimal,
        multiplier: Decimal = Decimal(1),
    ) -> None:
        signed = quantity if side is Side.BUY else -quantity
        self.cash -= signed * price * multiplier + fee
        self.fees_paid += fee
        self._move(symbol, signed, price, multiplier)

    def _move(self, symbol: str, signed: Decimal, price: Decimal, multiplier: Decimal) -> None:
        """The position side of a fill: quantity, cost basis, realized P&L."""
        old = self.positions.get(symbol)
        qty = old.quantity if old else ZERO
        realized = old.realized_pnl if old else ZERO
        cost = self._cost.get(symbol, ZERO)  # signed: quantity * average price
        new_qty = qty + signed
        if qty == 0 or (qty > 0) == (signed > 0):  # opening or adding
            cost += signed * price
        else:
            closed = min(abs(signed), abs(qty))
            direction = 1 if qty > 0 else -1
            closed_cost = cost * closed / abs(qty)
            realized += (price * closed * direction - closed_cost) * multiplier
            cost -= closed_cost
            if new_qty == 0:
                cost = ZERO
            elif (new_qty > 0) != (qty > 0):  # crossed through flat: the rest opens at price
                cost = new_qty * price
        self._cost[symbol] = cost
        avg = cost / new_qty if new_qty else ZERO
        self.positions[symbol] = Position(symbol, new_qty, avg, realized)

    def rebuild_position(
        self,
        symbol: str,
        start: Position | None,
        fills: Iterable[tuple[Side, Decimal, Decimal, Decimal]],
        start_cost: Decimal | None = None,
    ) -> None:
        """One symbol's position again from `start` and its fills (side, qty, price,
        multiplier) in execution order; cash is not touched (it does not depend on order).

        The average price and realized P&L do depend on the order fills
        happened in, so a fill reported out of execution order is placed
        where it belongs by recomputing its symbol, not by appending it.
        """
        if start is None:
            self.positions.pop(symbol, None)
            self._cost.pop(symbol, None)
        else:
            self.positions[symbol] = start
            exact = start_cost  # the cost basis as kept, where the start has one
            self._cost[symbol] = exact if exact is not None else start.quantity * start.avg_price
        for side, quantity, price, multiplier in fills:
            self._move(symbol, quantity if side is Side.BUY else -quantity, price, multiplier)

    def set_position(self, symbol: str, quantity: Decimal, avg_price: Decimal) -> None:
        """Take a position as stated (a reconciliation decision), keeping realized P&L."""
        old = self.positions.get(symbol)
        realized = old.realized_pnl if old else ZERO
        self.positions[symbol] = Position(symbol, quantity, avg_price, realized)
        self._cost[symbol] = quantity * avg_price

    def state(self) -> LedgerState:
        """Everything the ledger holds, exact cost basis included (for a checkpoint)."""
        return LedgerState(
            currency=self.currency,
            cash=self.cash,
            fees_paid=self.fees_paid,
            positions=list(self.positions.values()),
            cost=dict(self._cost),
        )

    @classmethod
    def from_state(cls, state: LedgerState) -> Ledger:
        """The ledger `state()` gave: the average is derived from the cost, never stored."""
        ledger = cls(state.currency, state.cash)
        ledger.fees_paid = state.fees_paid
        ledger.positions = {p.symbol: p for p in state.positions}
        ledger._cost = dict(state.cost)
        return ledger

    def position(self, symbol: str) -> Position:
        return self.positions.get(symbol) or Position(symbol, ZERO, ZERO)

    def balance(self, reserved: Decimal = ZERO) -> CashBalance:
        return CashBalance(self.currency, self.cash, self.cash - reserved, self.fees_paid)
