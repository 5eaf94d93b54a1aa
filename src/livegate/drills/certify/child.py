"""The gateway process certify SIGKILLs: `python -m livegate.drills.certify.child SPEC DIR SEED`.

It builds the target from the same factory, on the bench's journal, says
"ready", then trades until it is killed: working orders, crossing orders
when the market can be moved, cancels. The parent then restarts on the
same journal and judges what the killed processes left.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
from pathlib import Path

from livegate.drills.certify.harness import NotApplicable, as_target, certify_config
from livegate.drills.certify.runner import load_factory
from livegate.drills.certify.target import CertifyEnv
from livegate.engine import Gateway
from livegate.journal import Journal, SQLiteStore
from livegate.model.orders import OrderRequest


async def main(spec: str, directory: Path, seed: int) -> None:
    rng = random.Random(seed)
    target = as_target(load_factory(spec)(CertifyEnv(directory / "adapter")))
    assert target is not None and target.market is not None
    market = target.market
    gateway = Gateway(
        target.adapter,
        Journal(SQLiteStore(directory / "journal.sqlite")),
        target.instruments,
        certify_config(),
    )
    await gateway.start()
    print("ready", flush=True)
    while True:
        crossing = rng.random() < 0.4
        if crossing:
            with contextlib.suppress(NotApplicable):
                await market.quote(market.mid - market.tick, market.mid + market.tick, None)
        ticks = 1 if crossing else -rng.randint(5, 30)
        order = await gateway.submit_order(
            OrderRequest(symbol=market.symbol, side="BUY", quantity=rng.randint(1, 3),
                         price=market.mid + market.tick * ticks)
        )  # fmt: skip
        if rng.random() < 0.3 and order.status.is_open:
            with contextlib.suppress(Exception):
                await gateway.cancel_order(order.client_order_id)
        await asyncio.sleep(rng.uniform(0, 0.02))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])))
