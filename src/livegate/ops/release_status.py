"""Release controls as `livegate status` and `livegate rollout` show them.

One place renders the stage, its limits and today's use of each cap, the
config in force and the kill switch's last report, from a running gateway
(its status file) or from a journal replayed read-only (a stopped one).
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from livegate.engine.gateway import Gateway
from livegate.engine.order_book import OrderBook
from livegate.risk.engine import RiskEngine


def release_status(gateway: Gateway) -> dict[str, Any]:
    release = gateway.release
    state = gateway.book.release
    return {
        "venue": gateway.venue,
        "config_id": release.config_id if release is not None else None,
        "loaded": {f.role: f.path for f in release.files} if release is not None else {},
        "rollout": rollout_status(gateway.risk, gateway.book, gateway.clock.now_ns()),
        "safe_stop": {
            "pending": state.safe_stop is not None,
            "last": msgspec.to_builtins(state.last_safe_stop) if state.last_safe_stop else None,
        },
    }


def rollout_status(
    risk: RiskEngine, book: OrderBook, now_ns: int | None = None
) -> dict[str, Any] | None:
    """The stage in force, its limits, and what today (as of `now_ns`) used of each cap."""
    guard = risk.rollout
    if guard is None:
        return None
    stage = guard.plan.stage(book.release.stage)
    usage = guard.usage
    today = guard.today(time.time_ns() if now_ns is None else now_ns)
    if usage.day != today:
        usage = type(usage)(today)
    gross, _ = risk.exposure(book.ledger.positions)
    used: dict[str, Any] = {
        "max_orders_per_day": usage.orders,
        "max_daily_notional": str(usage.traded),
        "max_gross_exposure": str(gross),
    }
    return {
        "stage": stage.name,
        "stages": list(guard.plan.stages),
        "timezone": guard.plan.timezone,
        "day": usage.day.isoformat(),
        "limits": stage.limits(),
        "used": {k: v for k, v in used.items() if k in stage.limits()},
    }
