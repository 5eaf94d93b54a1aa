"""Every log line about an order carries both ids, account, environment and correlation id."""

from __future__ import annotations

import asyncio
import io
import json
from decimal import Decimal

from livegate.model import OrderReport, OrderRequest, OrderStatus
from livegate.observe.logs import OrderLog
from livegate.risk import RiskLimits

from .helpers import scripted_gateway, settle
from .test_recovery import trade


def test_order_lines_are_json_and_traceable_by_client_order_id() -> None:
    stream = io.BytesIO()

    async def run() -> None:
        gateway, broker = scripted_gateway()
        gateway.order_log = OrderLog("paper", "desk-a", stream)
        gateway.risk.limits = RiskLimits(max_order_qty=Decimal(1000))
        await gateway.start()
        await gateway.submit_order(
            OrderRequest(
                symbol="AAPL", side="BUY", quantity=100, price="10.00", client_order_id="o-1"
            )
        )
        broker.push(trade("o-1", "T1", 40))
        await settle(gateway)
        await gateway.cancel_order("o-1")
        broker.push(OrderReport(OrderStatus.CANCELLED, "o-1", "B-o-1", cum_qty=Decimal(40)))
        await gateway.submit_order(
            OrderRequest(
                symbol="AAPL", side="BUY", quantity=5000, price="10.00", client_order_id="o-2"
            )
        )
        await settle(gateway)
        await gateway.stop()

    asyncio.run(run())
    lines = [json.loads(line) for line in stream.getvalue().decode().splitlines()]
    assert lines, "no log lines"
    for line in lines:
        assert line["environment"] == "paper" and line["account"] == "desk-a"
        assert line["client_order_id"] in ("o-1", "o-2") and line["correlation_id"]
        assert line["ts_ns"] > 0 and line["level"] in ("info", "warning")
    o1 = [line for line in lines if line["client_order_id"] == "o-1"]
    assert [line["event"] for line in o1] == [
        "submit",
        "order_update",
        "fill",
        "cancel",
        "order_update",
        "order_update",
    ]
    # Reports carry the broker id once known, and the command they follow.
    assert all(
        line["broker_order_id"] == "B-o-1"
        for line in o1
        if line["event"] != "submit" and line["event"] != "cancel"
    )
    submit, cancel = o1[0]["correlation_id"], o1[3]["correlation_id"]
    assert o1[2]["correlation_id"] == submit and o1[-1]["correlation_id"] == cancel
    refused = [line for line in lines if line["client_order_id"] == "o-2"][-1]
    assert refused["level"] == "warning" and refused["reject_reason"] == "RISK_MAX_QTY"


def test_a_structlog_processor_chain_shapes_the_lines() -> None:
    import structlog

    from livegate.model import OrderIntent
    from livegate.model.enums import OrderType, Side, TimeInForce
    from livegate.observe.logs import json_renderer

    def redact_account(_: object, __: str, event: dict) -> dict:  # type: ignore[type-arg]
        event["account"] = "***"
        return event

    stream = io.BytesIO()
    log = OrderLog(
        "live",
        "desk-secret",
        stream,
        processors=[
            structlog.processors.TimeStamper(fmt="iso"),
            redact_account,
            json_renderer(),
        ],
    )
    intent = OrderIntent(
        "c-1",
        "desk-secret",
        "AAPL",
        Side.BUY,
        OrderType.LIMIT,
        Decimal("10"),
        Decimal("1.50"),
        TimeInForce.DAY,
        1,
    )
    log.submit(intent)
    assert stream.getvalue() == b""  # batched: nothing written before a flush
    log.flush()
    (line,) = [json.loads(x) for x in stream.getvalue().splitlines()]
    assert line["account"] == "***" and "desk-secret" not in stream.getvalue().decode()
    assert line["timestamp"].endswith("Z") and line["price"] == "1.50"
    assert line["event"] == "submit" and line["correlation_id"].startswith("submit-c-1")
