"""No order that breaches a configured limit ever reaches the adapter."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from decimal import Decimal

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from livegate.model import OrderRequest
from livegate.risk import RiskLimits

from .helpers import scripted_gateway

D = Decimal
REFERENCE = D("10.00")

orders = st.lists(
    st.tuples(
        st.sampled_from(["AAPL", "MSFT"]),
        st.sampled_from(["BUY", "SELL"]),
        st.integers(1, 400),
        st.one_of(st.none(), st.integers(900, 1100).map(lambda c: D(c) / 100)),
    ),
    min_size=1,
    max_size=40,
)
limits = st.builds(
    RiskLimits,
    max_order_qty=st.one_of(st.none(), st.integers(1, 400).map(D)),
    max_order_notional=st.one_of(st.none(), st.integers(10, 4000).map(D)),
    max_position=st.one_of(st.none(), st.integers(1, 2000).map(D)),
    max_open_orders=st.one_of(st.none(), st.integers(1, 30)),
    max_gross_exposure=st.one_of(st.none(), st.integers(100, 40_000).map(D)),
    price_band_pct=st.one_of(st.none(), st.sampled_from([D("0.01"), D("0.05")])),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flow=orders, configured=limits)
def test_nothing_that_breaches_a_limit_is_sent(
    flow: list[tuple[str, str, int, Decimal | None]], configured: RiskLimits
) -> None:
    async def run() -> list[tuple[str, str, Decimal, Decimal | None]]:
        gateway, broker = scripted_gateway()
        gateway.risk.limits = configured
        sent: list[tuple[str, str, Decimal, Decimal | None]] = []
        real_place = broker.place

        async def recording_place(intent):  # type: ignore[no-untyped-def]
            sent.append((intent.symbol, intent.side.value, intent.quantity, intent.price))
            return await real_place(intent)

        broker.place = recording_place  # type: ignore[method-assign]
        await gateway.start()
        for symbol in ("AAPL", "MSFT"):
            gateway.set_reference_price(symbol, REFERENCE)
        for symbol, side, qty, price in flow:
            order_type = "LIMIT" if price is not None else "MARKET"
            await gateway.submit_order(
                OrderRequest(
                    symbol=symbol, side=side, quantity=qty, order_type=order_type, price=price
                )
            )
        await gateway.stop()
        return sent

    sent = asyncio.run(run())
    event(f"sent {'all' if len(sent) == len(flow) else 'none' if not sent else 'some'}")
    # The broker never fills, so every order sent stays open: check the limits
    # independently, from what reached the adapter alone.
    lim = configured
    open_by_side: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    gross_before = D(0)  # what was already working, at the reference price
    for count, (symbol, side, qty, price) in enumerate(sent, 1):
        value = qty * (price if price is not None else REFERENCE)
        open_by_side[symbol, side] += qty
        if lim.max_order_qty is not None:
            assert qty <= lim.max_order_qty
        if lim.max_order_notional is not None:
            assert value <= lim.max_order_notional
        if lim.max_open_orders is not None:
            assert count <= lim.max_open_orders
        if lim.max_position is not None:
            assert open_by_side[symbol, side] <= lim.max_position
        if lim.max_gross_exposure is not None:
            assert gross_before + value <= lim.max_gross_exposure
        gross_before += qty * REFERENCE
        if lim.price_band_pct is not None and price is not None:
            assert abs(price - REFERENCE) <= REFERENCE * lim.price_band_pct
