"""Report ingest throughput: journal (durable), dedup, order, apply, dispatch.

    python bench/ingest.py [--reports 1000000] [--dup 0.2] [--reorder 0.1]

Builds a day of broker reports for many orders (ack, partial fill, fill),
duplicates 20% of them and displaces 10% a few places later, then streams
them through the gateway's real ingest from an adapter, with the SQLite
journal at synchronous=FULL. No strategy is subscribed: a strategy's
callbacks add their own cost on top. Prints reports/s and checks the result against
the truth: every fill counted exactly once, every order in its final state.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from pathlib import Path

from livegate.broker.adapter import Capabilities
from livegate.engine import Gateway, GatewayConfig
from livegate.journal import Journal, SQLiteStore
from livegate.model import (
    AccountSnapshot,
    BrokerReport,
    Instrument,
    InstrumentRegistry,
    OrderIntent,
    OrderReport,
    OrderStatus,
    Side,
    TradeReport,
)
from livegate.model.enums import OrderType, TimeInForce

D = Decimal
S = OrderStatus
PER_ORDER = 5  # ack, trade, partial, trade, filled


class StreamBroker:
    """Plays a prepared list of reports onto the stream, yielding to the loop now and then."""

    name = "bench-stream"
    capabilities = Capabilities()

    def __init__(self, reports: list[BrokerReport]) -> None:
        self.stream = reports
        self.started = asyncio.Event()
        self.closed = asyncio.Event()

    async def connect(self) -> None: ...
    async def close(self) -> None:
        self.closed.set()

    async def heartbeat(self) -> int:
        return 0

    async def place(self, intent: OrderIntent) -> str | None:
        return None

    async def cancel(self, client_order_id: str, broker_order_id: str | None) -> None: ...
    async def order_status(self, c: str, b: str | None) -> OrderReport | None:
        return None

    async def open_orders(self) -> Sequence[OrderReport]:
        return []

    async def today_trades(self) -> Sequence[TradeReport]:
        return []

    async def account(self) -> AccountSnapshot:
        return AccountSnapshot("bench", "USD", D(0), D(0))

    async def reports(self) -> AsyncIterator[BrokerReport]:
        await self.started.wait()
        for index, report in enumerate(self.stream):
            if index % 2_000 == 0:
                await asyncio.sleep(0)  # a socket would hand us reports in chunks
            yield report
        await self.closed.wait()  # a live connection stays open after the day's reports


def build(n_reports: int, dup: float, reorder: float, seed: int) -> tuple[int, list[BrokerReport]]:
    rng = random.Random(seed)
    unique = int(n_reports / (1 + dup))
    orders = unique // PER_ORDER
    reports: list[BrokerReport] = []
    for i in range(orders):
        coid, boid = f"o{i}", f"B{i}"
        reports += [
            OrderReport(S.SUBMITTED, coid, boid, cum_qty=D(0)),
            TradeReport(D(40), D("10.01"), coid, boid, f"T{i}a", "X", Side.BUY, D("0.10")),
            OrderReport(S.PARTIALLY_FILLED, coid, boid, cum_qty=D(40)),
            TradeReport(D(60), D("10.02"), coid, boid, f"T{i}b", "X", Side.BUY, D("0.10")),
            OrderReport(S.FILLED, coid, boid, cum_qty=D(100)),
        ]
    # Position keys, then one sort: duplicates are delivered again a little
    # later, and a share of all deliveries is displaced a few places later.
    keyed = [(float(k), r) for k, r in enumerate(reports)]
    for _ in range(n_reports - len(reports)):
        k = rng.randrange(len(reports))
        keyed.append((k + rng.randint(1, 50) + 0.5, reports[k]))
    for _ in range(int(len(keyed) * reorder)):
        j = rng.randrange(len(keyed))
        keyed[j] = (keyed[j][0] + rng.randint(1, 20) + 0.25, keyed[j][1])
    keyed.sort(key=lambda pair: pair[0])
    return orders, [r for _, r in keyed]


async def run(directory: Path, orders: int, stream: list[BrokerReport]) -> dict[str, float]:
    broker = StreamBroker(stream)
    journal = Journal(SQLiteStore(directory / "journal.sqlite"))
    instruments = InstrumentRegistry([Instrument("X", D("0.01"))])
    gateway = Gateway(broker, journal, instruments, GatewayConfig(resolve_interval=1e9))
    await gateway.start()
    for i in range(orders):  # the day's orders, journaled as our own submits would be
        gateway.book.open_order(
            OrderIntent(
                f"o{i}", "a", "X", Side.BUY, OrderType.LIMIT, D(100), D("10.05"), TimeInForce.DAY, 0
            )
        )
    await journal.drain()
    events_before = journal.stats.events
    started = time.perf_counter()
    loop_cpu = time.thread_time()
    write_before = journal.stats.write_seconds
    broker.started.set()
    truth = 2 * orders
    while len(gateway.book.fills) < truth or gateway.anomalies.total() < 0:
        await asyncio.sleep(0.01)
    while not all(o.status is S.FILLED for o in gateway.book.orders.values()):
        await asyncio.sleep(0.01)
    await journal.drain()
    await asyncio.sleep(0)
    elapsed = time.perf_counter() - started
    loop_cpu = time.thread_time() - loop_cpu
    fills = gateway.book.fills
    double = len(fills) - len({f.trade_id for f in fills})
    wrong = sum(1 for o in gateway.book.orders.values() if o.filled_qty != 100)
    result = {
        "seconds": elapsed,
        "reports_per_s": len(stream) / elapsed,
        "loop_us_per_report": loop_cpu / len(stream) * 1e6,
        "writer_busy": (journal.stats.write_seconds - write_before) / elapsed,
        "journaled": journal.stats.events - events_before,
        "fills": len(fills),
        "double_counted": double,
        "wrong_orders": wrong,
        "duplicates_seen": gateway.anomalies["DUPLICATE_FILL"],
        "stale_seen": gateway.anomalies["STALE_REPORT"],
    }
    await gateway.stop()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=1_000_000)
    parser.add_argument("--dup", type=float, default=0.2)
    parser.add_argument("--reorder", type=float, default=0.1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    orders, stream = build(args.reports, args.dup, args.reorder, args.seed)
    runs = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            runs.append(asyncio.run(run(Path(tmp), orders, stream)))
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(
        f"{len(stream):,} reports for {orders:,} orders ({args.dup:.0%} duplicated,"
        f" {args.reorder:.0%} displaced), median of {args.repeat} runs"
    )
    print("reports/s per run        " + ", ".join(f"{r['reports_per_s']:,.0f}" for r in runs))
    print(f"reports/s                {med['reports_per_s']:>12,.0f}")
    print(f"event-loop CPU per report{med['loop_us_per_report']:>12,.1f} us")
    print(f"journal writer busy      {med['writer_busy']:>12.0%}")
    print(f"journaled (durable)      {med['journaled']:>12,.0f}")
    print(f"fills counted            {med['fills']:>12,.0f}   (truth: {2 * orders:,})")
    print(f"double-counted fills     {max(r['double_counted'] for r in runs):>12,.0f}")
    print(f"orders not exactly filled{max(r['wrong_orders'] for r in runs):>12,.0f}")
    print(f"duplicate fills refused  {med['duplicates_seen']:>12,.0f}")
    print(f"stale reports refused    {med['stale_seen']:>12,.0f}")


if __name__ == "__main__":
    main()
