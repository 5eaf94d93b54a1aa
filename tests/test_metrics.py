"""Scraping /metrics after a run: the counters and histograms say what happened."""

from __future__ import annotations

import asyncio
import socket
import urllib.request
from decimal import Decimal
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from livegate.engine import Gateway
from livegate.journal import Journal, SQLiteStore
from livegate.model import OrderReport, OrderRequest, OrderStatus
from livegate.observe.metrics import GatewayMetrics
from livegate.risk import RiskLimits

from .helpers import INSTRUMENTS, paper_gateway, scripted_gateway, settle

D = Decimal


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_after_a_paper_run(tmp_path: Path) -> None:
    metrics = GatewayMetrics()
    port = free_port()
    metrics.serve(port)

    async def run() -> tuple[int, int]:
        _, paper = paper_gateway(tmp_path)
        gateway = Gateway(
            paper, Journal(SQLiteStore(tmp_path / "journal.sqlite")), INSTRUMENTS, metrics=metrics
        )
        gateway.risk.limits = RiskLimits(max_order_qty=D(1000))
        seen: list[object] = []
        gateway.on_order(seen.append)
        await gateway.start()
        paper.set_quote("AAPL", D("99.99"), D("100.01"), D(1000), D(150))
        for i in range(4):  # 4 x 100 against 150 shown: fills, partial, resting
            await gateway.submit_order(
                OrderRequest(
                    symbol="AAPL",
                    side="BUY",
                    quantity=100,
                    order_type="MARKET",
                    client_order_id=f"m{i}",
                )
            )
        await gateway.submit_order(
            OrderRequest(
                symbol="AAPL", side="BUY", quantity=5000, price="1.00", client_order_id="big"
            )
        )
        await settle(gateway)
        await gateway.cancel_order("m3")
        await settle(gateway)
        fills = len(gateway.trades())
        callbacks = len(seen)
        await gateway.stop()
        return fills, callbacks

    fills, callbacks = asyncio.run(run())
    m = scrape(port)
    assert m[("livegate_orders_submitted_total", ())] == 5
    assert m[("livegate_orders_accepted_total", ())] == 4
    assert m[("livegate_orders_rejected_total", (("reason", "RISK_MAX_QTY"),))] == 1
    assert m[("livegate_fills_total", ())] == fills == 2  # 100 and the 50 left on the quote
    assert m[("livegate_cancels_sent_total", ())] == 1
    assert m[("livegate_order_round_trip_seconds_count", ())] == 4
    assert m[("livegate_callback_seconds_count", ())] == callbacks
    assert m[("livegate_ready", ())] == 0  # stopped
    # Every report applied was measured, and none took negative time.
    assert m[("livegate_report_handling_seconds_count", ())] >= fills
    assert m[("livegate_report_handling_seconds_sum", ())] >= 0


def test_disconnects_anomalies_and_readiness_are_counted() -> None:
    metrics = GatewayMetrics()

    async def run() -> None:
        gateway, broker = scripted_gateway()
        gateway.metrics = metrics
        gateway.config.reconnect_delay = 0.01
        metrics.watch_journal(lambda: 0.0)
        await gateway.start()
        assert metrics.registry.get_sample_value("livegate_ready") == 1
        await gateway.submit_order(
            OrderRequest(symbol="AAPL", side="BUY", quantity=1, price="1.00", client_order_id="a")
        )
        broker.push(OrderReport(OrderStatus.FILLED, "a", "B-a", cum_qty=D(1)))
        broker.push(OrderReport(OrderStatus.SUBMITTED, "a", "B-a"))  # stale
        await settle(gateway)
        broker.refuse_connects = 2
        broker.drop()
        await asyncio.sleep(0)
        assert metrics.registry.get_sample_value("livegate_ready") == 0
        down = {"state": "DISCONNECTED"}
        assert metrics.registry.get_sample_value("livegate_connection_state", down) == 1
        for _ in range(300):  # two refused connects, then back
            if gateway.ready:
                break
            await asyncio.sleep(0.01)
        ready = {"state": "READY"}
        assert metrics.registry.get_sample_value("livegate_connection_state", ready) == 1
        assert metrics.registry.get_sample_value("livegate_connection_state", down) == 0
        await gateway.stop()

    asyncio.run(run())
    port = free_port()
    metrics.serve(port)
    m = scrape(port)
    assert m[("livegate_disconnects_total", ())] == 1
    assert m[("livegate_reconnects_total", ())] == 1
    assert m[("livegate_report_anomalies_total", (("kind", "STALE_REPORT"),))] == 1
