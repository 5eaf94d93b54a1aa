"""Buys through the gateway and the FIX adapter (session BUYER) until killed.

python -m tests.fix_crash_child DIR PORT RUN: a steady stream of small limit
buys that cross whatever the SELLER session offers on QuickFIX's ordermatch,
with several orders in flight at any moment. Run by test_fix_crash.py.
"""

from __future__ import annotations

import asyncio
import sys
from decimal import Decimal
from pathlib import Path

from livegate.broker.fix import FixAdapter, FixSessionConfig
from livegate.engine import Gateway, GatewayConfig
from livegate.journal import Journal, SQLiteStore
from livegate.model import Instrument, InstrumentRegistry, OrderRequest

INSTRUMENTS = InstrumentRegistry([Instrument("IBM", Decimal("0.01"))])


def buyer(directory: Path, port: int) -> Gateway:
    config = FixSessionConfig(
        "127.0.0.1", port, "BUYER", "ORDERMATCH", directory / "buyer.sqlite",
        heartbeat_interval=1, logon_timeout=5,
    )  # fmt: skip
    return Gateway(
        FixAdapter(config),
        Journal(SQLiteStore(directory / "journal.sqlite")),
        INSTRUMENTS,
        GatewayConfig(
            reconnect_delay=0.05, reconnect_max_delay=0.5, unknown_grace=1.0,
            gil_switch_interval=None,
        ),
    )  # fmt: skip


async def main(directory: Path, port: int, run: str) -> None:
    gateway = buyer(directory, port)
    await gateway.start()
    print("ready", flush=True)

    async def worker(w: int) -> None:
        n = 0
        while True:
            n += 1
            request = OrderRequest(
                symbol="IBM", side="BUY", quantity=10, price="10.25",
                client_order_id=f"b{run}-{w}-{n}",
            )  # fmt: skip
            await gateway.submit_order(request)
            await asyncio.sleep(0.005)

    await asyncio.gather(*(worker(w) for w in range(4)))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]))
