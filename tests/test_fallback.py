"""Fallback to paper in the middle of a `livegate serve` run whose strategy trades all
the time, and back to live: nothing reaches the live broker after the switch, no order
is lost, positions carry over, and the way back is refused while live has a difference."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from livegate.broker.sim import SimAdapter
from livegate.drills.sim_process import SimProcess
from livegate.engine.order_book import OrderBook
from livegate.journal import Journal, SQLiteStore
from livegate.journal.sqlite import events_of_kinds
from livegate.model import OrderRequest
from livegate.model.events import Received, VenueChanged
from livegate.model.reports import TradeReport
from livegate.model.secret import Secret
from tests.test_operator_paths import NARROW

ROOT = Path(__file__).resolve().parent.parent
D = Decimal


def test_fallback_to_paper_mid_run_and_back_to_live_only_when_clean(tmp_path: Path) -> None:
    key = f"lg_sim_{secrets.token_hex(8)}"
    (tmp_path / "sim").mkdir()
    sim = SimProcess(tmp_path / "sim", key)
    sim.start()
    (tmp_path / "profiles.toml").write_text(
        f'[profiles.sim]\nenvironment = "sim"\nbroker = "sim"\nport = {sim.port}\n'
        'api_key = "env:LG_FALLBACK_KEY"\ndata_dir = "data"\n'
    )
    env = {
        **NARROW,
        "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'src'}",
        "LG_FALLBACK_KEY": key,
        "LIVEGATE_TEST_SIM_CONTROL": str(sim.control_port),
    }

    def livegate(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "livegate", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=60)  # fmt: skip

    def places() -> int:
        stats: dict[str, Any] = asyncio.run(sim.control("stats"))
        assert not stats["sent_twice"]
        return int(stats["places"])

    service = subprocess.Popen(
        [sys.executable, "-m", "livegate", "serve", "--config", "profiles.toml", "--profile",
         "sim", "--metrics-port", "0", "--strategy", "tests.release_strategy:throughout"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert service.stdout is not None
        assert service.stdout.readline() and service.stdout.readline().startswith("ready:")
        time.sleep(1.5)
        assert places() > 10  # trading live
        refused = livegate("fallback", "moon", "--dir", "data", "--who", "o", "--why", "w")
        assert refused.returncode == 2 and "choose paper or live" in refused.stderr

        switched = livegate("fallback", "paper", "--dir", "data", "--who", "ops", "--why",
                            "broker misbehaving")  # fmt: skip
        assert switched.returncode == 0, switched.stderr
        assert "orders now go to paper" in switched.stdout
        live_places = places()
        time.sleep(1.5)
        assert places() == live_places  # nothing reached the live broker after the switch
        journal = tmp_path / "data" / "journal.sqlite"
        to_paper = events_of_kinds(journal, "venue")
        assert len(to_paper) == 1 and isinstance(to_paper[0], VenueChanged)
        opening = {p.symbol: p.quantity for p in to_paper[0].account.positions}
        assert opening["AAPL"] > 0  # the live broker's position, carried over

        async def live_position() -> dict[str, Decimal]:
            adapter = SimAdapter("127.0.0.1", sim.port, Secret(key), "sim")
            await adapter.connect()
            await adapter.authenticate()
            try:
                account = await adapter.account()
            finally:
                await adapter.close()
            return {p.symbol: p.quantity for p in account.positions}

        assert asyncio.run(live_position()) == opening  # the broker's, at the switch
        book, events = _replay(tmp_path)
        paper_fills = [e for e in events if isinstance(e, Received) and e.venue == "paper"
                       and isinstance(e.report, TradeReport)]  # fmt: skip
        assert paper_fills, "the strategy traded on paper"
        assert all(e.venue == "paper" for e in events[events.index(to_paper[0]):]
                   if isinstance(e, Received))  # fmt: skip
        paper_bought = sum(e.report.quantity for e in paper_fills)  # type: ignore[union-attr]
        # Continuous: the position is the live one carried over plus the paper fills.
        assert book.ledger.positions["AAPL"].quantity == opening["AAPL"] + paper_bought
        assert _status(tmp_path)["venue"] == "paper"

        # Someone trades by hand on the live account: a difference; back to live refused.
        async def manual(cancel: bool) -> None:
            adapter = SimAdapter("127.0.0.1", sim.port, Secret(key), "sim")
            await adapter.connect()
            await adapter.authenticate()
            try:
                if cancel:
                    await adapter.cancel("manual-1", None)
                else:
                    from livegate.model.samples import demo_instruments
                    from livegate.model.validation import validate_request

                    intent = validate_request(
                        OrderRequest(symbol="AAPL", side="BUY", quantity=1, price=D("100.00")),
                        demo_instruments(), account="x", client_order_id="manual-1", ts_ns=1,
                    )  # fmt: skip
                    await adapter.place(intent)
            finally:
                await adapter.close()

        asyncio.run(manual(cancel=False))
        back = livegate("fallback", "live", "--dir", "data", "--who", "ops", "--why", "fixed")
        assert back.returncode == 1, back.stdout + back.stderr
        assert "reconciliation against the live broker found" in back.stderr
        assert _status(tmp_path)["venue"] == "paper"
        asyncio.run(manual(cancel=True))
        back = livegate("fallback", "live", "--dir", "data", "--who", "ops", "--why", "fixed")
        assert back.returncode == 0, back.stdout + back.stderr
        assert "orders now go to live" in back.stdout
        before = places()
        time.sleep(1.0)
        assert places() > before  # trading live again
    finally:
        service.send_signal(signal.SIGTERM)
        _out, err = service.communicate(timeout=30)
        sim.stop()
    assert service.returncode == 0, err
    venues = [e.venue for e in events_of_kinds(tmp_path / "data" / "journal.sqlite", "venue")]
    assert venues == ["paper", "live"]
    # No order lost: every order the strategy sent ended somewhere known.
    book, _ = _replay(tmp_path)
    stuck = [o for o in book.orders.values() if o.status.value in ("NEW", "UNKNOWN",
                                                                    "PENDING_CANCEL")]  # fmt: skip
    assert not stuck and len(book.orders) > 50


def _status(folder: Path) -> dict[str, Any]:
    import json

    return json.loads((folder / "data" / "service.json").read_text())  # type: ignore[no-any-return]


def _replay(folder: Path) -> tuple[OrderBook, list[Any]]:
    """Our books as the journal has them now (read-only), and its events."""
    book = OrderBook()
    journal = Journal(SQLiteStore(folder / "data" / "journal.sqlite", read_only=True))
    journal.open()
    events = []
    for _, event in journal.replay():
        book.apply(event)
        events.append(event)
    journal.store.close()
    return book, events


def test_a_restart_while_on_paper_comes_back_on_the_same_paper_book(tmp_path: Path) -> None:
    from livegate.broker.paper import PaperAdapter
    from livegate.model.account import AccountSnapshot, Position
    from livegate.ops.fallback import FallbackRefused, fall_back_to_paper, return_to_live

    from .helpers import ScriptedBroker, scripted_gateway

    def gateway() -> tuple[Any, ScriptedBroker]:
        g, live = scripted_gateway(SQLiteStore(tmp_path / "journal.sqlite"))
        g.config.control_dir = tmp_path / "control"
        live.snapshot = AccountSnapshot(
            "test", "USD", D(100_000), D(100_000), (Position("AAPL", D(7), D(100)),)
        )
        return g, live

    async def run() -> None:
        g, live = gateway()
        await g.start()
        with pytest.raises(FallbackRefused, match="already live"):
            await return_to_live(g, "ops", "nothing to return from")
        await fall_back_to_paper(g, "ops", "drill")
        assert g.venue == "paper" and isinstance(g.adapter, PaperAdapter)
        g.adapter.set_quote("AAPL", D("99.99"), D("100.01"))
        placed = await g.submit_order(
            OrderRequest(symbol="AAPL", side="BUY", quantity=3, order_type="MARKET")
        )
        for _ in range(100):
            if {p.symbol: p.quantity for p in g.positions()}.get("AAPL") == D(10):
                break
            await asyncio.sleep(0.01)
        assert {p.symbol: p.quantity for p in g.positions()} == {"AAPL": D(10)}  # 7 + 3
        assert sum(live.placed.values()) == 0  # the paper order never reached live
        await g.stop()

        again, live2 = gateway()
        await again.start()
        try:
            assert again.venue == "paper" and isinstance(again.adapter, PaperAdapter)
            assert {p.symbol: p.quantity for p in again.positions()} == {"AAPL": D(10)}
            assert again.order(placed.client_order_id).status.value == "FILLED"
            assert live2.connects == 0  # the live broker is not even connected while on paper
        finally:
            await again.stop()

    asyncio.run(run())
