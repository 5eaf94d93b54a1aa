"""The adapter guide's worked example runs through the real gateway."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from decimal import Decimal
from pathlib import Path
from types import ModuleType

import pytest

from livegate.broker.errors import BrokerAuthError
from livegate.engine import Gateway
from livegate.journal import Journal, SQLiteStore
from livegate.model import OrderRequest, OrderStatus

from .helpers import INSTRUMENTS

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "vendor_sdk_adapter.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("vendor_sdk_adapter", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_vendor_adapter_trades_cancels_and_refuses(tmp_path: Path) -> None:
    example = load_example()

    async def run() -> None:
        adapter = example.VendorSDKAdapter("demo-key")
        gateway = Gateway(adapter, Journal(SQLiteStore(tmp_path / "j.sqlite")), INSTRUMENTS)
        async with gateway:
            order = await gateway.submit_order(
                OrderRequest(symbol="AAPL", side="BUY", quantity=100, price="190.00")
            )
            assert order.broker_order_id == "1000"
            for _ in range(100):
                await asyncio.sleep(0.01)
                if gateway.order(order.client_order_id).filled_qty:
                    break
            assert gateway.order(order.client_order_id).filled_qty == Decimal(50)
            cancelled = await gateway.cancel_order(order.client_order_id)
            assert cancelled.status in (OrderStatus.PENDING_CANCEL, OrderStatus.CANCELLED)
            await asyncio.sleep(0.05)
            assert gateway.order(order.client_order_id).status is OrderStatus.CANCELLED
            too_big = await gateway.submit_order(
                OrderRequest(symbol="AAPL", side="BUY", quantity=20_000, price="190.00")
            )
            assert too_big.status is OrderStatus.REJECTED and "E1002" in too_big.reject_text
            assert [f.trade_id for f in gateway.trades()] == ["X1"]

    asyncio.run(run())


def test_vendor_adapter_bad_key_refuses_to_start(tmp_path: Path) -> None:
    example = load_example()
    gateway = Gateway(
        example.VendorSDKAdapter("wrong"), Journal(SQLiteStore(tmp_path / "j.sqlite")), INSTRUMENTS
    )
    with pytest.raises(BrokerAuthError):
        asyncio.run(gateway.start())
