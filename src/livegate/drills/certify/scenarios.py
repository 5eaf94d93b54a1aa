"""The certification matrix: each scenario, what it proves, and when it does not apply.

Modelled on exchange certification scripts (session cases, then business
cases) and NautilusTrader's execution test matrix. Each scenario drives a
real Gateway against the adapter, then checks its own criterion and the
common verdicts (harness.py). A scenario whose precondition the adapter
or its test market does not meet raises NotApplicable with the reason: it
is reported as such, never counted as passed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal

from livegate.broker.errors import BrokerAuthError, BrokerRejected
from livegate.drills.certify.harness import Bench, NotApplicable
from livegate.model.enums import OrderStatus
from livegate.model.orders import OrderRequest, OrderSnapshot

S = OrderStatus
WORKING = (S.SUBMITTED, S.PARTIALLY_FILLED)


@dataclass(frozen=True)
class Scenario:
    id: str
    group: str
    criterion: str
    run: Callable[[Bench], Awaitable[None]]
    critical: bool = True


# -- helpers ------------------------------------------------------------------------
def request(b: Bench, side: str, qty: int, ticks: int | None, **extra: object) -> OrderRequest:
    """A limit order `ticks` from the mid (None: a market order) in the market's symbol."""
    market = b.market
    if ticks is None:
        if "MARKET" not in b.target.order_types:  # type: ignore[union-attr]
            raise NotApplicable("the adapter takes no market orders")
        return OrderRequest(symbol=market.symbol, side=side, quantity=qty, order_type="MARKET",
                            **extra)  # type: ignore[arg-type]  # fmt: skip
    price = market.mid + market.tick * ticks
    return OrderRequest(symbol=market.symbol, side=side, quantity=qty, price=price,
                        **extra)  # type: ignore[arg-type]  # fmt: skip


async def quote(b: Bench, size: Decimal | None = None) -> None:
    m = b.market
    await m.quote(m.mid - m.tick, m.mid + m.tick, size)


async def rest(b: Bench, side: str = "BUY", qty: int = 1) -> OrderSnapshot:
    """A limit order far from the market: it works and does not fill."""
    g = b.gateway
    assert g is not None
    order = await g.submit_order(request(b, side, qty, -20 if side == "BUY" else 20))
    b.note(order.client_order_id)
    await b.until(lambda: g.order(order.client_order_id).status is not S.NEW, 5)
    return g.order(order.client_order_id)


async def fill(b: Bench, qty: int = 2) -> OrderSnapshot:
    """An order that fills at once: a market order, or a limit at the ask."""
    g = b.gateway
    assert g is not None
    await quote(b)
    kind = None if "MARKET" in b.target.order_types else 1  # type: ignore[union-attr]
    order = await g.submit_order(request(b, "BUY", qty, kind))
    b.note(order.client_order_id)
    await b.until(lambda: g.order(order.client_order_id).status is S.FILLED, 5)
    return g.order(order.client_order_id)


async def mixed_flow(b: Bench) -> None:
    """A bit of everything: a fill, a working order, a cancelled one."""
    g = b.gateway
    assert g is not None
    with contextlib.suppress(NotApplicable):  # a market that cannot be moved fills by itself
        await fill(b)
    await rest(b, "BUY", 2)
    cancelled = await rest(b, "SELL")
    await g.cancel_order(cancelled.client_order_id)


# -- session -------------------------------------------------------------------------
async def connect(b: Bench) -> None:
    g = await b.start()
    failed = [h.name for h in g.health if not h.ok]
    b.check("connected, start-up checks passed", g.ready and not failed, ", ".join(failed))
    await b.verdict()


async def bad_key(b: Bench) -> None:
    target = b.build(bad_credentials=True)
    from livegate.drills.certify.faulty import FaultyAdapter
    from livegate.engine import Gateway
    from livegate.journal import Journal, SQLiteStore

    faulty = FaultyAdapter(target.adapter)
    gateway = Gateway(faulty, Journal(SQLiteStore(b.directory / "refused.sqlite")),
                      target.instruments)  # fmt: skip
    try:
        await gateway.start()
    except BrokerAuthError as exc:
        b.check("a refused key is an authentication error", True, str(exc))
    except Exception as exc:
        b.check("a refused key is an authentication error", False,
                f"{type(exc).__name__}: {exc} (raise BrokerAuthError)")  # fmt: skip
    else:
        await gateway.stop()
        b.check("a refused key is an authentication error", False, "the session opened")
    b.check("nothing sent", not faulty.asked, str(dict(faulty.asked)))


async def heartbeat(b: Bench) -> None:
    g = await b.start()
    await b.until(lambda: g.heartbeat_rtt is not None, 3)
    b.check("heartbeats answer", g.heartbeat_rtt is not None, f"rtt {g.heartbeat_rtt}")
    skew = g.clock_skew
    b.check("clock skew within the limit (or no broker clock)",
            skew is None or abs(skew) <= g.config.max_clock_skew, f"skew {skew}")  # fmt: skip


async def reconnect(b: Bench) -> None:
    g = await b.start()
    before = await rest(b)
    assert b.faulty is not None
    b.faulty.drop()
    await b.until(lambda: not g.ready, 3)
    back = await b.until(lambda: g.ready and g.reconnects >= 1, 10)
    b.check("reconnected and recovered", back, f"reconnects {g.reconnects}")
    b.check("the working order survived", g.order(before.client_order_id).status in WORKING,
            str(g.order(before.client_order_id).status))  # fmt: skip
    after = await rest(b)
    b.check("orders go out again", after.status in WORKING, str(after.status))
    await b.verdict()


# -- orders --------------------------------------------------------------------------
def working(side: str) -> Callable[[Bench], Awaitable[None]]:
    async def run(b: Bench) -> None:
        await b.start()
        order = await rest(b, side)
        b.check(f"a limit {side.lower()} works, with the broker's id",
                order.status in WORKING and bool(order.broker_order_id),
                f"{order.status} {order.broker_order_id}")  # fmt: skip
        await b.verdict()

    return run


async def market(b: Bench) -> None:
    await b.start()
    if "MARKET" not in b.target.order_types:  # type: ignore[union-attr]
        raise NotApplicable("the adapter takes no market orders")
    order = await fill(b)
    fills = [f for f in b.gateway.trades() if f.client_order_id == order.client_order_id]  # type: ignore[union-attr]
    b.check("a market order fills", order.status is S.FILLED, str(order.status))
    b.check("its fills add up to it", sum(f.quantity for f in fills) == order.quantity,
            f"{[f.trade_id for f in fills]}")  # fmt: skip
    await b.verdict()


def time_in_force(tif: str) -> Callable[[Bench], Awaitable[None]]:
    async def run(b: Bench) -> None:
        g = await b.start()
        order = await g.submit_order(request(b, "BUY", 1, -20, time_in_force=tif))
        b.note(order.client_order_id)
        expected = (S.CANCELLED, S.EXPIRED) if tif == "IOC" else WORKING
        await b.until(lambda: g.order(order.client_order_id).status in expected, 5)
        status = g.order(order.client_order_id).status
        b.check(f"{tif} is taken and behaves as {tif}", status in expected, str(status))
        await b.verdict()

    return run


async def partial_then_full(b: Bench) -> None:
    g = await b.start()
    await quote(b, Decimal(3))
    order = await g.submit_order(request(b, "BUY", 6, 1))
    coid = order.client_order_id
    b.note(coid)
    partial = await b.until(lambda: g.order(coid).filled_qty == 3, 5)
    await quote(b, Decimal(1))  # a second, smaller part: the total must still only grow
    partial = partial and await b.until(lambda: g.order(coid).filled_qty == 4, 5)
    b.check("partly filled, twice", partial and g.order(coid).status is S.PARTIALLY_FILLED,
            f"{g.order(coid).status} {g.order(coid).filled_qty}")  # fmt: skip
    await quote(b, Decimal(10))
    full = await b.until(lambda: g.order(coid).status is S.FILLED, 5)
    fills = [f for f in g.trades() if f.client_order_id == coid]
    b.check("then fully filled, in three fills", full and len(fills) >= 3,
            f"{g.order(coid).status}, fills {[f.quantity for f in fills]}")  # fmt: skip
    await b.verdict()


async def cancel_working(b: Bench) -> None:
    g = await b.start()
    order = await rest(b)
    await g.cancel_order(order.client_order_id)
    done = await b.until(lambda: g.order(order.client_order_id).status is S.CANCELLED, 5)
    b.check("cancelled, confirmed by the broker", done, str(g.order(order.client_order_id).status))
    await b.verdict()


async def cancel_finished(b: Bench) -> None:
    g = await b.start()
    assert b.faulty is not None
    finished: list[OrderSnapshot] = []
    with contextlib.suppress(NotApplicable):  # no market: the cancelled order alone
        finished.append(await fill(b))
    cancelled = await rest(b)
    await g.cancel_order(cancelled.client_order_id)
    await b.until(lambda: g.order(cancelled.client_order_id).status is S.CANCELLED, 5)
    finished.append(g.order(cancelled.client_order_id))
    sent = sum(b.faulty.cancelled.values())
    for order in finished:
        again = await g.cancel_order(order.client_order_id)
        b.check(f"cancelling a {order.status.value} order returns it as it is",
                again.status is order.status, str(again.status))  # fmt: skip
    b.check("and sends nothing", sum(b.faulty.cancelled.values()) == sent)
    for order in finished:  # as a retried cancel whose first answer was lost would arrive
        try:
            await b.faulty.inner.cancel(order.client_order_id, order.broker_order_id)
            outcome = "accepted quietly"
        except BrokerRejected as exc:
            outcome = f"refused: {exc}"
        except Exception as exc:
            b.check(f"the adapter answers a cancel of a {order.status.value} order",
                    False, f"{type(exc).__name__}: {exc} (raise BrokerRejected)")  # fmt: skip
            continue
        b.check(f"the adapter answers a cancel of a {order.status.value} order", True, outcome)
    await asyncio.sleep(0.3)
    changed = [o.client_order_id for o in finished if g.order(o.client_order_id).status
               is not o.status]  # fmt: skip
    b.check("and no order changed", not changed, ", ".join(changed))
    await b.verdict()


async def duplicate_submit(b: Bench) -> None:
    g = await b.start()
    assert b.faulty is not None
    same = request(b, "BUY", 1, -20, client_order_id="CERT-DUP-1")
    first, second = await asyncio.gather(g.submit_order(same), g.submit_order(same))
    b.note("CERT-DUP-1")
    b.check("both submits return the one order",
            first.client_order_id == second.client_order_id == "CERT-DUP-1")  # fmt: skip
    b.check("sent once", b.faulty.asked["CERT-DUP-1"] == 1, f"asked {b.faulty.asked['CERT-DUP-1']}")
    await b.verdict()
