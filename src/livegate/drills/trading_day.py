"""A whole trading day of the profile's calendar, run compressed on a fast clock.

The service (`serve`'s own GatewayService: alerts, intraday and end-of-day
reconciliation, status) starts before the open on a `ScaledClock` and
trades until after the close: an order every `every` seconds while the
market is open (none at lunch), one left resting at the close, and the
close's reconciliation journaled. A day of Shanghai, lunch included, takes
under a minute at speed 400. Only for sim and paper profiles: a real
broker's day cannot be compressed.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from livegate.engine import Gateway
from livegate.model import OrderRequest
from livegate.model.clock import ScaledClock
from livegate.model.errors import LivegateError
from livegate.model.samples import DEMO_START_PRICES
from livegate.ops.profiles import Profile, ProfileError, resolve_webhook
from livegate.ops.service import GatewayService, ServiceConfig
from livegate.ops.wiring import build_gateway
from livegate.risk.sessions import TradingSession, trading_sessions

Hook = Callable[[Gateway], Awaitable[object]]
_DAY_NS = 86_400 * 10**9


@dataclass
class DayPlan:
    day: dt.date | None = None  # None: the latest session that closed before now
    speed: float = 400.0
    start_before_open: float = 15 * 60.0  # seconds of the day; negative: start after it
    stop_after_close: float = 5 * 60.0
    every: float = 15 * 60.0  # an order this often while the market is open
    symbol: str = "AAPL"
    price: Decimal = DEMO_START_PRICES["AAPL"]  # the reference price market orders are valued at
    resting_price: Decimal = Decimal("1.00")  # the order left working at the close
    during: Hook | None = None  # called once, mid-morning (a manual trade at the broker, ...)
    after_close: Hook | None = None  # after the close's reconciliation (a safe-stop drill, ...)


@dataclass
class DayRun:
    session: TradingSession
    orders: int = 0
    seconds: float = 0.0
    refused: list[str] = field(default_factory=list)


def pick_session(calendar: str, day: dt.date | None, now_ns: int) -> TradingSession:
    sessions = trading_sessions(calendar, now_ns - 30 * _DAY_NS, now_ns + 30 * _DAY_NS)
    if day is None:
        done = [s for s in sessions if s.close_ns < now_ns]
        if not done:
            raise ValueError(f"no session of {calendar} closed in the last 30 days")
        return done[-1]
    chosen = [s for s in sessions if s.day == day]
    if not chosen:
        raise ValueError(f"{day} is not a session of {calendar}")
    return chosen[0]


async def run_trading_day(
    profile: Profile, plan: DayPlan, environ: dict[str, str] | None = None
) -> DayRun:
    if profile.environment == "live":
        raise ProfileError(f"profile {profile.name!r} is live: a real day cannot be compressed")
    if not profile.calendar:
        raise ProfileError(f'profile {profile.name!r} names no calendar (calendar = "XSHG")')
    session = pick_session(profile.calendar, plan.day, time.time_ns())
    clock = ScaledClock(session.open_ns - int(plan.start_before_open * 1e9), plan.speed)
    gateway = build_gateway(profile, environ)
    gateway.parts.clock = clock
    service = GatewayService(
        gateway,
        ServiceConfig(
            Path(profile.data_dir),
            environment=profile.environment,
            metrics_port=None,
            webhook=resolve_webhook(profile, environ),
            profile=profile,
            calendar=profile.calendar,
        ),
    )
    run = DayRun(session)
    started = time.monotonic()

    async def day(g: Gateway) -> None:
        g.set_reference_price(plan.symbol, plan.price)
        step = int(plan.every * 1e9)
        side = "BUY"
        at = max(session.open_ns, clock.now_ns()) + step // 2
        during = plan.during  # called once, after the first order
        while at < session.close_ns - step // 2:
            if not any(a <= at < b for a, b in session.breaks):
                await clock.sleep_until(at)
                await _order(
                    g,
                    run,
                    OrderRequest(symbol=plan.symbol, side=side, quantity=1, order_type="MARKET"),
                )
                side = "SELL" if side == "BUY" else "BUY"
                if during is not None:
                    await during(g)
                    during = None
            at += step
        resting = OrderRequest(symbol=plan.symbol, side="BUY", quantity=1, price=plan.resting_price)
        await _order(g, run, resting)
        eod = service.config.eod_after_close + 1
        await clock.sleep_until(session.close_ns + int(eod * 1e9))
        # The close's reconciliation runs on its own task: wait until it is journaled.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and g.book.last_eod != session.day.isoformat():
            await asyncio.sleep(0.05)
        if plan.after_close is not None:
            await plan.after_close(g)
        await clock.sleep_until(session.close_ns + int(plan.stop_after_close * 1e9))

    async def trade(g: Gateway) -> None:
        try:
            await day(g)
        finally:  # a failed hook ends the day too: the service must not run on
            service.request_stop()

    await service.run(trade)
    run.seconds = time.monotonic() - started
    return run


async def _order(g: Gateway, run: DayRun, request: OrderRequest) -> None:
    with contextlib.suppress(LivegateError):
        snapshot = await g.submit_order(request)
        run.orders += 1
        if snapshot.reject_reason is not None:
            run.refused.append(f"{snapshot.client_order_id}: {snapshot.reject_reason}")
