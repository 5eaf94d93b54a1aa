"""Hypothesis strategies for true broker histories and their messy deliveries."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from hypothesis import strategies as st

from livegate.model import BrokerReport, OrderReport, OrderStatus, Side, TradeReport
from livegate.model.enums import OrderType, TimeInForce
from livegate.model.orders import OrderIntent

D = Decimal
S = OrderStatus


@dataclass(frozen=True)
class History:
    coid: str
    quantity: Decimal
    reports: tuple[BrokerReport, ...]  # in the order the broker produced them
    fills: tuple[Decimal, ...]
    final: OrderStatus


def intent_of(h: History, ts_ns: int = 0) -> OrderIntent:
    """The journaled intent of a history's order (a limit buy of its quantity)."""
    return OrderIntent(
        h.coid, "a", "AAPL", Side.BUY, OrderType.LIMIT, h.quantity, D("20.00"), TimeInForce.DAY,
        ts_ns,
    )  # fmt: skip


@st.composite
def history(draw: st.DrawFn, coid: str) -> History:
    lots = draw(st.integers(1, 8))
    quantity = D(lots * 10)
    boid = "B-" + coid
    sizes: list[Decimal] = []
    left = lots
    while left and draw(st.booleans()):
        take = draw(st.integers(1, left))
        sizes.append(D(take * 10))
        left -= take
    reports: list[BrokerReport] = [OrderReport(S.SUBMITTED, coid, boid, cum_qty=D(0))]
    cum = D(0)
    for n, size in enumerate(sizes):
        cum += size
        strip_client_id = draw(st.booleans())
        reports.append(
            TradeReport(
                size,
                D("10.00") + n,
                None if strip_client_id else coid,
                boid,
                f"{coid}-T{n}",
                "AAPL",
                Side.BUY,
            )
        )
        status = S.FILLED if cum == quantity else S.PARTIALLY_FILLED
        reports.append(OrderReport(status, coid, boid, cum_qty=cum))
    final = S.FILLED if cum == quantity else S.PARTIALLY_FILLED if cum else S.SUBMITTED
    if cum < quantity:
        end = draw(st.sampled_from([None, S.CANCELLED, S.EXPIRED]))
        if end is not None:
            reports.append(OrderReport(end, coid, boid, cum_qty=cum))
            final = end
    return History(coid, quantity, tuple(reports), tuple(sizes), final)


@st.composite
def histories(draw: st.DrawFn, max_orders: int = 3) -> list[History]:
    count = draw(st.integers(1, max_orders))
    return [draw(history(f"o{i}")) for i in range(count)]


@st.composite
def messy_delivery(draw: st.DrawFn, reports: list[BrokerReport]) -> list[BrokerReport]:
    """Any permutation, with any report delivered up to three times."""
    delivered = list(reports)
    for report in reports:
        delivered.extend([report] * draw(st.integers(0, 2)))
    return draw(st.permutations(delivered))
