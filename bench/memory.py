"""The gateway's memory against the day's size: does it stay flat in N?

    python bench/memory.py [--orders 10000 100000 300000 1000000] [--retain-seconds 1]
                           [--checkpoint-every 40000]

Each size runs bench/sim.py's load (market orders through the sim broker,
which runs as its own process and keeps its own book, so the gateway's
process holds only the gateway; SQLite journal, synchronous=FULL) in a
process of its own, so each peak RSS is that run's alone, twice: with the
gateway's defaults, and with finished orders leaving memory (`retain_hours`
of a few seconds, a checkpoint every `--checkpoint-every` journal events;
engine/archive.py). Prints peak RSS, orders held at the end and orders/s;
asserts nothing.
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
    kept, retiring = "defaults: RSS, held, orders/s", "retiring: RSS, held, orders/s"
    print(f"{'orders':>10}  {kept:>34}  {retiring:>34}")
    for orders in args.orders:
        kept = measure(orders, 0, 0)
        retired = measure(orders, args.retain_seconds, args.checkpoint_every)
        cells = [
            f"{r['peak_rss_mb']:6,.0f} MB {r['orders_held']:>10,} {r['orders_per_s']:>9,.0f}"
            for r in (kept, retired)
        ]
        print(f"{orders:>10,}  {cells[0]:>34}  {cells[1]:>34}", flush=True)


if __name__ == "__main__":
    main()
