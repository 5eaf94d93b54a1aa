"""livegate as akquant's broker: an unchanged akquant strategy trades through it.

The real akquant package runs the strategy (`run_live(..., broker="livegate")`)
in a process of its own, against the sim broker, with and without faults.
Every side must agree: akquant's position, the sum of the fills akquant was
told of, livegate's books and the broker's; nothing is sent twice and no
stale status reaches the strategy.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
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
from livegate.journal import replay_file
from livegate.model.samples import demo_instruments
from livegate.model.secret import Secret

ROOT = Path(__file__).resolve().parent.parent
RANK = {"New": 0, "Submitted": 1, "PartiallyFilled": 2}
FINAL = ("Filled", "Cancelled", "Rejected", "Expired")


def run_strategy(  # type: ignore[type-arg]
    tmp: Path, bars: int, faults: dict[str, list[Any]], pause: float = 0.0, react: bool = False
) -> dict:
    (tmp / "sim").mkdir(parents=True)
    sim = SimProcess(tmp / "sim", f"lg_sim_{secrets.token_hex(12)}")
    sim.start()
    try:
        asyncio.run(sim.control("quote", symbol="AAPL", bid="189.99", ask="190.01"))
        (tmp / "profiles.toml").write_text(
            '[profiles.desk]\nenvironment = "sim"\nbroker = "sim"\n'
            f'port = {sim.port}\napi_key = "env:DESK_KEY"\ndata_dir = "data"\n'
            "[profiles.desk.gateway]\nheartbeat_interval = 0.5\nreconnect_delay = 0.1\n"
        )
        plan = {
            "config": str(tmp / "profiles.toml"), "profile": "desk", "bars": bars,
            "orders": bars + bars // 3 + (bars if react else 0), "faults": faults,
            "pause": pause, "react": react,
            "control_port": sim.control_port,
        }  # fmt: skip
        (tmp / "plan.json").write_text(json.dumps(plan))
        env = {**os.environ, "DESK_KEY": sim.key, "PYTHONPATH": f"{ROOT / 'src'}"}
        done = subprocess.run(
            [sys.executable, str(ROOT / "tests" / "akquant_run.py"), str(tmp / "plan.json")],
            env=env, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        seen: dict = json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[type-arg]
        seen["broker"] = asyncio.run(_broker_position(sim))
        seen["stats"] = asyncio.run(sim.control("stats"))
    finally:
        sim.stop()
    seen["livegate"] = _livegate_position(tmp / "data")
    return seen


async def _broker_position(sim: SimProcess) -> float:
    adapter = SimAdapter("127.0.0.1", sim.port, Secret(sim.key), "sim")
    await adapter.connect()
    await adapter.authenticate()
    account = await adapter.account()
    await adapter.close()
    return float(sum((p.quantity for p in account.positions if p.symbol == "AAPL"), Decimal(0)))


def _livegate_position(data: Path) -> float:
    book = OrderBook(demo_instruments())
    for _, event in replay_file(data / "journal.sqlite"):
        book.apply(event)
    held = book.ledger.positions.get("AAPL")
    return float(held.quantity) if held is not None else 0.0


def check_agreement(seen: dict) -> None:  # type: ignore[type-arg]
    trades = seen["trades"]
    assert len({t[0] for t in trades}) == len(trades), "a trade delivered twice"
    told = sum(q if side.endswith("Buy") else -q for _, q, side in trades)
    assert seen["position"] == told == seen["livegate"] == seen["broker"], seen
    if "stats" in seen:  # the sim broker counts what it was sent
        assert seen["stats"]["sent_twice"] == []
    for order, statuses in seen["orders"].items():
        finals = [i for i, s in enumerate(statuses) if s in FINAL]
        assert (
            not finals
            or finals[0] == len(statuses) - 1
            or all(s == statuses[finals[0]] for s in statuses[finals[0] :])
        ), f"{order}: a status after its final one: {statuses}"
        live = [RANK[s] for s in statuses if s in RANK]
        assert live == sorted(live), f"{order}: a stale status reached the strategy: {statuses}"


def test_an_akquant_strategy_trades_through_livegate_and_every_side_agrees(
    tmp_path: Path,
) -> None:
    seen = run_strategy(tmp_path, bars=9, faults={})
    check_agreement(seen)
    assert seen["position"] == 9 * 10 - 3 * 5 and seen["rejects"] == 0


QUOTE = ["quote", {"symbol": "AAPL", "bid": "189.99", "ask": "190.01"}]


@pytest.mark.parametrize(
    "name, faults, fills_at_least",
    [
        ("duplicated and reordered reports",
         {"1": [["duplicate", {"on": True}], ["reorder", {"on": True}]]}, 16),
        # Orders during the outage are refused (NOT_READY); those after it fill.
        ("an outage", {"3": [["down", {"ms": 1000}]]}, 5),
        ("a broker restart", {"5": [["restart", {"down_ms": 300}]], "7": [QUOTE]}, 7),
    ],
)  # fmt: skip
def test_faults_at_the_broker_never_count_a_fill_twice_on_any_side(
    tmp_path: Path, name: str, faults: dict[str, list[Any]], fills_at_least: int
) -> None:
    seen = run_strategy(tmp_path, bars=12, faults=faults, pause=0.3)
    check_agreement(seen)
    assert len(seen["trades"]) >= fills_at_least, (name, seen)


def test_over_livegates_paper_broker_fills_come_at_the_markets_prices(tmp_path: Path) -> None:
    """broker="livegate" alone with livegate_market: livegate sees each bar's price, so
    market orders are valued for its caps and the embedded paper broker fills them."""
    (tmp_path / "profiles.toml").write_text(
        '[profiles.paper]\nenvironment = "paper"\nbroker = "paper"\ndata_dir = "data"\n'
        'rollout = "rollout.toml"\n'
    )
    (tmp_path / "rollout.toml").write_text(
        '[stages.pilot]\nsymbols = ["AAPL"]\nmax_gross_exposure = "1000000"\n'
    )
    plan = {
        "config": str(tmp_path / "profiles.toml"), "profile": "paper", "bars": 9,
        "orders": 12, "faults": {}, "pause": 0.05, "control_port": 0,
        "market_through_livegate": True,
    }  # fmt: skip
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "akquant_run.py"), str(tmp_path / "plan.json")],
        env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    seen["livegate"] = _livegate_position(tmp_path / "data")
    seen["broker"] = asyncio.run(_paper_position(tmp_path / "data" / "paper.sqlite"))
    check_agreement(seen)
    assert seen["position"] == 9 * 10 - 3 * 5 and seen["rejects"] == 0, seen


async def _paper_position(book: Path) -> float:
    from livegate.broker.paper import PaperAdapter

    adapter = PaperAdapter(book)
    await adapter.connect()
    account = await adapter.account()
    await adapter.close()
    return float(sum((p.quantity for p in account.positions if p.symbol == "AAPL"), Decimal(0)))


def test_an_akquant_broker_written_in_its_own_style_passes_certify(tmp_path: Path) -> None:
    from livegate.drills.certify.runner import FAILED, NOT_APPLICABLE, PASSED, certify

    spec = f"{ROOT / 'tests' / 'akquant_broker.py'}:certify_target"
    certificate = asyncio.run(certify(spec, tmp_path))
    by_status: dict[str, list[str]] = {}
    for outcome in certificate.outcomes:
        by_status.setdefault(outcome.status, []).append(outcome.id)
    assert certificate.passed and FAILED not in by_status, by_status
    assert certificate.adapter_module == "livegate.broker.akquant.adapter"
    assert certificate.adapter == "akquant:desk"  # the broker's own declared name
    # What the desk cannot do is said, never counted as passed.
    assert set(by_status[NOT_APPLICABLE]) == {
        "rejects.off-tick", "rejects.insufficient-funds", "rejects.throttling", "faults.sigkill",
    }  # fmt: skip
    assert {"faults.duplicated-reports", "recovery.missed-while-down"} <= set(by_status[PASSED])


def test_a_profile_names_an_akquant_broker_and_trades_through_it(tmp_path: Path) -> None:
    from livegate.engine.sync_facade import SyncGateway
    from livegate.model import OrderRequest, OrderStatus
    from livegate.ops.profiles import ProfileError, load_profiles
    from livegate.ops.wiring import build_gateway

    (tmp_path / "profiles.toml").write_text(
        '[profiles.desk]\nenvironment = "paper"\ndata_dir = "data"\n'
        'broker = "akquant:tests.akquant_broker:DeskBroker"\n\n'
        '[profiles.typo]\nenvironment = "paper"\ndata_dir = "data"\n'
        'broker = "akquant:tests.akquant_broker:NoSuchBroker"\n'
    )
    profiles = load_profiles(tmp_path / "profiles.toml")
    with pytest.raises(ProfileError, match="NoSuchBroker"):
        build_gateway(profiles["typo"])
    gateway = build_gateway(profiles["desk"])
    desk = gateway.adapter.trader  # type: ignore[attr-defined]
    with SyncGateway(gateway) as sync:
        desk.set_quote("AAPL", 189.99, 190.01)
        buy = sync.submit_order(
            OrderRequest(symbol="AAPL", side="BUY", quantity=10, price="190.05")
        )
        rest = sync.submit_order(OrderRequest(symbol="AAPL", side="BUY", quantity=5, price="150"))
        deadline = time.monotonic() + 5
        while sync.order(buy.client_order_id).status is not OrderStatus.FILLED:
            assert time.monotonic() < deadline
        cancelled = sync.cancel_order(rest.client_order_id)
        assert sync.positions()[0].quantity == 10 and len(sync.trades()) == 1
    assert cancelled.status in (OrderStatus.PENDING_CANCEL, OrderStatus.CANCELLED)
    assert desk.exchange.positions == {"AAPL": 10.0}


def test_the_example_runs_as_the_readme_shows_and_the_three_books_agree(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}", "COLUMNS": "40"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "akquant" / "run.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    lines = dict(line.split(": ", 1) for line in done.stdout.splitlines() if ": " in line)
    fills, _, akquant_position = lines["akquant"].partition(" fills, position ")
    assert int(fills) > 0
    positions = {
        Decimal(akquant_position),
        Decimal(lines["livegate"].removeprefix("position ")),
        Decimal(lines["broker"].removeprefix("position ")),
    }
    assert len(positions) == 1 and positions != {Decimal(0)}, done.stdout
    assert (tmp_path / "akquant-example" / "data" / "journal.sqlite").exists()


def test_an_inferred_fill_and_the_real_ones_that_replace_it_reach_akquant_once() -> None:
    """akquant adds up fills by trade id for the whole session: each order's new filled
    quantity is delivered once, and sync_today_trades answers exactly that."""
    from types import SimpleNamespace

    from livegate.integrations.akquant.trader import LivegateTrader
    from livegate.model import OrderReport, OrderRequest, OrderStatus, Side, TradeReport
    from tests.helpers import scripted_gateway, settle
    from tests.test_recovery import FAST

    async def run() -> list[Any]:
        gateway, broker = scripted_gateway(config=FAST)
        trader = LivegateTrader(None, None)
        trader._host = SimpleNamespace(gateway=gateway)  # type: ignore[assignment]
        delivered: list[Any] = []
        trader.on_trade(delivered.append)
        gateway.on_trade(trader._filled)
        await gateway.start()
        request = OrderRequest(symbol="AAPL", side="BUY", quantity=100, price="10.00",
                               client_order_id="a-1")  # fmt: skip
        await gateway.submit_order(request)
        broker.push(OrderReport(OrderStatus.PARTIALLY_FILLED, "a-1", "B-a-1", cum_qty=Decimal(50),
                                avg_price=Decimal("10.20")))  # fmt: skip
        await settle(gateway)
        await gateway.resolve_once()  # no trade report came: 50 inferred
        for tid, qty in (("T7", 30), ("T8", 20), ("T8", 20), ("T9", 50)):  # T8 twice
            broker.push(TradeReport(Decimal(qty), Decimal("10.10"), "a-1", "B-a-1", tid, "AAPL",
                                    Side.BUY))  # fmt: skip
            await settle(gateway)
        assert trader.sync_today_trades() == delivered
        await gateway.stop()
        return delivered

    delivered = asyncio.run(run())
    assert [t.quantity for t in delivered] == [50.0, 50.0]  # the inferred 50, then T9's
    assert len({t.trade_id for t in delivered}) == 2


def test_a_strategy_that_trades_inside_on_trade_does_not_deadlock_the_bridge(
    tmp_path: Path,
) -> None:
    seen = run_strategy(tmp_path, bars=6, faults={}, react=True)
    check_agreement(seen)
    reactions = [o for o, statuses in seen["orders"].items() if statuses[-1] == "Filled"]
    assert len(reactions) == 6 + 2 + 6  # one sell of 1 per buy filled, from on_trade
