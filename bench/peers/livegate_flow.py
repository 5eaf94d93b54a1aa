"""The peer flow on livegate: a gateway on its paper broker, with the journal on
SQLite as shipped (WAL, synchronous=FULL: every batch fsync'd before it counts).

    python livegate_flow.py ORDERS IN_FLIGHT

The strategy sends one-share limit buys at the ask through Gateway.submit_order,
IN_FLIGHT of them at the start and one more for each fill its trade callback is
told of, until it has seen ORDERS fills. Prints one JSON line: orders, seconds
(first send to last fill seen), peak RSS.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import livegate
from livegate.broker.paper import PaperAdapter, PaperConfig
from livegate.engine import Gateway
from livegate.journal import Journal, SQLiteStore
from livegate.model import Fill, Instrument, InstrumentRegistry, OrderRequest

ORDERS, IN_FLIGHT = int(sys.argv[1]), int(sys.argv[2])
result: dict[str, Any] = {"orders": ORDERS, "peer": "livegate", "version": livegate.__version__}


async def flow(directory: Path) -> None:
    big = Decimal(10) ** 12
    paper = PaperAdapter(
        directory / "paper.sqlite", PaperConfig(initial_cash=big, displayed_liquidity=big)
    )
    journal = Journal(SQLiteStore(directory / "journal.sqlite"))
    gateway = Gateway(paper, journal, InstrumentRegistry([Instrument("AAPL", Decimal("0.01"))]))
    await gateway.start()
    paper.set_quote("AAPL", Decimal("99.99"), Decimal("100.01"))
    price, sent, fills, refused = Decimal("100.01"), 0, 0, 0
    done = asyncio.get_running_loop().create_future()
    wanted: asyncio.Queue[None] = asyncio.Queue()

    def on_trade(fill: Fill) -> None:
        nonlocal fills
        fills += 1
        settled()

    def settled() -> None:
        if fills + refused == ORDERS:
            done.set_result(None)
        else:
            wanted.put_nowait(None)

    async def sender() -> None:
        nonlocal sent, refused
        try:
            while sent < ORDERS:
                sent += 1
                order = await gateway.submit_order(
                    OrderRequest(
                        symbol="AAPL",
                        side="BUY",
                        quantity=1,
                        price=price,
                        client_order_id=f"p{sent}",
                    )
                )
                if order.status.value == "REJECTED":  # counted: it shows, not hangs
                    refused += 1
                    settled()
                await wanted.get()
        except Exception as exc:  # the run stops with it, not hangs
            if not done.done():
                done.set_exception(exc)

    gateway.on_trade(on_trade)
    started = time.perf_counter()
    senders = [asyncio.create_task(sender()) for _ in range(min(IN_FLIGHT, ORDERS))]
    await done
    result["seconds"] = time.perf_counter() - started
    result["refused"] = refused
    for task in senders:
        task.cancel()
    await gateway.stop()


with tempfile.TemporaryDirectory() as tmp:
    asyncio.run(flow(Path(tmp)))
result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(result), flush=True)
