"""Periodic work against the day's history: what an idle gateway spends each second.

    python bench/periodic.py [--orders 10000 100000 300000] [--open 100]

Builds a gateway's book of N orders (all finished but `--open` still working,
as late in a busy day) and times one round of what runs every second without
any order flowing: every alert rule's condition, the status loop's open-order
count, and the cash figure (reserved by open orders). Prints the median of 20
rounds per N; flat in N means the periodic work costs what is open, not the
day. Asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from livegate.broker.paper import PaperAdapter
from livegate.engine import Gateway
from livegate.journal import Journal, MemoryStore
from livegate.model import OrderIntent, OrderReport, OrderStatus, Side
from livegate.model.enums import OrderType, TimeInForce
from livegate.model.events import Received
from livegate.model.samples import demo_instruments
from livegate.observe.alerts import AlertConfig, default_rules

D = Decimal


def gateway_with(directory: Path, orders: int, still_open: int) -> Gateway:
    gateway = Gateway(
        PaperAdapter(directory / "paper.sqlite"), Journal(MemoryStore()), demo_instruments()
    )
    book = gateway.book
    now = time.time_ns()
    for i in range(orders):
        coid = f"C{i:08d}"
        book.apply(OrderIntent(coid, "bench", "AAPL", Side.BUY, OrderType.LIMIT, D(1),
                               D("190.00"), TimeInForce.DAY, now))  # fmt: skip
        status = OrderStatus.SUBMITTED if i >= orders - still_open else OrderStatus.CANCELLED
        book.apply(Received(OrderReport(status, coid, f"B{i}"), now))
    return gateway


def round_seconds(gateway: Gateway, runs: int = 20) -> float:
    rules = default_rules(AlertConfig())
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        for rule in rules:
            rule.condition(gateway)
        sum(1 for _ in gateway.book.open_orders())  # the status loop's count
        gateway.cash()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, nargs="*", default=[10_000, 100_000, 300_000])
    parser.add_argument("--open", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.orders:
            gateway = gateway_with(Path(tmp), n, args.open)
            seconds = round_seconds(gateway)
            print(f"{n:>9,} orders ({args.open} open): one round of periodic work"
                  f" {seconds * 1e3:8.3f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
