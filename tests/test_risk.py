"""Every rule at its edge, the calendars, reference data, and the chain inside the gateway."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from livegate.engine import GatewayConfig
from livegate.journal import SQLiteStore
from livegate.model import (
    Instrument,
    InstrumentRegistry,
    OrderIntent,
    OrderReport,
    OrderRequest,
    OrderStatus,
    Position,
    RejectReason,
    Side,
)
from livegate.model.enums import OrderType, TimeInForce, TradingState
from livegate.model.errors import CancelRefusedError
from livegate.risk import (
    ExtraSession,
    ReferenceData,
    RiskEngine,
    RiskLimits,
    SessionGuard,
    daily_limits,
    load_instruments,
    load_risk_file,
)
from livegate.risk.reference import ReferenceDataError

from .helpers import scripted_gateway, settle

D = Decimal
R = RejectReason
S = OrderStatus
NOW = pd.Timestamp("2026-11-24 10:00", tz="Asia/Shanghai").value
SEC = 1_000_000_000

INSTRUMENTS = InstrumentRegistry(
    [
        Instrument("AAPL", D("0.01"), exchange="XNYS"),
        Instrument("MSFT", D("0.01"), exchange="XNYS"),
        Instrument("600000.SH", D("0.01"), D(100), D(100), exchange="XSHG", prev_close=D("10.00")),
        Instrument("IF", D("0.2"), multiplier=D(300), exchange="CFFEX"),
    ]
)


def intent(
    qty: int | str = 100,
    price: str | None = "10.00",
    side: Side = Side.BUY,
    symbol: str = "AAPL",
    coid: str = "c",
) -> OrderIntent:
    kind = OrderType.LIMIT if price is not None else OrderType.MARKET
    return OrderIntent(
        coid, "a", symbol, side, kind, D(qty), D(price) if price else None, TimeInForce.DAY, 0
    )


def engine(**limits: object) -> RiskEngine:
    risk = RiskEngine(RiskLimits(**limits), INSTRUMENTS)  # type: ignore[arg-type]
    risk.set_reference_price("AAPL", D("10.00"), NOW)
    risk.set_reference_price("MSFT", D("20.00"), NOW)
    return risk


def code(
    risk: RiskEngine,
    order: OrderIntent,
    positions: dict[str, Position] | None = None,
    now: int = NOW,
    state: TradingState = TradingState.ACTIVE,
) -> RejectReason | None:
    refusal = risk.check(order, positions or {}, now, state)
    return refusal[0] if refusal else None


# -- one rule at a time, exactly at the limit and one step over ------------------


def test_order_quantity() -> None:
    risk = engine(max_order_qty=D(100))
    assert code(risk, intent(100)) is None
    assert code(risk, intent(101)) is R.RISK_MAX_QTY


def test_order_notional_uses_price_multiplier_and_reference_for_market_orders() -> None:
    risk = engine(max_order_notional=D(1000))
    assert code(risk, intent(100, "10.00")) is None
    assert code(risk, intent(100, "10.01")) is R.RISK_MAX_NOTIONAL
    assert code(risk, intent(100, None)) is None  # valued at the 10.00 reference
    assert code(risk, intent(101, None)) is R.RISK_MAX_NOTIONAL
    futures = RiskEngine(RiskLimits(max_order_notional=D(600_000)), INSTRUMENTS)
    assert code(futures, intent(1, "2000.0", symbol="IF")) is None  # 1 x 2000 x 300
    assert code(futures, intent(1, "2000.2", symbol="IF")) is R.RISK_MAX_NOTIONAL
    assert code(futures, intent(1, None, symbol="IF")) is R.RISK_MAX_NOTIONAL  # no price known


def test_position_limit_counts_open_orders_on_the_same_side() -> None:
    risk = engine(max_position=D(500))
    held = {"AAPL": Position("AAPL", D(300), D(10))}
    assert code(risk, intent(200), held) is None
    assert code(risk, intent(201), held) is R.RISK_POSITION_LIMIT
    from livegate.model import Order

    risk.track(Order.from_intent(intent(150, coid="open-buy")))
    assert code(risk, intent(50), held) is None
    assert code(risk, intent(51), held) is R.RISK_POSITION_LIMIT
    assert code(risk, intent(800, side=Side.SELL), held) is None  # 300 - 800 = -500
    assert code(risk, intent(801, side=Side.SELL), held) is R.RISK_POSITION_LIMIT


def test_gross_and_net_exposure_at_reference_prices() -> None:
    risk = engine(max_gross_exposure=D(3000), max_net_exposure=D(1000))
    held = {"MSFT": Position("MSFT", D(-50), D(20))}  # -1000 net, 1000 gross
    assert code(risk, intent(100), held) is None  # +1000: gross 2000, net 0
    assert code(risk, intent(200), held) is None  # gross 3000, net +1000
    assert code(risk, intent(201), held) is R.RISK_EXPOSURE
    assert code(risk, intent(1, side=Side.SELL), held) is R.RISK_EXPOSURE  # net -1010


def test_max_open_orders() -> None:
    from livegate.model import Order

    risk = engine(max_open_orders=2)
    risk.track(Order.from_intent(intent(coid="o1")))
    assert code(risk, intent()) is None
    risk.track(Order.from_intent(intent(coid="o2")))
    assert code(risk, intent()) is R.RISK_MAX_OPEN_ORDERS
    filled = Order.from_intent(intent(coid="o2"))
    filled.status = S.FILLED
    risk.track(filled)
    assert code(risk, intent()) is None


def test_order_rate_over_a_sliding_window() -> None:
    risk = engine(max_orders_per_window=2, rate_window_seconds=1.0)
    for t in (NOW, NOW + SEC // 2):
        assert code(risk, intent(), now=t) is None
        risk.passed(intent(), t)
    assert code(risk, intent(), now=NOW + SEC - 1) is R.RISK_RATE_LIMIT
    assert code(risk, intent(), now=NOW + SEC) is None  # the first one left the window


def test_cancel_rate_and_cancels_are_otherwise_always_allowed() -> None:
    risk = engine(max_cancels_per_window=2, rate_window_seconds=1.0)
    assert risk.check_cancel(NOW) is None
    assert risk.check_cancel(NOW + 1) is None
    refused = risk.check_cancel(NOW + 2)
    assert refused is not None and refused[0] is R.RISK_RATE_LIMIT
    assert risk.check_cancel(NOW + SEC) is None


def test_duplicate_order_guard() -> None:
    risk = engine(duplicate_window_seconds=0.5)
    risk.passed(intent(), NOW)
    assert code(risk, intent(), now=NOW + SEC // 2) is R.RISK_DUPLICATE_ORDER
    assert code(risk, intent(qty=200), now=NOW + 1) is None  # a different order
    assert code(risk, intent(), now=NOW + SEC // 2 + 1) is None


def test_price_band_and_staleness() -> None:
    risk = engine(price_band_pct=D("0.05"), reference_max_age_seconds=5)
    assert code(risk, intent(price="10.50")) is None
    assert code(risk, intent(price="9.50")) is None
    assert code(risk, intent(price="10.51")) is R.PRICE_BAND
    assert code(risk, intent(price="9.49")) is R.PRICE_BAND
    assert code(risk, intent(price="10.00"), now=NOW + 5 * SEC + 1) is R.PRICE_BAND  # stale
    assert code(risk, intent(price=None)) is None  # market orders carry no price to band


def test_daily_price_limits() -> None:
    risk = engine()
    a_share = dict(symbol="600000.SH", qty=100)
    assert code(risk, intent(price="11.00", **a_share)) is None  # type: ignore[arg-type]
    assert code(risk, intent(price="11.01", **a_share)) is R.PRICE_LIMIT  # type: ignore[arg-type]
    assert code(risk, intent(price="9.00", **a_share)) is None  # type: ignore[arg-type]
    assert code(risk, intent(price="8.99", **a_share)) is R.PRICE_LIMIT  # type: ignore[arg-type]


def test_trading_states() -> None:
    risk = engine()
    long = {"AAPL": Position("AAPL", D(100), D(10))}
    assert code(risk, intent(), long, state=TradingState.HALTED) is R.KILL_SWITCH
    reducing = TradingState.REDUCING
    assert code(risk, intent(100, side=Side.SELL), long, state=reducing) is None
    assert code(risk, intent(101, side=Side.SELL), long, state=reducing) is R.REDUCE_ONLY
    assert code(risk, intent(1), long, state=reducing) is R.REDUCE_ONLY


def test_session_closed_refuses() -> None:
    risk = RiskEngine(RiskLimits(), INSTRUMENTS, SessionGuard())
    lunch = pd.Timestamp("2026-11-24 12:00", tz="Asia/Shanghai").value
    a_share = intent(100, "10.00", symbol="600000.SH")
    assert code(risk, a_share, now=NOW) is None
    assert code(risk, a_share, now=lunch) is R.SESSION_CLOSED


# -- calendars ------------------------------------------------------------------


def at(text: str) -> int:
    return int(pd.Timestamp(text).value)


@pytest.mark.parametrize(
    ("exchange", "when", "open_"),
    [
        ("XSHG", "2026-11-24 09:30+08:00", True),
        ("XSHG", "2026-11-24 11:29+08:00", True),
        ("XSHG", "2026-11-24 11:30+08:00", False),  # lunch
        ("XSHG", "2026-11-24 13:00+08:00", True),
        ("XSHG", "2026-11-24 15:00+08:00", False),
        ("XSHE", "2026-10-01 10:00+08:00", False),  # National Day
        ("XSHG", "2026-11-28 10:00+08:00", False),  # a Saturday
        ("XHKG", "2026-11-24 12:30+08:00", False),  # lunch
        ("XHKG", "2026-12-25 10:00+08:00", False),  # Christmas
        ("XNYS", "2026-11-26 10:00-05:00", False),  # Thanksgiving
        ("XNYS", "2026-11-27 12:59-05:00", True),  # half day...
        ("XNYS", "2026-11-27 13:00-05:00", False),  # ...closes at 13:00
        ("XNYS", "2026-11-24 15:59-05:00", True),
    ],
)
def test_calendars(exchange: str, when: str, open_: bool) -> None:
    assert SessionGuard().is_open(exchange, at(when)) is open_


def test_night_session_past_midnight_and_overrides() -> None:
    night = ExtraSession("SHFE", dt.time(21), dt.time(2, 30), "Asia/Shanghai")
    guard = SessionGuard(extra=[night])
    assert guard.is_open("SHFE", at("2026-11-27 21:00+08:00"))  # Friday night
    assert guard.is_open("SHFE", at("2026-11-28 02:29+08:00"))  # ...into Saturday
    assert not guard.is_open("SHFE", at("2026-11-28 02:30+08:00"))
    assert not guard.is_open("SHFE", at("2026-11-28 21:00+08:00"))  # Saturday night
    assert not guard.is_open("SHFE", at("2026-11-24 15:00+08:00"))
    assert SessionGuard(override="open").is_open("XSHG", at("2026-10-01 10:00+08:00"))
    assert not SessionGuard(override="closed").is_open("XNYS", at("2026-11-24 10:00-05:00"))
    assert SessionGuard().is_open("NOWHERE", at("2026-11-28 10:00+08:00"))  # unknown: open
    mapped = SessionGuard(calendar_of={"SSE": "XSHG"})
    assert not mapped.is_open("SSE", at("2026-11-24 12:00+08:00"))


# -- reference data -------------------------------------------------------------


def test_a_share_limits_by_board_rounded_half_up_to_the_tick() -> None:
    def limits(symbol: str, prev: str, **kw: object) -> tuple[Decimal, Decimal] | None:
        return daily_limits(Instrument(symbol, D("0.01"), prev_close=D(prev), **kw))  # type: ignore[arg-type]

    assert limits("600000.SH", "10.00") == (D("9.00"), D("11.00"))
    assert limits("600000.SH", "10.05") == (D("9.05"), D("11.06"))  # 9.045 and 11.055
    assert limits("688001.SH", "10.00") == (D("8.00"), D("12.00"))
    assert limits("300750.SZ", "10.00") == (D("8.00"), D("12.00"))
    assert limits("600001.SH", "10.00", board="st") == (D("9.50"), D("10.50"))
    assert limits("AAPL", "10.00") is None
    given = Instrument("X", D("0.01"), limit_up=D(12), limit_down=D(8), prev_close=D(10))
    assert daily_limits(given) == (D(8), D(12))


def test_reference_files_load_refuse_bad_rows_and_reload_all_or_nothing(tmp_path: Path) -> None:
    csv_file = tmp_path / "paper.csv"
    csv_file.write_text(
        "symbol,exchange,tick_size,lot_size,min_qty,prev_close,currency\n"
        "600000.SH,XSHG,0.01,100,100,10.00,CNY\n"
        "AAPL,XNYS,0.01,1,1,,USD\n"
    )
    data = ReferenceData(csv_file)
    registry = data.registry
    assert registry.get("600000.SH").lot_size == 100
    assert daily_limits(registry.get("600000.SH")) == (D("9.00"), D("11.00"))

    csv_file.write_text("symbol,tick_size\nAAPL,abc\n")
    with pytest.raises(ReferenceDataError, match=r"paper.csv:2: tick_size='abc'"):
        data.reload()
    assert "600000.SH" in registry  # the old data is still in force
    csv_file.write_text("symbol,tick_size\nMSFT,0.01\n")
    assert data.reload() is registry and "MSFT" in registry and "AAPL" not in registry

    toml_file = tmp_path / "live.toml"
    toml_file.write_text('[[instrument]]\nsymbol = "IF"\ntick_size = "0.2"\nmultiplier = "300"\n')
    assert load_instruments(toml_file)[0].multiplier == 300
    toml_file.write_text('[[instrument]]\nsymbol = "IF"\ntick_size = 0.2\n')
    with pytest.raises(ReferenceDataError, match="write decimals as strings"):
        load_instruments(toml_file)
    (tmp_path / "dup.csv").write_text("symbol,tick_size\nA,0.01\nA,0.01\n")
    with pytest.raises(ReferenceDataError, match="listed twice"):
        load_instruments(tmp_path / "dup.csv")


def test_risk_file_with_account_overrides_and_sessions(tmp_path: Path) -> None:
    path = tmp_path / "risk.toml"
    path.write_text(
        '[limits]\nmax_order_qty = "1000"\nmax_position = "5000"\n'
        '[accounts.desk-a]\nmax_position = "200"\n'
        '[sessions]\noverride = "open"\n'
        '[[sessions.extra]]\nexchange = "SHFE"\nstart = "21:00"\nend = "02:30"\n'
    )
    risk_file = load_risk_file(path)
    assert risk_file.for_account("desk-a") == RiskLimits(max_order_qty=D(1000), max_position=D(200))
    assert risk_file.for_account("other").max_position == 5000
    assert risk_file.session_guard().override == "open"
    path.write_text('[limits]\nmax_order_qtty = "1"\n')
    with pytest.raises(ValueError, match="max_order_qtty"):
        load_risk_file(path)


# -- inside the gateway ------------------------------------------------------------


def test_a_refusal_is_a_rejected_order_that_never_reaches_the_broker() -> None:
    async def run() -> None:
        gateway, broker = scripted_gateway()
        gateway.risk.limits = RiskLimits(max_order_qty=D(10))
        seen: list[object] = []
        gateway.on_order(seen.append)
        await gateway.start()
        order = await gateway.submit_order(
            OrderRequest(symbol="AAPL", side="BUY", quantity=11, price="1.00", client_order_id="r")
        )
        assert order.status is S.REJECTED and order.reject_reason is R.RISK_MAX_QTY
        assert "11 > max_order_qty 10" in order.reject_text
        assert "r" not in broker.placed and seen[-1].status is S.REJECTED  # type: ignore[attr-defined]
        basket = await gateway.submit_orders(
            [
                OrderRequest(symbol="AAPL", side="BUY", quantity=5, price="1.00"),
                OrderRequest(symbol="AAPL", side="BUY", quantity=50, price="1.00"),
            ]
        )
        assert [o.status for o in basket] == [S.SUBMITTED, S.REJECTED]
        assert len(broker.placed) == 1
        await gateway.stop()

    asyncio.run(run())


def test_halted_refuses_orders_allows_cancels_and_survives_a_restart(tmp_path: Path) -> None:
    async def run() -> None:
        store = SQLiteStore(tmp_path / "j.sqlite")
        gateway, _ = scripted_gateway(store)
        await gateway.start()
        await gateway.submit_order(
            OrderRequest(symbol="AAPL", side="BUY", quantity=1, price="1.00", client_order_id="o")
        )
        await gateway.set_trading_state("halted", who="risk-desk", why="broker outage")
        refused = await gateway.submit_order(
            OrderRequest(symbol="AAPL", side="BUY", quantity=1, price="1.00")
        )
        assert refused.reject_reason is R.KILL_SWITCH
        assert (await gateway.cancel_order("o")).status is S.PENDING_CANCEL
        with pytest.raises(ValueError, match="who and why"):
            await gateway.set_trading_state("ACTIVE", who="", why="")
        await gateway.stop()

        again, _ = scripted_gateway(SQLiteStore(tmp_path / "j.sqlite"))
        await again.start()
        assert again.trading_state is TradingState.HALTED
        await again.set_trading_state(TradingState.ACTIVE, who="risk-desk", why="broker back")
        ok = await again.submit_order(
            OrderRequest(symbol="AAPL", side="BUY", quantity=1, price="1.00")
        )
        assert ok.status is S.SUBMITTED
        await again.stop()

    asyncio.run(run())


def test_cancel_rate_limit_raises_a_clear_error() -> None:
    async def run() -> None:
        gateway, broker = scripted_gateway(config=GatewayConfig())
        gateway.risk.limits = RiskLimits(max_cancels_per_window=1, rate_window_seconds=60)
        await gateway.start()
        for coid in ("x", "y"):
            await gateway.submit_order(
                OrderRequest(
                    symbol="AAPL", side="BUY", quantity=1, price="1.00", client_order_id=coid
                )
            )
        await gateway.cancel_order("x")
        with pytest.raises(CancelRefusedError, match="max_cancels_per_window") as refused:
            await gateway.cancel_order("y")
        assert refused.value.reason == R.RISK_RATE_LIMIT
        assert broker.cancels == {"x": 1}
        broker.push(OrderReport(S.CANCELLED, "x", "B-x"))
        await settle(gateway)
        await gateway.stop()

    asyncio.run(run())


def test_trading_state_from_the_cli_is_applied_once_by_the_gateway(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from livegate.cli.main import app

    runner = CliRunner()
    control = tmp_path / "control"

    async def run() -> None:
        config = GatewayConfig(control_dir=control, resolve_interval=3600)
        gateway, _ = scripted_gateway(SQLiteStore(tmp_path / "journal.sqlite"), config)
        await gateway.start()
        said = runner.invoke(
            app,
            # --wait 0: the gateway runs on this very loop, so it cannot answer now
            [
                "trading-state",
                "halted",
                "--dir",
                str(tmp_path),
                "--who",
                "ops",
                "--why",
                "drill",
                "--wait",
                "0",
            ],
        )
        assert said.exit_code == 0, said.output
        assert gateway.trading_state is TradingState.ACTIVE  # not before the next round
        await gateway.resolve_once()
        assert gateway.trading_state is TradingState.HALTED
        await gateway.set_trading_state("ACTIVE", who="ops", why="drill over")
        await gateway.resolve_once()  # the same command is not applied again
        assert gateway.trading_state is TradingState.ACTIVE
        await gateway.stop()

        # A command left while the gateway is down holds from its next start.
        down = runner.invoke(
            app, ["trading-state", str(tmp_path), "REDUCING", "--who", "o", "--why", "w"]
        )  # the deprecated form still works; no gateway runs to confirm it
        assert down.exit_code == 3 and "no gateway is running" in down.output
        assert "deprecated" in down.output
        again, _ = scripted_gateway(SQLiteStore(tmp_path / "journal.sqlite"), config)
        await again.start()
        assert again.trading_state is TradingState.REDUCING
        await again.stop()

    asyncio.run(run())
    shown = runner.invoke(app, ["trading-state", "--dir", str(tmp_path)])
    assert "trading state: REDUCING" in shown.output
    assert "HALTED   by ops: drill" in shown.output
    refused = runner.invoke(app, ["trading-state", "HALTED", "--dir", str(tmp_path)])
    assert refused.exit_code == 2 and "--who and --why" in refused.output
    bad = runner.invoke(
        app, ["trading-state", "PAUSED", "--dir", str(tmp_path), "--who", "a", "--why", "b"]
    )
    assert bad.exit_code == 2


def test_outside_a_session_orders_are_refused_and_cancels_still_go_out() -> None:
    async def run() -> None:
        gateway, broker = scripted_gateway()
        await gateway.start()
        await gateway.submit_order(
            OrderRequest(symbol="AAPL", side="BUY", quantity=1, price="1.00", client_order_id="o")
        )
        gateway.risk.sessions = SessionGuard(override="closed")
        refused = await gateway.submit_order(
            OrderRequest(symbol="AAPL", side="BUY", quantity=1, price="1.00")
        )
        assert refused.status is S.REJECTED and refused.reject_reason is R.SESSION_CLOSED
        assert (await gateway.cancel_order("o")).status is S.PENDING_CANCEL
        assert broker.cancels == {"o": 1} and len(broker.placed) == 1
        await gateway.stop()

    asyncio.run(run())
