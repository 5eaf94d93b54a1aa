"""`livegate trace` tells one order's whole story from the journal."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import msgspec
from typer.testing import CliRunner

from livegate.cli.main import app
from livegate.journal import SQLiteStore
from livegate.model import OrderRequest
from livegate.observe.trace import trace_order
from livegate.recon import Reconciler, ReconConfig
from livegate.risk import RiskLimits

from .helpers import paper_gateway, settle

D = Decimal


def test_trace_shows_intent_send_reports_cancel_refusal_and_recon(tmp_path: Path) -> None:
    async def day() -> None:
        gateway, paper = paper_gateway(tmp_path)
        gateway.risk.limits = RiskLimits(max_order_qty=D(1000))
        await gateway.start()
        paper.set_quote("AAPL", D("99.99"), D("100.01"), D(100), D(30))
        await gateway.submit_order(
            OrderRequest(
                symbol="AAPL", side="BUY", quantity=100, price="100.01", client_order_id="t-1"
            )
        )
        await settle(gateway)
        await gateway.cancel_order("t-1")
        await gateway.submit_order(
            OrderRequest(
                symbol="AAPL", side="BUY", quantity=5000, price="100.01", client_order_id="t-2"
            )
        )
        await settle(gateway)
        # A diff about t-1's fill: the broker's record of it differs.
        reconciler = Reconciler(gateway, ReconConfig(settle_window=0))
        (trade,) = paper.broker.trades
        paper.broker.trades[0] = msgspec.structs.replace(trade, price=D("100.02"))
        await reconciler.run()
        await gateway.stop()

    asyncio.run(day())
    store = SQLiteStore(tmp_path / "journal.sqlite")
    store.open()
    events = [line.what for line in trace_order(store, "t-1")]
    store.close()
    assert events[0] == "intent"
    for expected in ("acknowledged", "fill", "cancel requested", "order report", "recon diff"):
        assert expected in events, events
    assert events.index("fill") > events.index("intent")
    assert events.index("cancel requested") < len(events) - 1

    runner = CliRunner()
    shown = runner.invoke(app, ["trace", "t-1", "--dir", str(tmp_path)])
    assert shown.exit_code == 0
    assert "BUY 100 AAPL LIMIT @ 100.01" in shown.output
    assert "CANCELLED" in shown.output and "PRICE_MISMATCH" in shown.output
    refused = runner.invoke(app, ["trace", str(tmp_path), "t-2"])  # deprecated form
    assert "RISK_MAX_QTY" in refused.output
    missing = runner.invoke(app, ["trace", "nope", "--dir", str(tmp_path)])
    assert missing.exit_code == 1 and "no order 'nope'" in missing.output
