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
