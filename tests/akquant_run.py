"""An unchanged akquant strategy run live through livegate, in its own process.

    python tests/akquant_run.py PLAN.json

The plan names the profiles file and profile, the sim broker's control port,
the bars, and faults to pull at given bars. Prints one JSON line: what the
strategy saw (orders' statuses in order, trades, its position at the end),
and livegate's and the broker's positions. A process of its own: akquant
starts threads and livegate stops at exit, as in a user's script.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import akquant
from akquant import Bar, Instrument, Strategy, run_live

from livegate.sim import control

plan: dict[str, Any] = json.loads(Path(sys.argv[1]).read_text())
seen: dict[str, Any] = {"orders": {}, "trades": [], "rejects": 0}


def fault(op: str, **args: Any) -> None:
    asyncio.run(control("127.0.0.1", plan["control_port"], op, **args))


t0 = 1_764_550_000_000_000_000
bars = [
    Bar(t0 + i * 60_000_000_000, 190.0, 190.1, 189.9, 190.0 + (i % 4) / 10, 1000.0, "AAPL")
    for i in range(plan["bars"])
]


class Buyer(Strategy):
    """Buys on each bar, sells half of it back on every third: nothing livegate-specific."""

    def on_bar(self, bar: Bar) -> None:
        n = self._bars = getattr(self, "_bars", 0) + 1
        for op, args in plan["faults"].get(str(n), []):
            fault(op, **args)
        self.buy(bar.symbol, 10)
        if n % 3 == 0:
            self.sell(bar.symbol, 5)
        time.sleep(plan["pause"])

    def on_order(self, order: Any) -> None:
        seen["orders"].setdefault(str(order.id), []).append(str(order.status).split(".")[-1])

    def on_trade(self, trade: Any) -> None:
        seen["trades"].append([str(trade.id), float(trade.quantity), str(trade.side)])
        if plan.get("react") and str(trade.side).endswith("Buy") and trade.quantity == 10:
            self.sell(trade.symbol, 1)  # on akquant's dispatch thread, inside a callback

    def on_reject(self, order: Any) -> None:
        seen["rejects"] += 1

    def on_stop(self) -> None:
        # Fills arrive on akquant's dispatch thread: wait until none is in flight.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            open_ = [s for s in seen["orders"].values() if s[-1] not in _FINAL]
            if not open_ and len(seen["orders"]) >= plan["orders"]:
                break
            time.sleep(0.1)
        time.sleep(0.5)
        seen["position"] = float(self.get_position("AAPL"))


_FINAL = ("Filled", "Cancelled", "Rejected", "Expired")

options: dict[str, Any] = {
    "bars": bars,
    "livegate_config": plan["config"],
    "livegate_profile": plan["profile"],
}
if plan.get("market_through_livegate"):
    # broker="livegate" alone: livegate builds akquant's replay market side and sees prices.
    sides: dict[str, Any] = {}
    options["livegate_market"] = "replay"
else:
    sides = {"market_broker": "replay", "trader_broker": "livegate"}
run_live(
    Buyer,
    [Instrument("AAPL", akquant.AssetType.Stock, tick_size=0.01, lot_size=1)],
    trading_mode="broker_live",
    broker="livegate",
    gateway_options=options,
    duration="60s",
    **sides,
)
print(json.dumps(seen), flush=True)
