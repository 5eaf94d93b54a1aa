"""Each P0/P1/P2 rule fires once, escalates once, resolves; sinks receive the JSON."""

from __future__ import annotations

import asyncio
import json
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from livegate.broker.errors import BrokerAuthError, UnknownOutcome
from livegate.journal import SQLiteStore
from livegate.model import AccountSnapshot, JournalError, OrderReport, OrderRequest
from livegate.model.enums import ConnectionState, OrderStatus, TradingState
from livegate.model.events import AlertChanged
from livegate.observe.alerts import AlertConfig, AlertEngine, file_sink, webhook_sink
from livegate.recon import Reconciler, ReconConfig
from livegate.risk import RiskLimits

from .helpers import scripted_gateway
from .test_journal import FailingStore

D = Decimal


def engine_for(gateway, **config):  # type: ignore[no-untyped-def]
    seen: list[AlertChanged] = []
    engine = AlertEngine(gateway, AlertConfig(**config), sinks=[seen.append])
    return engine, seen


def states(seen: list[AlertChanged], key: str) -> list[str]:
    return [a.state for a in seen if a.key == key]


def test_halted_raises_once_escalates_once_and_resolves() -> None:
    async def run() -> None:
        gateway, _ = scripted_gateway()
        await gateway.start()
        engine, seen = engine_for(gateway, escalate_after=0)
        await engine.evaluate()
        assert seen == []
        await gateway.set_trading_state("HALTED", "ops", "drill")
        for _ in range(3):
            await engine.evaluate()
        assert states(seen, "halted") == ["RAISED", "ESCALATED"]  # deduplicated
        assert engine.open_alerts() == {"halted": "P0"}
        await engine.acknowledge("halted", "ops", "on it")
        await gateway.set_trading_state("ACTIVE", "ops", "drill over")
        await engine.evaluate()
        assert states(seen, "halted") == ["RAISED", "ESCALATED", "ACKNOWLEDGED", "RESOLVED"]
        assert [a.state for a in gateway.book.alerts] == states(seen, "halted")
        assert gateway.book.alerts[2].who == "ops"
        await gateway.stop()

    asyncio.run(run())


def test_disconnection_is_p0_and_pulls_the_kill_switch_whose_cancels_go_out_once_back() -> None:
    async def run() -> None:
        gateway, broker = scripted_gateway()
        gateway.config.reconnect_delay = 0.02
        gateway.config.resolve_interval = 0.05
        await gateway.start()
        working = await gateway.submit_order(
            OrderRequest(symbol="AAPL", side="BUY", quantity=1, price="1.00")
        )
        coid = working.client_order_id
        broker.status[coid] = OrderReport(OrderStatus.SUBMITTED, coid, "B-" + coid)
        engine, seen = engine_for(gateway, disconnected_after=0, safe_stop_on_p0=True)
        broker.refuse_connects = 1000
        broker.drop()
        await asyncio.sleep(0)
        await engine.evaluate()
        assert [(a.key, a.level, a.state) for a in seen][:1] == [("disconnected", "P0", "RAISED")]
        for _ in range(100):
            if gateway.trading_state is TradingState.HALTED:
                break
            await asyncio.sleep(0.01)
        assert gateway.trading_state is TradingState.HALTED  # the safe-stop, first
        assert broker.cancels[coid] == 0  # nothing can go out while the broker is away
        assert gateway.book.release.safe_stop is not None
        assert gateway.book.release.safe_stop.who == "alerts"
        broker.refuse_connects = 0
        for _ in range(300):
            if broker.cancels[coid]:
                break
            await asyncio.sleep(0.01)
        assert broker.cancels[coid] == 1  # sent once the connection was back
        await engine.evaluate()
        assert "RESOLVED" in states(seen, "disconnected")
        await gateway.stop()

    asyncio.run(run())


def test_journal_failure_is_p0_and_still_reaches_the_sinks() -> None:
    async def run() -> None:
        store = FailingStore()
        gateway, _ = scripted_gateway(store)
        await gateway.start()
        engine, seen = engine_for(gateway)
        store.broken = True
        with pytest.raises(JournalError):
            await gateway.submit_order(
                OrderRequest(symbol="AAPL", side="BUY", quantity=1, price="1.00")
            )
        await engine.evaluate()
        assert ("journal-failed", "P0", "RAISED") in [(a.key, a.level, a.state) for a in seen]
        await gateway.stop()

    asyncio.run(run())


def test_p1_for_critical_diffs_and_stuck_unknown_orders() -> None:
    async def run() -> None:
        gateway, broker = scripted_gateway()
        await gateway.start()
        engine, seen = engine_for(gateway, unknown_deadline=0)
        broker.place_error = UnknownOutcome("timeout")
        await gateway.submit_order(
            OrderRequest(symbol="AAPL", side="BUY", quantity=1, price="1.00", client_order_id="u")
        )
        broker.snapshot = AccountSnapshot("test", "USD", D(1), D(1))
        reconciler = Reconciler(gateway, ReconConfig(settle_window=0))
        await reconciler.run()
        await engine.evaluate()
        raised = {(a.key, a.level) for a in seen if a.state == "RAISED"}
        assert raised == {("critical-diffs", "P1"), ("unknown-orders", "P1")}
        for diff in reconciler.diffs():
            await reconciler.resolve(diff.id, "WRITE_OFF", "ops", "test account")
        await engine.evaluate()
        assert states(seen, "critical-diffs") == ["RAISED", "RESOLVED"]
        await gateway.stop()

    asyncio.run(run())


def test_p2_for_a_high_reject_rate() -> None:
    async def run() -> None:
        gateway, _ = scripted_gateway()
        gateway.risk.limits = RiskLimits(max_order_qty=D(1))
        await gateway.start()
        engine, seen = engine_for(gateway, reject_window=4, reject_rate=0.5)
        for qty in (1, 5, 1, 5):
            await gateway.submit_order(
                OrderRequest(symbol="AAPL", side="BUY", quantity=qty, price="1.00")
            )
        await engine.evaluate()
        assert [(a.key, a.level) for a in seen] == [("reject-rate", "P2")]
        assert "50% of the last 4 orders refused" in seen[0].text
        await gateway.stop()

    asyncio.run(run())


def test_webhook_and_file_sinks_receive_json(tmp_path: Path) -> None:
    received: list[dict[str, object]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return None

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/alerts"

    async def run() -> None:
        gateway, _ = scripted_gateway(SQLiteStore(tmp_path / "j.sqlite"))
        await gateway.start()
        engine = AlertEngine(
            gateway, AlertConfig(), sinks=[webhook_sink(url), file_sink(tmp_path / "alerts.jsonl")]
        )
        await gateway.set_trading_state("HALTED", "ops", "drill")
        await engine.evaluate()
        for _ in range(200):
            if received:
                break
            await asyncio.sleep(0.01)
        await gateway.stop()
        # The history is in the journal: a restart still has it.
        again, _ = scripted_gateway(SQLiteStore(tmp_path / "j.sqlite"))
        await again.start()
        assert [(a.key, a.state) for a in again.book.alerts] == [("halted", "RAISED")]
        await again.stop()

    asyncio.run(run())
    server.shutdown()
    assert received and received[0]["key"] == "halted" and received[0]["level"] == "P0"
    line = json.loads((tmp_path / "alerts.jsonl").read_text().splitlines()[0])
    assert line["state"] == "RAISED" and line["text"] == "trading is HALTED"


def test_alerts_cli_lists_open_alerts_and_acknowledges_once(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from livegate.cli.main import app
    from livegate.engine import GatewayConfig

    runner = CliRunner()

    async def run() -> None:
        config = GatewayConfig(control_dir=tmp_path / "control", resolve_interval=3600)
        gateway, _ = scripted_gateway(SQLiteStore(tmp_path / "journal.sqlite"), config)
        await gateway.start()
        engine = AlertEngine(gateway, AlertConfig(), sinks=[])
        await gateway.set_trading_state("HALTED", "ops", "drill")
        await engine.evaluate()
        listed = runner.invoke(app, ["alerts", "--dir", str(tmp_path)])
        assert "open alerts: 1" in listed.output and "P0 halted" in listed.output
        said = runner.invoke(
            app,
            # --wait 0: the gateway runs on this very loop, so it cannot answer now
            [
                "alerts",
                "--dir",
                str(tmp_path),
                "--ack",
                "halted",
                "--who",
                "ops",
                "--why",
                "seen",
                "--wait",
                "0",
            ],
        )
        assert said.exit_code == 0, said.output
        await engine.evaluate()
        await engine.evaluate()  # applied once, however often it is read
        acks = [a for a in gateway.book.alerts if a.state == "ACKNOWLEDGED"]
        assert len(acks) == 1 and acks[0].who == "ops"
        await gateway.stop()

    asyncio.run(run())
    shown = runner.invoke(app, ["alerts", "--dir", str(tmp_path)])
    assert "ACKNOWLEDGED" in shown.output and "P0 halted" in shown.output
    refused = runner.invoke(app, ["alerts", "--dir", str(tmp_path), "--ack", "halted"])
    assert refused.exit_code == 2


def test_p2_for_orders_waiting_on_their_acknowledgement() -> None:
    async def run() -> None:
        gateway, broker = scripted_gateway()
        gateway.config.place_timeout = 0.3  # then the send's outcome becomes UNKNOWN
        await gateway.start()
        engine, seen = engine_for(gateway, ack_latency=0.05)
        broker.hang = True
        submit = asyncio.create_task(
            gateway.submit_order(
                OrderRequest(
                    symbol="AAPL", side="BUY", quantity=1, price="1.00", client_order_id="slow-1"
                )
            )
        )
        await asyncio.sleep(0.02)
        await engine.evaluate()
        assert seen == []  # not yet past the threshold
        await asyncio.sleep(0.05)
        await engine.evaluate()
        await engine.evaluate()  # still slow: not raised twice
        assert [(a.key, a.level, a.state) for a in seen] == [("slow-acks", "P2", "RAISED")]
        assert "slow-1" in seen[0].text
        await submit  # the deadline passes: the order leaves NEW for UNKNOWN
        assert gateway.book.orders["slow-1"].status is OrderStatus.UNKNOWN
        await engine.evaluate()
        assert states(seen, "slow-acks") == ["RAISED", "RESOLVED"]
        await gateway.stop()

    asyncio.run(run())


def test_authentication_failure_is_p0_until_a_connect_succeeds() -> None:
    async def run() -> None:
        gateway, broker = scripted_gateway()
        gateway.config.reconnect_delay = 0.01
        gateway.config.auth_retry_delay = 0.05
        await gateway.start()
        engine, seen = engine_for(gateway, disconnected_after=3600)
        broker.connect_error = BrokerAuthError("invalid API key")
        broker.refuse_connects = 1000
        broker.drop()
        for _ in range(200):
            if gateway.last_connect_error is not None:
                break
            await asyncio.sleep(0.01)
        await engine.evaluate()
        await engine.evaluate()
        assert [(a.key, a.level, a.state) for a in seen] == [("auth-failure", "P0", "RAISED")]
        assert "invalid API key" in seen[0].text
        assert gateway.connection_state is ConnectionState.DISCONNECTED
        broker.refuse_connects = 0
        for _ in range(300):
            if gateway.ready:
                break
            await asyncio.sleep(0.01)
        assert gateway.connection_state is ConnectionState.READY and gateway.reconnects == 1
        await engine.evaluate()
        assert states(seen, "auth-failure") == ["RAISED", "RESOLVED"]
        await gateway.stop()

    asyncio.run(run())


def test_a_broker_adapter_problem_raises_a_p1_until_it_is_old() -> None:
    from livegate.broker.adapter import AdapterProblems

    async def run() -> None:
        gateway, broker = scripted_gateway()
        broker.problems = AdapterProblems()  # type: ignore[attr-defined]
        await gateway.start()
        engine = AlertEngine(gateway, AlertConfig(refused_report_window=0.2), sinks=[])
        await engine.evaluate()
        assert "broker-problems" not in engine.open_alerts()
        broker.problems.add("FIX trade cancel (bust) for order o-1 not applied")  # type: ignore[attr-defined]
        await engine.evaluate()
        assert engine.open_alerts()["broker-problems"] == "P1"
        await asyncio.sleep(0.3)
        await engine.evaluate()
        assert "broker-problems" not in engine.open_alerts()  # resolved once old
        await gateway.stop()

    asyncio.run(run())


def test_an_alert_a_stopped_run_left_open_is_resumed_and_resolved_by_the_next(
    tmp_path: Path,
) -> None:
    """The journal never keeps an alert raised and then forgotten by a restart."""

    async def run() -> None:
        gateway, _ = scripted_gateway(SQLiteStore(tmp_path / "journal.sqlite"))
        await gateway.start()
        engine, _ = engine_for(gateway)
        await gateway.set_trading_state("HALTED", "ops", "left halted")
        await engine.evaluate()
        await gateway.stop()  # stopped with "halted" open

        again, _ = scripted_gateway(SQLiteStore(tmp_path / "journal.sqlite"))
        await again.start()
        engine, seen = engine_for(again)
        engine.start()
        assert engine.open_alerts() == {"halted": "P0"}  # still open: still HALTED
        await engine.evaluate()
        assert seen == []  # not raised a second time
        await again.set_trading_state("ACTIVE", "ops", "resumed")
        await engine.evaluate()
        await engine.stop()
        assert states(seen, "halted") == ["RESOLVED"]
        assert [a.state for a in again.book.alerts] == ["RAISED", "RESOLVED"]
        await again.stop()

    asyncio.run(run())
