"""Rollout stages: each cap at its limit and one over, windows in the exchange's clock,
stage changes journaled and kept across restarts, and files refused with file:line."""

from __future__ import annotations

import asyncio
import datetime as dt
import textwrap
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livegate.broker.paper import PaperAdapter
from livegate.engine import Gateway
from livegate.journal import Journal, SQLiteStore
from livegate.model import OrderIntent, OrderRequest
from livegate.model.enums import OrderStatus, OrderType, RejectReason, Side, TimeInForce
from livegate.risk.engine import RiskEngine
from livegate.risk.limits import RiskLimits
from livegate.risk.rollout import (
    RolloutError,
    RolloutGuard,
    load_rollout,
    parse_plan,
    parse_window,
)
from tests.helpers import INSTRUMENTS, settle

D = Decimal
SHANGHAI = ZoneInfo("Asia/Shanghai")

PLAN = """\
timezone = "Asia/Shanghai"

[stages.pilot]
symbols = ["AAPL"]
max_orders_per_day = 3
max_position = "30"
max_daily_notional = "2500"
max_gross_exposure = "3000"

[stages.ramp]
symbols = ["AAPL", "MSFT"]
max_orders_per_day = 100

[stages.full]
"""


def at(hour: int, minute: int, day: dt.date = dt.date(2026, 12, 1)) -> int:
    """Nanoseconds of a Shanghai wall-clock time."""
    local = dt.datetime.combine(day, dt.time(hour, minute), SHANGHAI)
    return int(local.timestamp()) * 1_000_000_000


def intent(
    symbol: str = "AAPL", qty: int = 10, price: str = "100", side: Side = Side.BUY
) -> OrderIntent:
    return OrderIntent(
        "c1", "default", symbol, side, OrderType.LIMIT, D(qty), D(price), TimeInForce.DAY, 0
    )


def write(tmp_path: Path, name: str, text: str) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


# -- windows -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("hour", "minute", "inside"),
    [
        (9, 34, False), (9, 35, True), (10, 29, True), (10, 30, False),  # morning
        (12, 0, False),  # lunch
        (13, 30, True), (14, 49, True), (14, 50, False),  # afternoon
        (21, 0, True), (23, 59, True), (0, 0, True), (2, 29, True), (2, 30, False),  # night
    ],
)  # fmt: skip
def test_windows_across_lunch_and_midnight_on_the_exchange_clock(
    hour: int, minute: int, inside: bool
) -> None:
    plan = parse_plan(
        {
            "timezone": "Asia/Shanghai",
            "stages": {"pilot": {"windows": ["09:35-10:30", "13:30-14:50", "21:00-02:30"]}},
        }
    )
    guard = RolloutGuard(plan)
    refusal = guard.check(intent(), None, at(hour, minute), D(1000), D(10), lambda: D(0))
    assert (refusal is None) is inside, refusal
    if refusal is not None:
        assert refusal[0] is RejectReason.ROLLOUT_WINDOW
        assert "Asia/Shanghai" in refusal[1]


@given(st.integers(0, 23), st.integers(0, 59), st.integers(0, 23), st.integers(0, 59))
def test_a_window_contains_its_start_and_never_its_end(h1: int, m1: int, h2: int, m2: int) -> None:
    window = parse_window(f"{h1:02d}:{m1:02d}-{h2:02d}:{m2:02d}")
    if (h1, m1) != (h2, m2):
        assert window.contains(dt.time(h1, m1))
        assert not window.contains(dt.time(h2, m2))


# -- caps, through a real gateway on the paper broker ------------------------------------
async def rollout_gateway(tmp_path: Path, plan_text: str = PLAN) -> tuple[Gateway, PaperAdapter]:
    plan = load_rollout(write(tmp_path, "rollout.toml", plan_text))
    risk = RiskEngine(RiskLimits(), INSTRUMENTS, rollout=RolloutGuard(plan))
    paper = PaperAdapter(tmp_path / "paper.sqlite")
    gateway = Gateway(
        paper, Journal(SQLiteStore(tmp_path / "journal.sqlite")), INSTRUMENTS, risk=risk
    )
    await gateway.start()
    paper.set_quote("AAPL", D("99.99"), D("100.01"))
    paper.set_quote("MSFT", D("99.99"), D("100.01"))
    return gateway, paper


def order(
    symbol: str = "AAPL", qty: int = 10, price: str = "90", side: str = "BUY"
) -> OrderRequest:
    return OrderRequest(symbol=symbol, side=side, quantity=qty, price=D(price))


def test_each_cap_at_its_limit_passes_and_one_over_is_refused_with_its_code(
    tmp_path: Path,
) -> None:
    async def run() -> None:
        # Orders per day: 3 pass, the 4th is refused.
        g, _ = await rollout_gateway(tmp_path / "orders")
        for _ in range(3):
            assert (await g.submit_order(order(qty=1))).status is not OrderStatus.REJECTED
        refused = await g.submit_order(order(qty=1))
        assert refused.reject_reason is RejectReason.ROLLOUT_ORDERS
        await g.stop()

        # Symbols: AAPL in, MSFT out.
        g, _ = await rollout_gateway(tmp_path / "symbols")
        assert (await g.submit_order(order("MSFT"))).reject_reason is RejectReason.ROLLOUT_SYMBOL
        assert (await g.submit_order(order("AAPL"))).status is OrderStatus.SUBMITTED
        await g.stop()

        # Position per symbol: 30 reachable (open orders count), 31 not.
        g, _ = await rollout_gateway(tmp_path / "position")
        assert (await g.submit_order(order(qty=20))).status is OrderStatus.SUBMITTED
        assert (await g.submit_order(order(qty=10))).status is OrderStatus.SUBMITTED
        over = await g.submit_order(order(qty=1))
        assert over.reject_reason is RejectReason.ROLLOUT_POSITION
        assert "30" in over.reject_text
        await g.stop()

        # Gross exposure 3000: 30 x 100 exactly passes, a tick more does not.
        plan = PLAN.replace('max_position = "30"', "").replace("max_orders_per_day = 3", "")
        g, _ = await rollout_gateway(tmp_path / "gross", plan.replace('"2500"', '"100000"'))
        assert (await g.submit_order(order(qty=29, price="100"))).status is OrderStatus.SUBMITTED
        at_cap = await g.submit_order(order(qty=1, price="100"))
        assert at_cap.status is OrderStatus.SUBMITTED, at_cap.reject_text
        over = await g.submit_order(order(qty=1, price="0.01"))
        assert over.reject_reason is RejectReason.ROLLOUT_CAPITAL
        assert "gross exposure" in over.reject_text
        await g.stop()

        # Daily traded notional 2500: fills count; an order that would pass it is refused.
        g, _ = await rollout_gateway(tmp_path / "daily", plan)
        filled = await g.submit_order(order(qty=24, price="100.01"))  # crosses: 2400.24 traded
        await settle(g)
        assert g.order(filled.client_order_id).status is OrderStatus.FILLED
        assert g.risk.rollout is not None and g.risk.rollout.usage.traded == D("2400.24")
        passes = await g.submit_order(order(qty=1, price="99.76"))  # 2500.00 exactly
        assert passes.status is OrderStatus.SUBMITTED, passes.reject_text
        over = await g.submit_order(order(qty=1, price="99.77"))
        assert over.reject_reason is RejectReason.ROLLOUT_CAPITAL
        assert "traded today" in over.reject_text
        await g.stop()
        # ... and a restart counts today's fills again, not zero.
        await g.start()
        assert g.risk.rollout.usage.traded == D("2400.24")
        assert g.risk.rollout.usage.orders == 2
        await g.stop()

    asyncio.run(run())


def test_stage_changes_are_journaled_take_effect_on_the_next_order_and_survive_restart(
    tmp_path: Path,
) -> None:
    async def run() -> None:
        g, _ = await rollout_gateway(tmp_path)
        assert g.rollout_stage == "pilot"  # the first stage until one is chosen
        assert (await g.submit_order(order("MSFT"))).reject_reason is RejectReason.ROLLOUT_SYMBOL
        with pytest.raises(ValueError, match="who and why"):
            await g.set_rollout_stage("ramp", "", "")
        with pytest.raises(ValueError, match="no stage 'moon'"):
            await g.set_rollout_stage("moon", "ops", "typo")
        await g.set_rollout_stage("ramp", "ops", "pilot went well")
        assert (await g.submit_order(order("MSFT"))).status is OrderStatus.SUBMITTED
        await g.stop()
        await g.start()
        assert g.rollout_stage == "ramp"
        changes = [e for _, e in g.journal.replay() if type(e).__name__ == "StageChanged"]
        assert [(c.stage, c.who, c.why) for c in changes] == [("ramp", "ops", "pilot went well")]
        await g.stop()

        # A rollback to a file without that stage: back to its first stage, journaled.
        narrower = PLAN.split("[stages.ramp]")[0]
        g2, _ = await rollout_gateway(tmp_path, narrower)
        assert g2.rollout_stage == "pilot"
        last = [e for _, e in g2.journal.replay() if type(e).__name__ == "StageChanged"][-1]
        assert last.who == "livegate" and "'ramp' is not in the rollout file" in last.why
        await g2.stop()

    asyncio.run(run())


# -- files: refused with file:line --------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ('timezone = "Asia/Shanghai"\n[stages.pilot]\nmax_orders_per_day = "x"\n', 3, "int"),
        ('[stages.pilot]\nsymbols = ["A"]\nmax_order = 3\n', 3, "unknown field"),
        ('[stages.pilot]\nwindows = ["9:35-10:30"]\n', 2, "HH:MM-HH:MM"),
        ('timezone = "Mars/Olympus"\n[stages.pilot]\n', 1, "time zone"),
        ('initial = "ramp"\n[stages.pilot]\n', 1, "initial stage"),
        ("[stages.pilot\n", 1, ""),
        ('[stages.pilot]\nmax_position = "-5"\n', 2, ">= 0"),
    ],
)
def test_a_bad_rollout_file_is_refused_with_file_and_line(
    tmp_path: Path, text: str, line: int, words: str
) -> None:
    path = write(tmp_path, "rollout.toml", text)
    with pytest.raises(RolloutError) as caught:
        load_rollout(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert words in message
