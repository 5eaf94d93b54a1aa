"""The console's pages over a day-sized journal: how long the overview takes to render.

    python bench/console.py [--orders 100000] [--runs 20]

Writes a journal of `orders` orders (intent, acknowledgement, trade, FILLED;
every tenth left open), starts the console app on it as `livegate console`
does (the first full read of the journal happens then, and is timed
separately), then times whole HTTP requests in-process: the overview, the
orders page, and the live region the page polls. Prints medians and p90;
asserts nothing (the goal, 300 ms for the overview at 100k orders, is judged
here, never in a test).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from fastapi.testclient import TestClient

from livegate.console.app import create_app
from livegate.console.auth import User, hash_password
from livegate.journal import Journal, SQLiteStore
from livegate.model import OrderIntent, OrderReport, OrderStatus, Side, TradeReport
from livegate.model.enums import OrderType, TimeInForce
from livegate.model.events import Received

D = Decimal
SYMBOLS = ("AAPL", "MSFT", "SPY", "TSLA")


def write_journal(path: Path, orders: int) -> None:
    journal = Journal(SQLiteStore(path, synchronous="NORMAL"))
    journal.open()
    now = time.time_ns()
    batch = []
    for i in range(orders):
        coid, boid = f"C{i:08d}", f"B{i:08d}"
        side = Side.BUY if i % 2 else Side.SELL
        batch.append(OrderIntent(coid, "bench", SYMBOLS[i % 4], side, OrderType.LIMIT, D(100),
                                 D("10.00"), TimeInForce.DAY, now + i))  # fmt: skip
        batch.append(Received(OrderReport(OrderStatus.SUBMITTED, coid, boid), now + i + 1000))
        if i % 10:
            batch.append(Received(TradeReport(D(100), D("10.00"), coid, boid, f"T{i}"),
                                  now + i + 2000))  # fmt: skip
            batch.append(Received(OrderReport(OrderStatus.FILLED, coid, boid, cum_qty=D(100)),
                                  now + i + 3000))  # fmt: skip
        if len(batch) >= 5000:
            journal.write_now(batch)
            batch = []
    journal.write_now(batch)
    journal.store.close()


def timed(client: TestClient, path: str, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        answer = client.get(path)
        times.append(time.perf_counter() - started)
        assert answer.status_code == 200, answer.text[:200]
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "svc"
        data.mkdir()
        started = time.perf_counter()
        write_journal(data / "journal.sqlite", args.orders)
        print(f"journal of {args.orders:,} orders written in {time.perf_counter() - started:.1f} s")
        users = {"alice": User("alice", "operator", hash_password("bench-password"))}
        started = time.perf_counter()
        app = create_app(data, users)
        print(f"console start (first read of the whole journal): "
              f"{time.perf_counter() - started:.2f} s")  # fmt: skip
        client = TestClient(app)
        client.get("/login")
        token = client.cookies.get("livegate_login")
        client.post("/login", data={"username": "alice", "password": "bench-password",
                                    "csrf": token, "next": "/"})  # fmt: skip
        pages = (
            ("overview", "/"),
            ("orders page", "/orders"),
            ("overview live region", "/live/overview"),
            ("orders filtered (TSLA, open)", "/orders?symbol=TSLA&open=1"),
        )
        for label, path in pages:
            times = sorted(timed(client, path, args.runs))
            p90 = times[int(len(times) * 0.9) - 1]
            print(
                f"{label:<30} median {statistics.median(times) * 1e3:7.1f} ms,"
                f" p90 {p90 * 1e3:7.1f} ms ({args.runs} requests)"
            )


if __name__ == "__main__":
    main()
