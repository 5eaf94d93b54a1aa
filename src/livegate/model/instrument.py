"""Reference data the gateway validates orders against."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from decimal import Decimal

import msgspec

from livegate.model.errors import InvalidOrderError


class Instrument(msgspec.Struct, frozen=True):
    """Reference data for one tradable symbol.

    Daily price limits are either given (`limit_up` / `limit_down`) or
    derived by `risk.reference` from `prev_close` and a percentage rule
    (`limit_pct`, or the board's: China A main board 10%, STAR / ChiNext 20%,
    ST 5%, Beijing 30%).
    """

    symbol: str
    tick_size: Decimal
    lot_size: Decimal = Decimal(1)
    min_qty: Decimal = Decimal(1)
    max_qty: Decimal | None = None
    currency: str = "USD"
    exchange: str = ""
    multiplier: Decimal = Decimal(1)
    prev_close: Decimal | None = None
    limit_up: Decimal | None = None
    limit_down: Decimal | None = None
    limit_pct: Decimal | None = None
    board: str = ""

    def __post_init__(self) -> None:
        if not self.symbol:
            raise ValueError("instrument symbol is empty")
        for name in ("tick_size", "lot_size", "min_qty", "multiplier"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{self.symbol}: {name} must be positive")


class InstrumentRegistry:
    """Symbol -> Instrument; unknown symbols are an input error, not a KeyError."""

    def __init__(self, instruments: Iterable[Instrument] = ()) -> None:
        self._by_symbol: dict[str, Instrument] = {}
        for inst in instruments:
            self.add(inst)

    def add(self, instrument: Instrument) -> None:
        self._by_symbol[instrument.symbol] = instrument

    def replace_all(self, instruments: Iterable[Instrument]) -> None:
        """Swap in a whole new set at once (a reload): never half old, half new."""
        self._by_symbol = {i.symbol: i for i in instruments}

    def get(self, symbol: str) -> Instrument:
        try:
            return self._by_symbol[symbol]
        except KeyError:
            raise InvalidOrderError(f"unknown symbol {symbol!r}", "UNKNOWN_SYMBOL") from None

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._by_symbol

    def __iter__(self) -> Iterator[Instrument]:
        return iter(self._by_symbol.values())

    def __len__(self) -> int:
        return len(self._by_symbol)
