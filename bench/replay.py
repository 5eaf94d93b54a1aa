"""Replay of a day-sized capture: parse and replay time, and whether it stays linear.

    python bench/replay.py [--orders 20000] [--restarts 4] [--runs 3]

Each order is a submit, its acknowledgement, one fill and FILLED, with a
restart line every `orders / (restarts + 1)` orders (each restart replays the
journal so far, as a real restart does). Prints medians; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from livegate.drills.capture import read_capture
from livegate.drills.replay import replay


def write_capture(path: Path, orders: int, restarts: int) -> None:
    every = max(1, orders // (restarts + 1))
    with path.open("w") as out:
        for i in range(orders):
            c, b = f"c{i}", f"b{i}"
            lines = [
                {"type": "submit", "client_order_id": c, "symbol": "AAPL", "side": "BUY",
                 "quantity": "100", "price": "10.00"},
                {"type": "order_report", "status": "SUBMITTED", "client_order_id": c,
                 "broker_order_id": b},
                {"type": "trade_report", "quantity": "100", "price": "10.00",
                 "client_order_id": c, "broker_order_id": b, "trade_id": f"t{i}"},
                {"type": "order_report", "status": "FILLED", "client_order_id": c,
                 "broker_order_id": b, "cum_qty": "100", "avg_price": "10.00"},
            ]  # fmt: skip
            if i and i % every == 0 and restarts:
                lines.append({"type": "restart"})
            out.writelines(json.dumps(line) + "\n" for line in lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--restarts", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for orders in (args.orders // 10, args.orders):
            path = Path(tmp) / f"capture-{orders}.jsonl"
            write_capture(path, orders, args.restarts)
            parse_s, replay_s = [], []
            for _ in range(args.runs):
                started = time.perf_counter()
                capture = read_capture(path)
                parse_s.append(time.perf_counter() - started)
                started = time.perf_counter()
                result = asyncio.run(replay(capture))
                replay_s.append(time.perf_counter() - started)
                assert len(result.fills) == orders
            p, r = statistics.median(parse_s), statistics.median(replay_s)
            print(
                f"{orders:>7,} orders, {args.restarts} restarts: parse {p:.2f} s,"
                f" replay {r:.2f} s ({orders / r:,.0f} orders/s), total {p + r:.2f} s"
            )


if __name__ == "__main__":
    main()
