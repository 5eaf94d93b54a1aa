"""Full order lifecycle throughput: submit -> durable intent -> paper ack -> fill -> callbacks.

    python bench/throughput.py [--orders 100000] [--workers 1000]

Every order is a market order against ample paper liquidity, so each one is
journaled four times (intent, ack, trade, order report), each batch fsync'd
(SQLite WAL, synchronous=FULL). `workers` orders are kept in flight (one per
strategy task, or `--basket` sized baskets through `submit_orders`), which
is what lets group commit batch them. Prints
orders/s, submit-to-fill-callback latency, journal events/s and peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from livegate.broker.paper import PaperAdapter, PaperConfig
from livegate.engine import Gateway, GatewayConfig
from livegate.journal import Journal, SQLiteStore, Store
from livegate.model import Fill, Instrument, InstrumentRegistry, OrderRequest
from livegate.observe.logs import OrderLog
from livegate.observe.metrics import GatewayMetrics

D = Decimal


async def run(
    directory: Path,
    orders: int,
    workers: int,
    basket: int,
    metrics: bool = False,
    logs: bool = False,
    store: Store | None = None,
    config: GatewayConfig | None = None,
) -> dict[str, float]:
    """`store`: the journal's (default: SQLite in `directory`; bench/postgres.py passes
    a PostgreSQL one); `config`: the gateway's (bench/memory.py retires orders)."""
    paper = PaperAdapter(
        directory / "paper.sqlite",
        PaperConfig(initial_cash=D(10) ** 12, displayed_liquidity=D(10) ** 12),
    )
    journal = Journal(store if store is not None else SQLiteStore(directory / "journal.sqlite"))
    instruments = InstrumentRegistry([Instrument("AAPL", D("0.01"))])
    log_file = (directory / "orders.log").open("wb") if logs else None
    gateway = Gateway(
        paper,
        journal,
        instruments,
        config,
        metrics=GatewayMetrics() if metrics else None,
        order_log=OrderLog("bench", "default", log_file) if log_file else None,
    )
    submitted_at: dict[str, int] = {}
    latencies: list[int] = []

    def on_trade(fill: Fill) -> None:
        latencies.append(time.perf_counter_ns() - submitted_at.pop(fill.client_order_id))

    gateway.on_trade(on_trade)
    await gateway.start()
    paper.set_quote("AAPL", D("99.99"), D("100.01"))

    def request(i: int) -> OrderRequest:
        coid = f"b{i}"
        submitted_at[coid] = time.perf_counter_ns()
        return OrderRequest(
            symbol="AAPL",
            side="BUY" if i % 2 else "SELL",
            quantity=1,
            order_type="MARKET",
            client_order_id=coid,
        )

    async def worker(w: int) -> None:
        for i in range(w, orders, workers):
            await gateway.submit_order(request(i))

    async def basket_worker(w: int, baskets: int) -> None:
        for b in range(w, orders // basket, baskets):
            await gateway.submit_orders([request(b * basket + k) for k in range(basket)])

    started = time.perf_counter()
    cpu_started = time.process_time()
    loop_cpu_started = time.thread_time()
    if basket:
        baskets = max(1, workers // basket)
        await asyncio.gather(*(basket_worker(w, baskets) for w in range(baskets)))
    else:
        await asyncio.gather(*(worker(w) for w in range(workers)))
    while len(latencies) < orders:  # the last fills may still be in flight
        await asyncio.sleep(0.001)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    loop_cpu = time.thread_time() - loop_cpu_started
    stats = journal.stats
    await gateway.stop()
    if log_file is not None:
        log_file.close()
    latencies.sort()
    return {
        "orders": orders,
        "seconds": elapsed,
        "orders_per_s": orders / elapsed,
        "cpu_us_per_order": cpu / orders * 1e6,
        "loop_cpu_us_per_order": loop_cpu / orders * 1e6,
        "p50_us": statistics.median(latencies) / 1e3,
        "p99_us": latencies[int(len(latencies) * 0.99)] / 1e3,
        "journal_events_per_s": stats.events / elapsed,
        "journal_batches": stats.batches,
        "events_per_batch": stats.events / max(stats.batches, 1),
        "writer_busy": stats.write_seconds / elapsed,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "orders_held": len(gateway.book.orders),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=1_000)
    parser.add_argument(
        "--basket", type=int, default=0, help="submit baskets of this size (0: one by one)"
    )
    parser.add_argument(
        "--observe",
        action="store_true",
        help="also run with metrics, order logs and both on; print each against off",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs; medians are printed")
    parser.add_argument("--dir", type=Path, default=None, help="default: a temporary folder")
    args = parser.parse_args()
    runs = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
            runs.append(asyncio.run(run(Path(tmp), args.orders, args.workers, args.basket)))
    result = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    result["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    if args.observe:  # interleaved, so every configuration sees the same machine
        configs = {"off": (False, False), "metrics": (True, False), "logs": (False, True)}
        configs["metrics + logs"] = (True, True)
        seen: dict[str, list[tuple[float, float]]] = {name: [] for name in configs}
        for _ in range(args.repeat):
            for name, (with_metrics, with_logs) in configs.items():
                with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
                    r = asyncio.run(
                        run(
                            Path(tmp),
                            args.orders,
                            args.workers,
                            args.basket,
                            with_metrics,
                            with_logs,
                        )
                    )
                    seen[name].append((r["orders_per_s"], r["loop_cpu_us_per_order"]))
        off = statistics.median(p[0] for p in seen["off"])
        cpu_off = statistics.median(p[1] for p in seen["off"])
        for name, points in seen.items():
            rate = statistics.median(p[0] for p in points)
            cpu = statistics.median(p[1] for p in points)
            line = f"{name + ':':16}{rate:>9,.0f} orders/s, loop CPU {cpu:5.1f} us/order"
            if name != "off":
                line += f"; overhead {(off - rate) / off:.1%} throughput"
                line += f", {(cpu - cpu_off) / cpu_off:.1%} CPU"
            print(line)
    mode = f"baskets of {args.basket}" if args.basket else "one submit_order per order"
    print(
        f"python {sys.version.split()[0]}, {args.orders:,} orders, {args.workers} in flight"
        f" ({mode}), median of {args.repeat} runs"
    )
    print("orders/s per run              " + ", ".join(f"{r['orders_per_s']:,.0f}" for r in runs))
    print(f"orders/s (full lifecycle)     {result['orders_per_s']:>12,.0f}")
    print(f"CPU per order, all threads    {result['cpu_us_per_order']:>12,.1f} us")
    print(f"CPU per order, event loop     {result['loop_cpu_us_per_order']:>12,.1f} us")
    print(f"submit->fill callback p50     {result['p50_us']:>12,.0f} us")
    print(f"submit->fill callback p99     {result['p99_us']:>12,.0f} us")
    print(f"journal events/s              {result['journal_events_per_s']:>12,.0f}")
    print(f"journal batches (fsyncs)      {result['journal_batches']:>12,.0f}")
    print(f"events per batch              {result['events_per_batch']:>12,.0f}")
    print(f"journal writer busy           {result['writer_busy']:>12.0%}")
    print(f"peak RSS                      {result['peak_rss_mb']:>12,.0f} MB")


if __name__ == "__main__":
    main()
