"""Positions and cash implied by fills: one accounting, used by our books and the paper broker.

Average-cost positions: adding to a position moves the average price,
reducing it realizes P&L against that average, crossing through zero opens
the remainder at the fill price.
"""

from __future__ import annotations

from decimal import Decimal

from livegate.model.account import AccountSnapshot, CashBalance, Position
from livegate.model.decimals import ZERO
from livegate.model.enums import Side


class Ledger:
    __slots__ = ("cash", "currency", "fees_paid", "positions")

    def __init__(self, currency: str = "USD", cash: Decimal = ZERO) -> None:
        self.currency = currency
        self.cash = cash
        self.fees_paid = ZERO
        self.positions: dict[str, Position] = {}

    @classmethod
    def from_snapshot(cls, snapshot: AccountSnapshot) -> Ledger:
        ledger = cls(snapshot.currency, snapshot.cash)
        for position in snapshot.positions:
            ledger.positions[position.symbol] = position
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
        old = self.positions.get(symbol)
        if old is None or old.quantity == 0:
            self.positions[symbol] = Position(
                symbol, signed, price, old.realized_pnl if old else ZERO
            )
            return
        qty, avg, realized = old.quantity, old.avg_price, old.realized_pnl
        new_qty = qty + signed
        if (qty > 0) == (signed > 0):  # adding to the position
            avg = (avg * qty + price * signed) / new_qty
        else:
            closed = min(abs(signed), abs(qty))
            direction = 1 if qty > 0 else -1
            realized += (price - avg) * closed * direction * multiplier
            if new_qty == 0:
                avg = ZERO
            elif (new_qty > 0) != (qty > 0):  # crossed through flat
                avg = price
        self.positions[symbol] = Position(symbol, new_qty, avg, realized)

    def position(self, symbol: str) -> Position:
        return self.positions.get(symbol) or Position(symbol, ZERO, ZERO)

    def balance(self, reserved: Decimal = ZERO) -> CashBalance:
        return CashBalance(self.currency, self.cash, self.cash - reserved, self.fees_paid)
