"""`livegate demo --broker fix`: the gateway trading over FIX with QuickFIX's ordermatch.

A local ordermatch is started (from Debian's libquickfix-doc). The gateway
logs on as BUYER; a second FIX session, SELLER, plays the rest of the
market. A scripted strategy sends limit buys around a drifting price, the
seller sends limit sells, some orders rest and some are cancelled, and
some submissions are repeated as a nervous strategy would. At the end,
every fill the gateway counted is checked against the seller's side of
the same executions: both sides must agree to the share.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from livegate.broker.fix import FixAdapter, FixSessionConfig
from livegate.drills.ordermatch import OrderMatch
from livegate.engine import Gateway, GatewayConfig
from livegate.journal import Journal, SQLiteStore
from livegate.model import Instrument, InstrumentRegistry, OrderRequest
from livegate.model.enums import OrderType, Side, TimeInForce
from livegate.model.orders import OrderIntent
from livegate.model.reports import TradeReport

D = Decimal
SYMBOL = "IBM"


@dataclass
class FixDemoResult:
    directory: Path
    seconds: float
    orders: int
    by_status: Counter[str]
    fills: int
    bought: Decimal
    seller_sold: Decimal
    duplicate_submits: int
    cancels: int
    messages_out: int

    @property
    def books_match(self) -> bool:
        return self.bought == self.seller_sold


async def run_fix_demo(
    directory: Path,
    orders: int = 200,
    seed: int = 7,
    progress: Callable[[int], None] | None = None,
) -> FixDemoResult:
    rng = random.Random(seed)
    exchange = OrderMatch(directory / "ordermatch")
    exchange.start()
    try:
        return await _trade(directory, exchange, orders, rng, progress)
    finally:
        exchange.stop()


async def _trade(
    directory: Path,
    exchange: OrderMatch,
    orders: int,
    rng: random.Random,
    progress: Callable[[int], None] | None,
) -> FixDemoResult:
    def session(name: str) -> FixSessionConfig:
        return FixSessionConfig(
            "127.0.0.1", exchange.port, name, exchange.comp_id, directory / f"{name}.sqlite"
        )

    buyer = FixAdapter(session("BUYER"))
    gateway = Gateway(
        buyer,
        Journal(SQLiteStore(directory / "journal.sqlite")),
        InstrumentRegistry([Instrument(SYMBOL, D("0.01"))]),
        GatewayConfig(account="fix-demo"),
    )
    seller = FixAdapter(session("SELLER"))
    seller_fills: list[TradeReport] = []

    async def seller_reports() -> None:
        async for report in seller.reports():
            if isinstance(report, TradeReport):
                seller_fills.append(report)

    await gateway.start()
    await seller.connect()
    reader = asyncio.create_task(seller_reports())
    started = time.perf_counter()
    mid = D("100.00")
    duplicates = cancels = 0
    try:
        for i in range(orders):
            mid = max(D("1.00"), mid + D(rng.randint(-5, 5)) / 100)
            buy = OrderRequest(
                symbol=SYMBOL,
                side="BUY",
                quantity=rng.randint(1, 10) * 10,
                price=mid + D(rng.randint(-10, 10)) / 100,
                client_order_id=f"fd-{i}",
            )
            placed = await gateway.submit_order(buy)
            if rng.random() < 0.05:  # a retry after a timeout must not double the order
                await gateway.submit_order(placed.as_request())
                duplicates += 1
            sell_price = mid + D(rng.randint(-10, 10)) / 100
            await seller.place(
                OrderIntent(
                    f"mm-{i}", "", SYMBOL, Side.SELL, OrderType.LIMIT,
                    D(rng.randint(1, 10) * 10), sell_price, TimeInForce.DAY, 0,
                )
            )  # fmt: skip
            if rng.random() < 0.1:
                resting = gateway.orders(open_only=True)
                if resting:
                    await gateway.cancel_order(rng.choice(resting).client_order_id)
                    cancels += 1
            if progress is not None:
                progress(1)
        await asyncio.sleep(0.5)  # the last executions reach both sides
        for order in gateway.orders(open_only=True):
            await gateway.cancel_order(order.client_order_id)
            cancels += 1
        deadline = time.monotonic() + 10
        while gateway.orders(open_only=True) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        seconds = time.perf_counter() - started
        snapshot = gateway.orders()
        fills = gateway.trades()
    finally:
        await seller.close()
        await reader
        await gateway.stop()
    return FixDemoResult(
        directory=directory,
        seconds=seconds,
        orders=len(snapshot),
        by_status=Counter(o.status.value for o in snapshot),
        fills=len(fills),
        bought=sum((f.quantity for f in fills), D(0)),
        seller_sold=sum((t.quantity for t in seller_fills), D(0)),
        duplicate_submits=duplicates,
        cancels=cancels,
        messages_out=buyer.session.store.next_out - 1,
    )
