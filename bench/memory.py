"""The gateway's memory against the day's size: does it stay flat in N?

    python bench/memory.py [--orders 10000 100000 300000 1000000] [--retain-seconds 1]
                           [--checkpoint-every 40000]

Each size runs bench/sim.py's load (market orders through the sim broker,
which runs as its own process and keeps its own book, so the gateway's
process holds only the gateway; SQLite journal, synchronous=FULL) in a
process of its own, so each peak RSS is that run's alone, twice: with the
gateway's defaults, and with finished orders leaving memory (`retain_hours`
of a few seconds, a checkpoint every `--checkpoint-every` journal events;
engine/archive.py). Prints, for each: peak RSS, the resident size's range over
the run's second half (flat in N is the goal, not a low peak), orders held at
the end, orders/s, and the longest event-loop stall (a checkpoint that retires
orders does its work on the loop); asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

CHILD = """
import asyncio, json, sys, tempfile
from pathlib import Path
sys.path.insert(0, {bench!r})
from sim import run
from livegate.engine import GatewayConfig
orders, retain, every = {orders}, {retain}, {every}
config = GatewayConfig(heartbeat_interval=1.0, place_timeout=30)
if retain:
    config.retain_hours, config.checkpoint_every = retain / 3600, every
with tempfile.TemporaryDirectory() as tmp:
    result = asyncio.run(run(Path(tmp), orders, 200, config))
print(json.dumps(result))
"""


def measure(orders: int, retain: float, every: int) -> dict[str, float]:
    code = CHILD.format(bench=str(Path(__file__).parent), orders=orders, retain=retain, every=every)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--orders", type=int, nargs="+", default=[10_000, 100_000, 300_000, 1_000_000]
    )
    parser.add_argument("--retain-seconds", type=float, default=1.0)
    parser.add_argument("--checkpoint-every", type=int, default=40_000)
    args = parser.parse_args()
    print(
        f"{'orders':>10} {'gateway':>9} {'peak RSS':>9} {'2nd half RSS':>13}"
        f" {'held':>9} {'orders/s':>9} {'max stall':>10}"
    )
    for orders in args.orders:
        for name, retain, every in (
            ("defaults", 0.0, 0),
            ("retiring", args.retain_seconds, args.checkpoint_every),
        ):
            r = measure(orders, retain, every)
            late = f"{r['rss_late_min_mb']:.0f}-{r['rss_late_max_mb']:.0f} MB"
            print(
                f"{orders:>10,} {name:>9} {r['peak_rss_mb']:>6,.0f} MB {late:>13}"
                f" {r['orders_held']:>9,} {r['orders_per_s']:>9,.0f}"
                f" {r['max_stall_ms']:>7,.0f} ms",
                flush=True,
            )


if __name__ == "__main__":
    main()
