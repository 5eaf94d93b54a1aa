"""`livegate serve` in its own process: /metrics scraped live agrees with the journal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from livegate.cli.demo import DEMO_INSTRUMENTS
from livegate.cli.main import app
from livegate.engine.order_book import OrderBook
from livegate.journal import Journal, SQLiteStore
from livegate.model import OrderIntent
from livegate.ops.service import read_status

ORDERS = 200


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def wait_for(process, condition, timeout: float = 60.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the service exited: {process.stderr.read().decode()[-3000:]}")
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_service_serves_metrics_that_match_its_journal(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "livegate"]
    service = subprocess.Popen(
        [*command, "serve", "--dir", str(tmp_path), "--metrics-port", "0", "--demo", str(ORDERS)],
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        status = wait_for(service, lambda: (s := read_status(tmp_path)) and s["ready"] and s)
        url = status["metrics_url"]
        # The demo has sent everything and nothing moves any more (it stopped quoting).
        seen: list[dict[tuple[str, tuple[tuple[str, str], ...]], float]] = []

        def settled() -> bool:
            seen.append(scrape(url))
            sent = seen[-1].get(("livegate_orders_submitted_total", ()), 0)
            return len(seen) > 2 and sent == ORDERS and seen[-1] == seen[-2]

        wait_for(service, settled)
        metrics = seen[-1]
        assert metrics[("livegate_ready", ())] == 1
        assert metrics[("livegate_connection_state", (("state", "READY"),))] == 1
        out = CliRunner().invoke(app, ["status", "--dir", str(tmp_path)])
        assert out.exit_code == 0 and "READY" in out.output
    finally:
        service.send_signal(signal.SIGTERM)
        _, stderr = service.communicate(timeout=60)
    assert service.returncode == 0, stderr.decode()[-3000:]
    assert read_status(tmp_path)["running"] is False  # type: ignore[index]

    # What happened, read back from the journal the service wrote.
    journal = Journal(SQLiteStore(tmp_path / "journal.sqlite"))
    journal.open()
    book = OrderBook(DEMO_INSTRUMENTS)
    intents = 0
    for _, event in journal.replay():
        intents += isinstance(event, OrderIntent)
        book.apply(event)
    journal.store.close()
    acknowledged = sum(1 for o in book.orders.values() if o.broker_order_id is not None)
    rejected = Counter(
        o.reject_reason.value for o in book.orders.values() if o.reject_reason is not None
    )
    assert metrics[("livegate_orders_submitted_total", ())] == intents == ORDERS
    assert metrics[("livegate_orders_accepted_total", ())] == acknowledged
    assert metrics[("livegate_fills_total", ())] == len(book.fills) > 0
    assert metrics[("livegate_order_round_trip_seconds_count", ())] == acknowledged
    for reason, count in rejected.items():
        assert metrics[("livegate_orders_rejected_total", (("reason", reason),))] == count
    assert metrics[("livegate_place_success_ratio", ())] == acknowledged / intents
    cancels_sent = metrics[("livegate_cancels_sent_total", ())]
    assert cancels_sent == sum(1 for o in book.orders.values() if o.status.value == "CANCELLED")
    # Every histogram's +Inf bucket equals its count.
    for name in ("order_round_trip", "report_handling", "callback"):
        base = f"livegate_{name}_seconds"
        assert metrics[(f"{base}_bucket", (("le", "+Inf"),))] == metrics[(f"{base}_count", ())]
    # Process logs are JSON lines; order logs carry the run's orders.
    for line in stderr.decode().splitlines():
        json.loads(line)
    order_lines = [json.loads(x) for x in (tmp_path / "orders.log").read_text().splitlines()]
    assert {x["client_order_id"] for x in order_lines if x["event"] == "submit"} == set(book.orders)


STRATEGY = """
import asyncio, os
from decimal import Decimal as D
from livegate.model import OrderRequest

async def run(gateway):
    seen = open(OUT, "a", buffering=1)
    gateway.on_trade(lambda fill: seen.write(fill.trade_id + "\\n"))
    paper = gateway.adapter
    n = 0
    while True:  # until the service cancels us at SIGTERM
        paper.set_quote("AAPL", D("99.99"), D("100.01"), D(10**7), D(10**7))
        basket = [
            OrderRequest(symbol="AAPL", side="BUY", quantity=100, order_type="MARKET",
                         client_order_id=f"s{os.getpid()}-{n + i}")
            for i in range(25)
        ]
        n += 25
        await gateway.submit_orders(basket)
        with open(READY, "w") as ready:
            ready.write(f"{os.getpid()} {n}")
"""


def _traded(ready: Path, pid: str) -> bool:
    """This very process (not the one before) has had 200 orders answered."""
    who, _, sent = (ready.read_text() if ready.exists() else "").partition(" ")
    return who == pid and int(sent or 0) >= 200


def test_sigterm_while_trading_delivers_every_journaled_fill_once(tmp_path: Path) -> None:
    """SIGTERM to a trading `livegate serve`: each fill in the journal reached on_trade
    exactly once (the strategy task is cancelled first, reports still queued)."""
    out, ready = tmp_path / "seen.txt", tmp_path / "ready.txt"
    (tmp_path / "hammer.py").write_text(f"OUT = {str(out)!r}\nREADY = {str(ready)!r}\n" + STRATEGY)
    data = tmp_path / "data"
    for round_ in range(3):
        service = subprocess.Popen(
            [sys.executable, "-m", "livegate", "serve", "--dir", str(data),
             "--metrics-port", "0", "--strategy", "hammer:run"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(tmp_path)},
        )  # fmt: skip
        try:
            wait_for(service, lambda pid=str(service.pid): _traded(ready, pid))
        finally:
            service.send_signal(signal.SIGTERM)
            _, stderr = service.communicate(timeout=60)
        assert service.returncode == 0, (round_, stderr.decode()[-3000:])

    journal = Journal(SQLiteStore(data / "journal.sqlite"))
    journal.open()
    book = OrderBook(DEMO_INSTRUMENTS)
    for _, event in journal.replay():
        book.apply(event)
    journal.store.close()
    delivered = Counter(out.read_text().split())
    journaled = Counter(f.trade_id for f in book.fills)
    assert len(journaled) >= 600
    assert delivered == journaled  # nothing lost, nothing twice


def test_status_shows_a_trading_state_change_as_soon_as_it_is_applied(tmp_path: Path) -> None:
    """An operator's `safe-stop` answers "applied", then `livegate status` is read: it must
    not show the state from before (the periodic write is an hour away here)."""
    import asyncio

    from livegate.engine import Gateway
    from livegate.ops.service import GatewayService, ServiceConfig
    from tests.helpers import paper_gateway

    seen: list[tuple[str, str]] = []

    async def main() -> None:
        gateway, _ = paper_gateway(tmp_path)
        config = ServiceConfig(tmp_path, metrics_port=None, status_interval=3600)
        service = GatewayService(gateway, config)

        async def operate(g: Gateway) -> None:
            for state in ("HALTED", "REDUCING", "ACTIVE"):
                await g.set_trading_state(state, "ops", "drill")
                seen.append((state, read_status(tmp_path)["trading_state"]))  # type: ignore[index]
            await g.safe_stop("ops", "drill")
            seen.append(("HALTED", read_status(tmp_path)["trading_state"]))  # type: ignore[index]
            service.request_stop()

        await asyncio.wait_for(service.run(operate), 30)

    asyncio.run(main())
    assert seen == [(want, want) for want, _ in seen] and len(seen) == 4
