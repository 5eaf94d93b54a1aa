"""An ordinary akquant strategy: nothing in it knows about livegate."""

from __future__ import annotations

from typing import Any

from akquant import Bar, Strategy


class MeanReversion(Strategy):
    """Buy when the close dips under its short average, sell half when it is above.

    Marketable limits (`price=`: akquant's limit price): livegate values every order
    against its risk and rollout caps, and a market order carries no price to value.
    """

    def __init__(self) -> None:
        super().__init__()
        self.closes: list[float] = []
        self.fills = 0

    def on_bar(self, bar: Bar) -> None:
        self.closes.append(bar.close)
        average = sum(self.closes[-5:]) / len(self.closes[-5:])
        if bar.close <= average:
            self.buy(bar.symbol, 100, price=round(bar.close + 0.05, 2))
        elif self.get_position(bar.symbol) >= 100:
            self.sell(bar.symbol, 50, price=round(bar.close - 0.05, 2))

    def on_trade(self, trade: Any) -> None:
        self.fills += 1
