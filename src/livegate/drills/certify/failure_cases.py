"""The matrix's harder half: refusals, lost answers, restarts, faults in the report
stream, end-of-day reconciliation and the kill switch."""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from decimal import Decimal

from livegate.drills.certify.harness import Bench, NotApplicable
from livegate.drills.certify.scenarios import WORKING, fill, mixed_flow, request, rest
from livegate.drills.children import spawn
from livegate.model.enums import OrderStatus, TradingState
from livegate.model.events import SubmitUnknown
from livegate.model.instrument import Instrument, InstrumentRegistry
from livegate.model.orders import OrderRequest
from livegate.recon import Reconciler, ReconConfig

S = OrderStatus


# -- rejects --------------------------------------------------------------------------
def refused(kind: str) -> Callable[[Bench], Awaitable[None]]:
    """A broker refusal lands as a REJECTED order, never UNKNOWN, and is not resent."""

    async def run(b: Bench) -> None:
        target = b.build()
        market = target.market
        if market is None:
            raise NotApplicable("the target has no test market")
        base = target.instruments.get(market.symbol)
        registry = InstrumentRegistry(list(target.instruments))
        if kind == "off-tick":
            if not target.checks_tick:
                raise NotApplicable("the broker does not check the tick size")
            registry.add(Instrument(market.symbol, base.tick_size / 10, exchange=base.exchange,
                                    currency=base.currency))  # fmt: skip
            order = limit_buy(market.symbol, 1, market.mid - 20 * market.tick
                                    + base.tick_size / 10)  # fmt: skip
        elif kind == "unknown-symbol":
            if not target.checks_symbol:
                raise NotApplicable("the broker does not check symbols")
            registry.add(Instrument("CERTZZZ", base.tick_size, currency=base.currency))
            order = limit_buy("CERTZZZ", 1, market.mid - 20 * market.tick)
        else:
            if not target.checks_funds:
                raise NotApplicable("the broker does not check funds")
            order = limit_buy(market.symbol, 10_000_000, market.mid - 20 * market.tick)
        b.instruments = registry
        g = await b.start()
        placed = await g.submit_order(order)
        coid = placed.client_order_id
        b.note(coid)
        await b.until(lambda: g.order(coid).status not in (S.NEW, S.UNKNOWN), 5)
        final = g.order(coid)
        b.check(f"{kind}: REJECTED, with the broker's reason", final.status is S.REJECTED,
                f"{final.status} {final.reject_reason} {final.reject_text}")  # fmt: skip
        await b.verdict()

    return run


def limit_buy(symbol: str, qty: int, price: Decimal) -> OrderRequest:
    return OrderRequest(symbol=symbol, side="BUY", quantity=qty, price=price)


async def throttling(b: Bench) -> None:
    g = await b.start()
    if not await b.market.throttle(True):
        raise NotApplicable("the test market cannot make the broker throttle")
    try:
        orders = [await g.submit_order(request(b, "BUY", 1, -20)) for _ in range(5)]
    finally:
        await b.market.throttle(False)
    b.note(*(o.client_order_id for o in orders))
    await b.until(lambda: all(g.order(o.client_order_id).status is not S.NEW for o in orders), 10)
    finals = [g.order(o.client_order_id) for o in orders]
    bad = [f"{o.client_order_id} {o.status}" for o in finals
           if o.status not in (*WORKING, S.REJECTED)]  # fmt: skip
    b.check("throttled orders end working or refused THROTTLED, none unknown", not bad, str(bad))
    await b.verdict()


# -- ambiguous outcomes ------------------------------------------------------------------
async def lost_place_answer(b: Bench) -> None:
    g = await b.start()
    assert b.faulty is not None
    b.faulty.faults.lose_place_answers = 1
    order = await g.submit_order(request(b, "BUY", 1, -20))
    coid = order.client_order_id
    b.note(coid)
    unknown = [e for _, e in g.journal.replay()
               if isinstance(e, SubmitUnknown) and e.client_order_id == coid]  # fmt: skip
    b.check("the order went UNKNOWN, not failed", bool(unknown), str(order.status))
    resolved = await b.until(lambda: g.order(coid).status in WORKING, 15)
    b.check("then resolved by asking the broker", resolved, str(g.order(coid).status))
    b.check("never resent under a new id", sum(b.faulty.placed.values()) == 1,
            str(dict(b.faulty.placed)))  # fmt: skip
    await b.verdict()
    b.note(b.seqs(coid))


async def lost_cancel_answer(b: Bench) -> None:
    g = await b.start()
    assert b.faulty is not None
    order = await rest(b)
    b.faulty.faults.lose_cancel_answers = 1
    await g.cancel_order(order.client_order_id)
    done = await b.until(lambda: g.order(order.client_order_id).status is S.CANCELLED, 15)
    b.check("the cancel's outcome is learnt from the broker", done,
            str(g.order(order.client_order_id).status))  # fmt: skip
    await b.verdict()
    b.note(b.seqs(order.client_order_id))


# -- recovery ------------------------------------------------------------------------------
async def restart_open_orders(b: Bench) -> None:
    await b.start()
    first, second = await rest(b), await rest(b, "SELL")
    g = await b.restart()
    ids = (first.client_order_id, second.client_order_id)
    b.check("working orders are working after the restart",
            all(g.order(c).status in WORKING for c in ids),
            str([g.order(c).status for c in ids]))  # fmt: skip
    for coid in ids:
        await g.cancel_order(coid)
    done = await b.until(lambda: all(g.order(c).status is S.CANCELLED for c in ids), 10)
    b.check("and can be cancelled by the new session", done,
            str([f"{g.order(c).status} {g.order(c).reject_text}" for c in ids]))  # fmt: skip
    await b.verdict()


async def restart_with_fills(b: Bench) -> None:
    await b.start()
    order = await fill(b)
    g = await b.restart()
    fills = [f for f in g.trades() if f.client_order_id == order.client_order_id]
    b.check("today's fills are counted once after the restart",
            sum(f.quantity for f in fills) == order.quantity,
            f"{[(f.trade_id, f.quantity) for f in fills]}")  # fmt: skip
    await b.verdict()


async def missed_while_down(b: Bench) -> None:
    g = await b.start()
    assert b.faulty is not None
    order = await rest(b, "BUY", 2)
    b.faulty.faults.refuse_connects = 3
    b.faulty.drop()
    await b.until(lambda: not g.ready, 3)
    m = b.market
    assert order.price is not None
    await m.quote(order.price - m.tick * 2, order.price)  # the working order fills now
    back = await b.until(lambda: g.ready, 15)
    filled = await b.until(lambda: g.order(order.client_order_id).status is S.FILLED, 10)
    b.check("reconnected", back, f"reconnects {g.reconnects}")
    b.check(
        "the fill made while down is counted once",
        filled,
        f"{g.order(order.client_order_id).status} {g.order(order.client_order_id).filled_qty}",
    )
    await b.verdict()


# -- reconciliation and the kill switch -----------------------------------------------------
async def eod_clean(b: Bench) -> None:
    g = await b.start()
    await mixed_flow(b)
    await b.verdict()
    run = await Reconciler(g, ReconConfig(settle_window=0)).run(eod=True)
    b.check(
        "end-of-day reconciliation finds nothing",
        not run.findings,
        "; ".join(f"{f.kind.value} {f.subject}: {f.detail}" for f in run.findings[:5]),
    )


async def safe_stop(b: Bench) -> None:
    g = await b.start()
    orders = [await rest(b) for _ in range(5)]
    report = await g.safe_stop("certify", "kill switch scenario", wait=10)
    b.check("HALTED, then every open order cancelled",
            g.trading_state is TradingState.HALTED and report.complete
            and all(g.order(o.client_order_id).status is S.CANCELLED for o in orders),
            f"{report.remaining} {report.refused}")  # fmt: skip
    late = await g.submit_order(request(b, "BUY", 1, -20))
    b.check("a new order is refused", late.status is S.REJECTED, str(late.reject_reason))
    await b.verdict()


# -- faults in the report stream -------------------------------------------------------------
def stream_fault(kind: str) -> Callable[[Bench], Awaitable[None]]:
    async def run(b: Bench) -> None:
        await b.start()
        assert b.faulty is not None
        faults = b.faulty.faults
        if kind == "duplicated":
            faults.duplicate = True
        elif kind == "reordered":
            faults.reorder = True
        else:
            faults.delay = 0.05
        await mixed_flow(b)
        await b.verdict(settle=15)

    return run


async def split_fills(b: Bench) -> None:
    """One order filled in five parts by the broker, every report of them duplicated."""
    g = await b.start()
    assert b.faulty is not None
    b.faulty.faults.duplicate = True
    m = b.market
    await m.quote(m.mid - m.tick, m.mid + m.tick, Decimal(1))
    order = await g.submit_order(request(b, "BUY", 5, 1))
    coid = order.client_order_id
    b.note(coid)
    for _ in range(4):
        await b.until(lambda: g.order(coid).filled_qty >= 1, 5)
        await m.quote(m.mid - m.tick, m.mid + m.tick, Decimal(1))
    done = await b.until(lambda: g.order(coid).status is S.FILLED, 10)
    fills = [f for f in g.trades() if f.client_order_id == coid]
    b.check("filled in parts, each part counted once", done and len(fills) >= 2
            and sum(f.quantity for f in fills) == 5, f"{[f.quantity for f in fills]}")  # fmt: skip
    await b.verdict()


async def sigkill(b: Bench) -> None:
    """The gateway process killed mid-stream three times, restarted on the same journal."""
    if not b.spec:
        raise NotApplicable("the factory was given as an object: a child process cannot build it")
    target = b.build()  # the broker (or its handle) lives in this process
    if target.market is None:
        raise NotApplicable("the target has no test market to trade in")
    if not target.reachable_from_another_process:
        raise NotApplicable("its broker lives in this process: a killed process takes it along")
    rng = random.Random(5)
    for cycle in range(3):
        child = spawn(
            [sys.executable, "-m", "livegate.drills.certify.child", b.spec, str(b.directory),
             str(cycle)],
            stdout=subprocess.PIPE, stderr=(b.directory / "child.log").open("ab"),
        )  # fmt: skip
        assert child.stdout is not None
        ready = await asyncio.to_thread(child.stdout.readline)
        if ready.strip() != b"ready":
            child.kill()
            child.wait()
            b.check(f"the gateway process starts (cycle {cycle + 1})", False,
                    (b.directory / "child.log").read_text()[-500:])  # fmt: skip
            return
        await asyncio.sleep(rng.uniform(0.3, 0.8))
        child.send_signal(signal.SIGKILL)
        child.wait()
    g = await b.start()
    b.check("restarted after three SIGKILLs", g.ready)
    b.note(f"{len(g.book.orders)} orders across the killed processes")
    await b.verdict(settle=20)
