"""A strategy for `livegate serve --strategy`: resting orders on the paper broker, then idle."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from livegate.broker.paper import PaperAdapter
from livegate.engine import Gateway
from livegate.model import OrderRequest


async def rest(gateway: Gateway) -> None:
    if isinstance(gateway.adapter, PaperAdapter):
        gateway.adapter.set_quote("AAPL", Decimal("189.99"), Decimal("190.01"))
    for i in range(12):
        await gateway.submit_order(
            OrderRequest(symbol="AAPL", side="BUY", quantity=1, price=Decimal("170") + i)
        )
    await asyncio.Event().wait()


async def throughout(gateway: Gateway) -> None:
    """Orders all the time, on whichever broker is in use: a market buy and a resting
    limit buy every 50 ms (quotes set on the sim broker, or on the paper one)."""
    import os

    from livegate.sim import control

    control_port = int(os.environ["LIVEGATE_TEST_SIM_CONTROL"])
    while True:
        if isinstance(gateway.adapter, PaperAdapter):
            gateway.adapter.set_quote("AAPL", Decimal("189.99"), Decimal("190.01"))
        else:
            await control("127.0.0.1", control_port, "quote", symbol="AAPL",
                          bid="189.99", ask="190.01")  # fmt: skip
        if gateway.ready:
            await gateway.submit_order(
                OrderRequest(symbol="AAPL", side="BUY", quantity=1, order_type="MARKET")
            )
            await gateway.submit_order(
                OrderRequest(symbol="AAPL", side="BUY", quantity=1, price=Decimal("150.00"))
            )
        await asyncio.sleep(0.05)
