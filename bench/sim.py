"""Sustained order load from one gateway through the sim broker (its own process).

Each order is a market order the sim broker fills at once: the full round
trip over TCP (place request, answer, trade and order reports) with the
gateway's durable journal on one side and the broker's saved book on the
other. Issue 4's goal: at least 5,000 orders/s. Prints the median of
`--repeat` runs and each run.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import secrets
import statistics
import tempfile
import time
from pathlib import Path

from livegate.broker.sim import SimAdapter
from livegate.drills.faults import SimProcess
from livegate.engine import Gateway, GatewayConfig
from livegate.journal import Journal, SQLiteStore
from livegate.model import OrderRequest
from livegate.model.samples import demo_instruments
from livegate.model.secret import Secret


def _resident_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


async def _watch(samples: list[tuple[float, float]], period: float = 0.05) -> None:
    """Every `period`: (how late the loop woke, resident MB). Lateness is a stall that a
    heartbeat or a fill waited through; the resident size is now, not the peak."""
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + period
        await asyncio.sleep(period)
        samples.append((loop.time() - due, _resident_mb()))


async def run(
    directory: Path, orders: int, in_flight: int, config: GatewayConfig | None = None
) -> dict[str, float]:
    """`config`: the gateway's, over this bench's timing (bench/memory.py retires orders).

    Besides the rate: the longest stall of the event loop, and the resident size's
    range over the second half of the run (after warm-up), sampled every 50 ms."""
    key = f"lg_sim_{secrets.token_hex(8)}"
    sim = SimProcess(directory / "sim", key)
    sim.start()
    try:
        gateway = Gateway(
            SimAdapter("127.0.0.1", sim.port, Secret(key)),
            Journal(SQLiteStore(directory / "journal.sqlite")),
            demo_instruments(),
            config or GatewayConfig(heartbeat_interval=1.0, place_timeout=30),
        )
        filled = 0
        done = asyncio.Event()

        def on_fill(_: object) -> None:
            nonlocal filled
            filled += 1
            if filled == orders:
                done.set()

        gateway.on_trade(on_fill)
        await gateway.start()
        await sim.control("quote", symbol="AAPL", bid="99.99", ask="100.01")

        async def worker(w: int) -> None:
            for i in range(w, orders, in_flight):
                await gateway.submit_order(
                    OrderRequest(
                        symbol="AAPL",
                        side="BUY" if i % 2 else "SELL",
                        quantity=1,
                        order_type="MARKET",
                        client_order_id=f"b{i}",
                    )
                )

        started = time.perf_counter()
        cpu = time.process_time()
        samples: list[tuple[float, float]] = []
        watcher = asyncio.create_task(_watch(samples))
        await asyncio.gather(*(worker(w) for w in range(in_flight)))
        await asyncio.wait_for(done.wait(), 120)
        elapsed = time.perf_counter() - started
        watcher.cancel()
        gateway_cpu = time.process_time() - cpu
        stats = await sim.control("stats")
        held = len(gateway.book.orders)
        await gateway.stop()
    finally:
        sim.stop()
    assert stats["sent_twice"] == [] and stats["orders"] == orders
    late_half = samples[len(samples) // 2 :]
    return {
        "orders_per_s": orders / elapsed,
        "gateway_cpu_us_per_order": gateway_cpu / orders * 1e6,
        "orders_held": held,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "max_stall_ms": max((late for late, _ in samples), default=0.0) * 1e3,
        "rss_late_min_mb": min((rss for _, rss in late_half), default=0.0),
        "rss_late_max_mb": max((rss for _, rss in late_half), default=0.0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--in-flight", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    runs = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            runs.append(asyncio.run(run(Path(tmp), args.orders, args.in_flight)))
    rates = [r["orders_per_s"] for r in runs]
    print(
        f"sim broker, {args.orders:,} market orders, {args.in_flight} in flight,"
        f" one gateway, median of {args.repeat} runs"
    )
    print("orders/s per run         " + ", ".join(f"{r:,.0f}" for r in rates))
    print(f"orders/s (full round trip) {statistics.median(rates):>10,.0f}   (goal: 5,000)")
    cpu = statistics.median(r["gateway_cpu_us_per_order"] for r in runs)
    print(f"gateway CPU per order     {cpu:>10,.1f} us")


if __name__ == "__main__":
    main()
