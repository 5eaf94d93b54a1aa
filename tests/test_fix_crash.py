"""SIGKILL the gateway during a stream of fills from QuickFIX's ordermatch (issue 12).

Independent runs lost 9 fills in 36 kills: the FIX session had stored an
ExecutionReport's sequence number before the journal held its fill, and the
resend after the restart came as a possible duplicate, which the session
dropped. Here the gateway (BUYER) is killed 30 times, at random moments and
right after bursts of fills, while a second session (SELLER) keeps selling
into its orders. Every execution the SELLER saw must be counted exactly
once on our side, and no order may have been sent twice.
"""

from __future__ import annotations

import asyncio
import random
import signal
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from livegate.drills.ordermatch import OrderMatch
from livegate.model.reports import TradeReport

from .fix_crash_child import buyer
from .test_fix import Seller, exchange, until

__all__ = ["exchange"]  # the fixture, shared with test_fix.py
KILLS = 30
ROOT = Path(__file__).resolve().parent.parent


def start_child(directory: Path, port: int, run: int) -> subprocess.Popen[bytes]:
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.fix_crash_child", str(directory), str(port), str(run)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=(directory / f"child-{run}.log").open("wb"),
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    assert line.strip() == b"ready", (directory / f"child-{run}.log").read_text()[-3000:]
    return child


def test_sigkill_during_a_stream_of_fills_loses_and_doubles_nothing(
    exchange: OrderMatch, tmp_path: Path
) -> None:
    rng = random.Random(12)
    data = tmp_path / "buyer"
    data.mkdir()

    async def run() -> None:
        async with Seller(exchange, tmp_path) as seller:
            selling = True

            async def sell_stream() -> None:
                n = 0
                while selling:
                    n += 1
                    burst = rng.random() < 0.2  # now and then, many fills at once
                    await seller.sell(f"s{n}", 60 if burst else 10, "10.00")
                    await asyncio.sleep(0.01 if burst else 0.03)

            stream = asyncio.create_task(sell_stream())
            for run_no in range(KILLS):
                child = await asyncio.to_thread(start_child, data, exchange.port, run_no)
                await asyncio.sleep(rng.uniform(0.2, 1.2))
                child.send_signal(signal.SIGKILL)
                await asyncio.to_thread(child.wait)
            selling = False
            await stream
            sold = await _settled(seller)

            # The last start: recover everything the exchange did meanwhile.
            gateway = buyer(data, exchange.port)
            await gateway.start()

            def bought() -> Decimal:
                return sum((f.quantity for f in gateway.trades() if not f.inferred), Decimal(0))

            try:
                await until(lambda: bought() >= sold, timeout=30)
                await asyncio.sleep(1.0)  # anything more would be double counting
                fills = [f for f in gateway.trades() if not f.inferred]
                assert bought() == sold, (bought(), sold)
                assert len({f.trade_id for f in fills}) == len(fills)
            finally:
                await gateway.stop()

    asyncio.run(run())
    with sqlite3.connect(data / "buyer.sqlite") as db:
        raws = [raw for (raw,) in db.execute("SELECT raw FROM sent WHERE msg_type = 'D'")]
    ids = [raw.split(b"\x0111=")[1].split(b"\x01")[0] for raw in raws]
    assert len(ids) == len(set(ids)), "an order was sent twice"


async def _settled(seller: Seller) -> Decimal:
    """What the SELLER saw executed, once the exchange has stopped matching."""
    previous = -1
    while True:
        await asyncio.sleep(0.5)
        trades = [r for r in seller.reports if isinstance(r, TradeReport)]
        if len(trades) == previous:
            return sum((t.quantity for t in trades), Decimal(0))
        previous = len(trades)
