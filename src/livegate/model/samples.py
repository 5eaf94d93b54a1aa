"""The demo's instruments and opening prices: the default market of paper and sim profiles."""

from __future__ import annotations

from decimal import Decimal

from livegate.model.instrument import Instrument, InstrumentRegistry

D = Decimal
DEMO_START_PRICES = {
    "AAPL": D("190.00"),
    "MSFT": D("410.00"),
    "SPY": D("520.00"),
    "TSLA": D("240.00"),
}


def demo_instruments() -> InstrumentRegistry:
    """A fresh registry each call: a registry can be replaced in place by a reload."""
    exchanges = {"SPY": "ARCX"}
    return InstrumentRegistry(
        [
            Instrument(symbol, D("0.01"), currency="USD", exchange=exchanges.get(symbol, "XNAS"))
            for symbol in DEMO_START_PRICES
        ]
    )
