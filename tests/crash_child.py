"""Trades through gateway + paper broker until killed. Run by test_crash.py.

python -m tests.crash_child DIR SEED [PORT CONTROL_PORT KEY]: a random but
seeded flow of quotes, market and limit orders, duplicate submits (also of
ids from before a restart) and cancels, with many orders in flight at any
moment. With the ports, the broker is a sim broker process (`livegate
sim-broker`) instead of the embedded paper broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
from decimal import Decimal
from pathlib import Path

from livegate.broker.paper import PaperConfig
from livegate.broker.sim import SimAdapter
from livegate.engine import Gateway
from livegate.journal import Journal
from livegate.model import DuplicateClientOrderIdError, OrderRequest
from livegate.model.secret import Secret
from livegate.sim.server import control

from .helpers import INSTRUMENTS, crash_store, paper_gateway

D = Decimal
SYMBOLS = ["AAPL", "MSFT"]


def sim_gateway(directory: Path, port: int, key: str) -> Gateway:
    adapter = SimAdapter("127.0.0.1", port, Secret(key), environment="sim")
    return Gateway(adapter, Journal(crash_store(directory)), INSTRUMENTS)


async def main(directory: Path, seed: int, sim: tuple[int, int, str] | None) -> None:
    rng = random.Random(seed)
    if sim is None:
        gateway, paper = paper_gateway(
            directory, PaperConfig(displayed_liquidity=D(300)), crash_store(directory)
        )

        async def set_quote(symbol: str, bid: Decimal, ask: Decimal) -> None:
            paper.set_quote(symbol, bid, ask)
    else:
        port, control_port, key = sim
        gateway = sim_gateway(directory, port, key)

        async def set_quote(symbol: str, bid: Decimal, ask: Decimal) -> None:
            await control("127.0.0.1", control_port, "quote", symbol=symbol, bid=str(bid),
                          ask=str(ask), bid_size="300", ask_size="300")  # fmt: skip

    await gateway.start()
    previous = [o.client_order_id for o in gateway.orders()]
    mid = {s: D(100) for s in SYMBOLS}
    run = f"{seed}-{len(previous)}"
    print("ready", flush=True)

    async def worker(w: int) -> None:
        n = 0
        while True:
            n += 1
            symbol = rng.choice(SYMBOLS)
            action = rng.random()
            if action < 0.2:
                mid[symbol] += D(rng.randint(-5, 5)) / 100
                await set_quote(symbol, mid[symbol] - D("0.01"), mid[symbol] + D("0.01"))
            elif action < 0.3 and previous:
                again = gateway.order(rng.choice(previous)).as_request()
                with contextlib.suppress(DuplicateClientOrderIdError):
                    await gateway.submit_order(again)
            elif action < 0.4:
                open_orders = gateway.orders(open_only=True)
                if open_orders:
                    await gateway.cancel_order(rng.choice(open_orders).client_order_id)
            else:
                side = rng.choice(["BUY", "SELL"])
                qty = rng.randint(1, 6) * 100
                if rng.random() < 0.5:
                    request = OrderRequest(
                        symbol=symbol,
                        side=side,
                        quantity=qty,
                        order_type="MARKET",
                        client_order_id=f"c{run}-{w}-{n}",
                    )
                else:
                    offset = D(rng.randint(-3, 3)) / 100
                    request = OrderRequest(
                        symbol=symbol,
                        side=side,
                        quantity=qty,
                        price=mid[symbol] + offset,
                        client_order_id=f"c{run}-{w}-{n}",
                    )
                order = await gateway.submit_order(request)
                previous.append(order.client_order_id)
            await asyncio.sleep(0)

    await asyncio.gather(*(worker(w) for w in range(8)))


if __name__ == "__main__":
    sim = (int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]) if len(sys.argv) > 3 else None
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2]), sim))
