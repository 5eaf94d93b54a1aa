"""`livegate demo`: a scripted strategy trading a simulated session on the paper broker.

It exercises the whole order path (market and limit orders, partial fills
when displayed size is short, resting orders, cancels, duplicate submits)
so a newcomer sees in a few seconds what the gateway does and what it costs.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from livegate.broker.paper import PaperAdapter, PaperConfig
from livegate.engine import Gateway, GatewayConfig
from livegate.journal import Journal, SQLiteStore
from livegate.model import OrderRequest, OrderSnapshot, OrderStatus
from livegate.model.samples import DEMO_START_PRICES, demo_instruments

D = Decimal

DEMO_INSTRUMENTS = demo_instruments()
START_PRICES = DEMO_START_PRICES


@dataclass
class DemoResult:
    directory: Path
    seconds: float
    orders: list[OrderSnapshot]
    fills: int
    duplicate_submits: int
    cancels: int
    anomalies: Counter[str]
    journal_events: int
    journal_batches: int
    journal_bytes: int
    positions: list[tuple[str, Decimal, Decimal, Decimal]]
    cash: Decimal
    fees: Decimal
    callbacks: Counter[str] = field(default_factory=Counter)

    @property
    def by_status(self) -> Counter[str]:
        return Counter(o.status.value for o in self.orders)


async def run_demo(
    directory: Path,
    orders: int = 5_000,
    seed: int = 7,
    progress: Callable[[int], None] | None = None,
) -> DemoResult:
    paper = PaperAdapter(directory / "paper.sqlite", PaperConfig(initial_cash=D(10_000_000)))
    journal = Journal(SQLiteStore(directory / "journal.sqlite"))
    gateway = Gateway(paper, journal, DEMO_INSTRUMENTS, GatewayConfig(account="demo"))
    callbacks: Counter[str] = Counter()
    gateway.on_order(lambda _: callbacks.update(("on_order",)))
    gateway.on_trade(lambda _: callbacks.update(("on_trade",)))
    gateway.on_execution_report(lambda _: callbacks.update(("on_execution_report",)))
    await gateway.start()
    started = time.perf_counter()
    try:
        duplicates, cancels = await trade_demo(gateway, paper, orders, seed, progress)
        seconds = time.perf_counter() - started
    finally:
        stats = journal.stats
        store = journal.store
        result_orders = gateway.orders()
        fills = len(gateway.trades())
        positions = [
            (p.symbol, p.quantity, p.avg_price, p.realized_pnl) for p in gateway.positions()
        ]
        cash = gateway.cash()
        anomalies = Counter(gateway.anomalies)
        await gateway.stop()
    size = store.size_bytes() if isinstance(store, SQLiteStore) else 0
    return DemoResult(
        directory=directory,
        seconds=seconds,
        orders=result_orders,
        fills=fills,
        duplicate_submits=duplicates,
        cancels=cancels,
        anomalies=anomalies,
        journal_events=stats.events,
        journal_batches=stats.batches,
        journal_bytes=size,
        positions=positions,
        cash=cash.balance,
        fees=cash.fees_paid,
        callbacks=callbacks,
    )


STATUS_ORDER = [s.value for s in OrderStatus]


async def trade_demo(
    gateway: Gateway,
    paper: PaperAdapter | None,
    orders: int,
    seed: int = 7,
    progress: Callable[[int], None] | None = None,
) -> tuple[int, int]:
    """The scripted strategy: returns (duplicate submits, cancels) once every order went out.

    On the paper broker it moves the quotes itself; on another broker (the sim)
    it trades on whatever market that broker quotes.
    """
    rng = random.Random(seed)
    mids = dict(START_PRICES)
    symbols = list(mids)
    duplicates = cancels = sent = 0

    def requote() -> None:
        if paper is None:
            return
        for symbol in symbols:
            step = D(rng.randint(-8, 8)) / 100
            mids[symbol] = max(D("1.00"), mids[symbol] + step)
            spread = D(rng.randint(1, 3)) / 100
            paper.set_quote(
                symbol,
                mids[symbol] - spread,
                mids[symbol] + spread,
                D(rng.randint(1, 20) * 100),
                D(rng.randint(1, 20) * 100),
            )

    def new_order() -> OrderRequest:
        symbol = rng.choice(symbols)
        side = rng.choice(("BUY", "SELL"))
        qty = rng.randint(1, 15) * 100
        if rng.random() < 0.35:
            return OrderRequest(symbol=symbol, side=side, quantity=qty, order_type="MARKET")
        offset = D(rng.randint(-5, 5)) / 100
        return OrderRequest(symbol=symbol, side=side, quantity=qty, price=mids[symbol] + offset)

    while sent < orders:
        requote()
        batch = [new_order() for _ in range(min(50, orders - sent))]
        placed = await asyncio.gather(*(gateway.submit_order(r) for r in batch))
        sent += len(batch)
        # A strategy that retries after a timeout must not double its order.
        for order in rng.sample(placed, k=min(3, len(placed))):
            if gateway.order(order.client_order_id).status.is_open:
                await gateway.submit_order(order.as_request())
                duplicates += 1
        resting = gateway.orders(open_only=True)
        to_cancel = [o for o in resting if rng.random() < 0.1]
        await asyncio.gather(*(gateway.cancel_order(o.client_order_id) for o in to_cancel))
        cancels += len(to_cancel)
        if progress is not None:
            progress(len(batch))
    await gateway.journal.drain()
    await asyncio.sleep(0)
    return duplicates, cancels
