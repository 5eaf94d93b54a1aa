"""Bad input gets a clear error, and nothing is journaled or sent."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from livegate.journal import MemoryStore
from livegate.model import InvalidOrderError, OrderRequest
from livegate.model.decimals import to_decimal
from livegate.model.validation import validate_request

from .helpers import INSTRUMENTS, scripted_gateway

D = Decimal


def _validate(**kw: object) -> object:
    fields: dict[str, object] = {"symbol": "AAPL", "side": "BUY", "quantity": 10, "price": "1.00"}
    fields.update(kw)
    request = OrderRequest(**fields)  # type: ignore[arg-type]
    return validate_request(request, INSTRUMENTS, account="a", client_order_id="c1", ts_ns=1)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"symbol": "NOPE"}, "unknown symbol"),
        ({"quantity": 0}, "must be positive"),
        ({"quantity": -5}, "must be positive"),
        ({"quantity": "NaN"}, "not a finite number"),
        ({"quantity": "abc"}, "not a number"),
        ({"quantity": 1.5}, "not float"),
        ({"price": "0"}, "must be positive"),
        ({"price": "-1.00"}, "must be positive"),
        ({"price": "Infinity"}, "not a finite number"),
        ({"price": 10.0}, "not float"),
        ({"price": "10.015"}, "not on the tick size"),
        ({"price": None}, "needs a price"),
        ({"side": "LONG"}, "side='LONG' is not one of BUY, SELL"),
        ({"order_type": "STOP"}, "order_type='STOP'"),
        ({"order_type": "MARKET"}, "takes no price"),
        ({"symbol": "600000.SH", "quantity": 150}, "not a multiple of the lot size 100"),
        ({"symbol": "600000.SH", "quantity": True}, "not bool"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(fields: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidOrderError, match=message):
        _validate(**fields)


def test_valid_request_normalizes_case_and_keeps_exact_decimals() -> None:
    intent = _validate(side="sell", order_type="limit", price="10.10", quantity="300")
    assert intent.side == "SELL"  # type: ignore[attr-defined]
    assert intent.price == D("10.10")  # type: ignore[attr-defined]
    assert intent.quantity == D(300)  # type: ignore[attr-defined]


@pytest.mark.parametrize("coid", ["", "has space", "x" * 65, "tab\tid", "ünï"])
def test_bad_client_order_ids_are_refused(coid: str) -> None:
    with pytest.raises(InvalidOrderError, match="client_order_id"):
        validate_request(
            OrderRequest(symbol="AAPL", side="BUY", quantity=1, price="1.00"),
            INSTRUMENTS,
            account="a",
            client_order_id=coid,
            ts_ns=1,
        )


def test_to_decimal_accepts_int_str_and_decimal() -> None:
    assert to_decimal(3, "q") == D(3)
    assert to_decimal("0.10", "q") == D("0.10")
    assert to_decimal(D("2.5"), "q") == D("2.5")


def test_refused_order_leaves_no_trace_in_journal_or_broker() -> None:
    async def run() -> None:
        store = MemoryStore()
        gateway, broker = scripted_gateway(store)
        await gateway.start()
        before = len(store.records)
        for bad in (
            OrderRequest(symbol="AAPL", side="BUY", quantity=0, price="1.00"),
            OrderRequest(symbol="AAPL", side="BUY", quantity=1, price="1.001"),
            OrderRequest(symbol="ZZZ", side="BUY", quantity=1, price="1.00"),
            OrderRequest(
                symbol="AAPL", side="BUY", quantity=1, price="1.00", client_order_id="a b"
            ),
        ):
            with pytest.raises(InvalidOrderError):
                await gateway.submit_order(bad)
        await gateway.journal.drain()
        assert len(store.records) == before
        assert not broker.placed
        assert gateway.orders() == []
        await gateway.stop()

    asyncio.run(run())
