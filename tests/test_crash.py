"""SIGKILL at random points: restart rebuilds the journal's state, sends nothing twice,
counts no fill twice, and ends equal to the broker's books."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from livegate.broker.paper import PaperBroker
from livegate.engine.order_book import OrderBook
from livegate.journal.journal import decode_event
from livegate.model import OrderIntent, OrderStatus, TradeReport
from livegate.model.events import Received

from .helpers import INSTRUMENTS, crash_payloads, crash_store, paper_gateway

ROOT = Path(__file__).resolve().parent.parent
D = Decimal
STUCK = (OrderStatus.NEW, OrderStatus.UNKNOWN, OrderStatus.PENDING_CANCEL)


def run_child_and_kill(
    directory: Path, seed: int, rng: random.Random, sim: tuple[int, int, str] | None = None
) -> None:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    extra = [str(part) for part in sim] if sim else []
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.crash_child", str(directory), str(seed), *extra],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    ready = child.stdout.readline()
    assert ready.strip() == "ready", child.stderr.read() if child.stderr else ""
    time.sleep(rng.uniform(0.05, 0.8))
    assert child.poll() is None, "child died before it was killed"
    child.send_signal(signal.SIGKILL)
    child.wait(10)


def journal_by_hand(directory: Path) -> tuple[set[str], dict[str, Decimal]]:
    """What the journal says, read without the order book: intents and distinct fills."""
    intents: set[str] = set()
    filled: dict[str, Decimal] = defaultdict(Decimal)
    counted: set[str] = set()
    for payload in crash_payloads(directory):
        event = decode_event(payload)
        if isinstance(event, OrderIntent):
            intents.add(event.client_order_id)
        elif isinstance(event, Received) and isinstance(event.report, TradeReport):
            trade = event.report
            if trade.dedup_key() not in counted and trade.client_order_id in intents:
                counted.add(trade.dedup_key())
                filled[trade.client_order_id] += trade.quantity  # type: ignore[index]
    return intents, filled


def story(directory: Path, coid: str, broker: PaperBroker, gateway: object) -> str:
    """Everything about one order, for a failure message: a rare race needs its evidence."""
    lines = [f"{coid}: journal events, then the broker's trades"]
    for payload in crash_payloads(directory):
        if coid in str(payload):
            lines.append(f"  {payload[:300]!r}")
    lines += [f"  broker {t}" for t in broker.trades if t.client_order_id == coid]
    anomalies = getattr(gateway, "anomalies", {})
    lines.append(f"  gateway anomalies: {dict(anomalies)}")
    return "\n".join(lines)


@pytest.mark.parametrize(
    ("store", "seed"),
    [("sqlite", 11), ("sqlite", 23), ("sqlite", 37), ("sqlite", 134), ("sqlite", 139),
     ("postgres", 11), ("postgres", 37)],
)  # fmt: skip
def test_sigkill_then_restart(tmp_path: Path, store: str, seed: int) -> None:
    if store == "postgres":
        from tests import pg

        pg.dsn()  # skipped without the test database, except under CI
        (tmp_path / "postgres-account").write_text(pg.new_account())
    rng = random.Random(seed)
    for cycle in range(2):
        run_child_and_kill(tmp_path, seed * 10 + cycle, rng)

    # 1. Replaying the journal rebuilds exactly what the journal says.
    intents, filled = journal_by_hand(tmp_path)
    assert intents, "the child placed no order before it was killed"
    book = OrderBook(INSTRUMENTS)
    for payload in crash_payloads(tmp_path):
        book.apply(decode_event(payload))
    assert set(book.orders) == intents
    assert {c: o.filled_qty for c, o in book.orders.items() if o.filled_qty} == dict(filled)
    assert len({f.trade_id for f in book.fills}) == len(book.fills)

    # 2. Restart: recover against the broker, then compare with the broker's own file.
    journaled_fills = {f.trade_id for f in book.fills if not f.inferred}

    async def restart() -> None:
        gateway, paper = paper_gateway(tmp_path, store=crash_store(tmp_path))
        told: list[str] = []
        gateway.on_trade(lambda f: told.append(f.trade_id))
        await gateway.start()
        # What a strategy is told on start (README, "After a restart"): callbacks for
        # what recovery found, never again for what the journal already held; the
        # whole day is in trades().
        assert not set(told) & journaled_fills
        real = {f.trade_id for f in gateway.trades() if not f.inferred}
        assert real == journaled_fills | {t for t in told if not t.startswith("inferred:")}
        broker: PaperBroker = paper.broker
        # The broker's own book survived the kills whole: every order's filled
        # quantity is the sum of its trades (issue 12: saves were split in two).
        traded: Counter[str] = Counter()
        for trade in broker.trades:
            traded[trade.broker_order_id or ""] += trade.quantity
        for order in broker.orders.values():
            assert order.filled_qty == traded[order.broker_order_id], (
                f"the broker's book is half-saved: {order}"
            )
        assert broker.duplicate_place_attempts == 0, "an order was sent twice"
        broker_coids = [o.client_order_id for o in broker.orders.values()]
        assert len(broker_coids) == len(set(broker_coids))
        assert set(broker_coids) <= intents  # nothing at the broker we did not journal first
        for coid in intents:
            ours = gateway.order(coid)
            theirs = broker.find(coid, None)
            if theirs is None:
                # Never reached the broker: unknown or refused, never believed live.
                assert ours.status in (OrderStatus.UNKNOWN, OrderStatus.REJECTED), ours
                assert ours.filled_qty == 0
                continue
            assert ours.broker_order_id == theirs.broker_order_id
            assert ours.filled_qty == theirs.filled_qty, story(tmp_path, coid, broker, gateway)
            assert ours.status is theirs.status, (coid, ours.status, theirs.status)
        fills = gateway.trades()
        assert len({f.trade_id for f in fills}) == len(fills)
        assert sorted(f.trade_id for f in fills) == sorted(t.trade_id for t in broker.trades)  # type: ignore[type-var]
        assert gateway.cash().balance == broker.ledger.cash
        ours_pos = {p.symbol: p.quantity for p in gateway.positions()}
        theirs_pos = {s: p.quantity for s, p in broker.ledger.positions.items() if p.quantity}
        assert ours_pos == theirs_pos
        await gateway.stop()

    asyncio.run(restart())


SIM_KEY = "lg_sim_crash"


@pytest.mark.parametrize(("store", "seed"), [("sqlite", 7), ("sqlite", 41), ("postgres", 7)])
def test_sigkill_then_restart_on_the_sim_broker(tmp_path: Path, store: str, seed: int) -> None:
    """The same, with the broker a separate sim broker process, itself killed once too:
    its book stays whole, and ours ends equal to it."""
    if store == "postgres":
        from tests import pg

        pg.dsn()  # skipped without the test database, except under CI
        (tmp_path / "postgres-account").write_text(pg.new_account())
    from livegate.drills.sim_process import SimProcess
    from livegate.engine import GatewayConfig

    from .crash_child import sim_gateway

    rng = random.Random(seed)
    sim = SimProcess(tmp_path / "sim", SIM_KEY)
    sim.start()
    try:
        for cycle in range(3):
            run_child_and_kill(
                tmp_path, seed * 10 + cycle, rng, (sim.port, sim.control_port, SIM_KEY)
            )
            if cycle == 1:
                sim.kill()  # the broker dies mid-flow as well, and comes back
                sim.start()

        async def restart() -> tuple[dict[str, tuple[OrderStatus, Decimal]], list[str], Any]:
            gateway = sim_gateway(tmp_path, sim.port, SIM_KEY)
            gateway.config = GatewayConfig(unknown_grace=0.3, resolve_interval=0.1)
            await gateway.start()
            deadline = time.monotonic() + 20
            while any(o.status in STUCK for o in gateway.orders()):
                assert time.monotonic() < deadline, [
                    o for o in gateway.orders() if o.status in STUCK
                ]
                await asyncio.sleep(0.1)
            orders = {o.client_order_id: (o.status, o.filled_qty) for o in gateway.orders()}
            fills = sorted(f.trade_id for f in gateway.trades())
            books = (
                gateway.cash().balance,
                {p.symbol: p.quantity for p in gateway.positions()},
            )
            await gateway.stop()
            return orders, fills, books

        orders, fills, (cash, positions) = asyncio.run(restart())
        assert len(orders) > 20 and fills, "the children barely traded before the kills"
    finally:
        sim.stop()
    broker = PaperBroker(tmp_path / "sim" / "book.sqlite")
    broker.open()
    traded: Counter[str] = Counter()
    for trade in broker.trades:
        traded[trade.broker_order_id or ""] += trade.quantity
    for order in broker.orders.values():
        assert order.filled_qty == traded[order.broker_order_id], f"half-saved: {order}"
        ours = orders.get(order.client_order_id)
        assert ours is not None, f"at the broker, never journaled: {order.client_order_id}"
        assert ours == (order.status, order.filled_qty), (order.client_order_id, ours, order)
    assert fills == sorted(t.trade_id for t in broker.trades)  # type: ignore[type-var]
    assert cash == broker.ledger.cash
    assert positions == {s: p.quantity for s, p in broker.ledger.positions.items() if p.quantity}
    broker.journal.store.close()
