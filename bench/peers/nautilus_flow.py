"""The peer flow on NautilusTrader's engine (a backtest engine and its simulated
exchange), in NautilusTrader's own environment.

    python nautilus_flow.py ORDERS IN_FLIGHT

A strategy sends one-share limit buys at the ask through the engine's order path
(order factory, risk engine, execution engine, the simulated exchange's matching),
IN_FLIGHT of them on the first quote and one more for each fill it is told of,
until it has seen ORDERS fills; the exchange has liquidity for all of them at the
top of its book and matches what was sent at each quote (one quote per IN_FLIGHT
orders). Prints one JSON line: orders, seconds (first send to last fill seen),
peak RSS.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from typing import Any

import nautilus_trader
from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
from nautilus_trader.config import LoggingConfig, RiskEngineConfig, StrategyConfig
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.enums import AccountType, OmsType, OrderSide
from nautilus_trader.model.identifiers import TraderId, Venue
from nautilus_trader.model.objects import Money, Price, Quantity
from nautilus_trader.test_kit.providers import TestInstrumentProvider
from nautilus_trader.trading.strategy import Strategy

ORDERS, IN_FLIGHT = int(sys.argv[1]), int(sys.argv[2])
version = nautilus_trader.__version__
result: dict[str, Any] = {"orders": ORDERS, "peer": "nautilus", "version": version}
instrument = TestInstrumentProvider.equity(symbol="AAPL", venue="XNAS")


class Sender(Strategy):
    def __init__(self) -> None:
        super().__init__(StrategyConfig(strategy_id="SENDER-001"))
        self.fills = self.sent = self.refused = 0
        self.started = 0.0
        self.price, self.one = Price.from_str("100.01"), Quantity.from_int(1)

    def on_start(self) -> None:
        self.subscribe_quote_ticks(instrument.id)

    def on_quote_tick(self, tick: QuoteTick) -> None:
        if self.started:
            return
        self.started = time.perf_counter()
        for _ in range(min(IN_FLIGHT, ORDERS)):
            self.send()

    def send(self) -> None:
        self.sent += 1
        order = self.order_factory.limit(instrument.id, OrderSide.BUY, self.one, self.price)
        self.submit_order(order)

    def on_order_filled(self, event: Any) -> None:
        self.fills += 1
        self.next()

    def on_order_denied(self, event: Any) -> None:
        self.refused += 1  # counted, so that a refusal shows instead of a short run
        self.next()

    def on_order_rejected(self, event: Any) -> None:
        self.refused += 1
        self.next()

    def next(self) -> None:
        if self.sent < ORDERS:
            self.send()
        elif self.fills + self.refused == ORDERS:
            result["seconds"] = time.perf_counter() - self.started
            result["refused"] = self.refused


# The risk engine's checks stay on; only its default rate limit (100 submits a
# second of engine time, and every send here is at one instant) is raised.
risk = RiskEngineConfig(max_order_submit_rate="100000000/00:00:01")
engine = BacktestEngine(
    BacktestEngineConfig(
        trader_id=TraderId("BENCH-001"), logging=LoggingConfig(log_level="ERROR"), risk_engine=risk
    )
)
engine.add_venue(
    venue=Venue("XNAS"),
    oms_type=OmsType.NETTING,
    account_type=AccountType.CASH,
    starting_balances=[Money(10**12, USD)],
    base_currency=USD,
)
engine.add_instrument(instrument)
t0 = 1_764_550_000_000_000_000
size = Quantity.from_int(10**9)
engine.add_data(
    [
        QuoteTick(
            instrument.id,
            Price.from_str("100.00"),
            Price.from_str("100.01"),
            size,
            size,
            t0 + i * 1_000_000_000,
            t0 + i * 1_000_000_000,
        )
        for i in range(ORDERS // IN_FLIGHT + 3)
    ]
)
strategy = Sender()
engine.add_strategy(strategy)
engine.run()
if strategy.fills + strategy.refused != ORDERS:
    raise SystemExit(f"only {strategy.fills} of {ORDERS} fills seen")
result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(result), flush=True)
