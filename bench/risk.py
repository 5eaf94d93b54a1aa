"""Cost of the full pre-trade chain per order, every rule on.

    python bench/risk.py [--orders 200000]

Runs RiskEngine.check (trading state, session, daily limit, price band,
quantity, notional, open orders, position, gross and net exposure, duplicate
guard, order rate) then RiskEngine.passed on a stream of varied orders, with
50 symbols held and 200 orders open, and prints the median and p99 per order.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from decimal import Decimal

from livegate.model import Instrument, InstrumentRegistry, Order, OrderIntent, Position, Side
from livegate.model.enums import OrderType, TimeInForce, TradingState
from livegate.risk import RiskEngine, RiskLimits, SessionGuard

D = Decimal


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200_000)
    args = parser.parse_args()
    rng = random.Random(3)
    symbols = [f"{600000 + i}.SH" for i in range(50)]
    instruments = InstrumentRegistry(
        Instrument(s, D("0.01"), D(100), D(100), exchange="XSHG", prev_close=D("10.00"))
        for s in symbols
    )
    limits = RiskLimits(
        max_order_qty=D(100_000),
        max_order_notional=D(10_000_000),
        max_position=D(10_000_000),
        max_gross_exposure=D(10) ** 12,
        max_net_exposure=D(10) ** 12,
        max_open_orders=100_000,
        max_orders_per_window=10**9,
        max_cancels_per_window=10**9,
        duplicate_window_seconds=0.001,
        price_band_pct=D("0.05"),
        reference_max_age_seconds=1e9,
    )
    risk = RiskEngine(limits, instruments, SessionGuard(override="open"))
    now = time.time_ns()
    for s in symbols:
        risk.set_reference_price(s, D("10.00"), now)
    positions = {s: Position(s, D(rng.randint(-50, 50) * 100), D("10.00")) for s in symbols}
    for i in range(200):
        risk.track(
            Order.from_intent(
                OrderIntent(
                    f"open{i}",
                    "a",
                    rng.choice(symbols),
                    rng.choice(list(Side)),
                    OrderType.LIMIT,
                    D(100),
                    D("10.00"),
                    TimeInForce.DAY,
                    now,
                )
            )
        )
    intents = [
        OrderIntent(
            f"o{i}",
            "a",
            rng.choice(symbols),
            rng.choice(list(Side)),
            OrderType.LIMIT,
            D(rng.randint(1, 50) * 100),
            D(rng.randint(960, 1040)) / 100,
            TimeInForce.DAY,
            now,
        )
        for i in range(args.orders)
    ]
    samples: list[int] = []
    refused = 0
    clock = time.perf_counter_ns
    for order in intents:
        t0 = clock()
        t = time.time_ns()
        refusal = risk.check(order, positions, t, TradingState.ACTIVE)
        if refusal is None:
            risk.passed(order, t)
        samples.append(clock() - t0)
        refused += refusal is not None
    samples.sort()
    print(
        f"{args.orders:,} orders through the full chain (11 checks), 50 symbols held,"
        f" 200 orders open; {refused:,} refused (duplicates, bands)"
    )
    print(f"median  {statistics.median(samples) / 1000:8.2f} us")
    print(f"p99     {samples[int(len(samples) * 0.99)] / 1000:8.2f} us")
    print(f"mean    {statistics.fmean(samples) / 1000:8.2f} us")


if __name__ == "__main__":
    main()
