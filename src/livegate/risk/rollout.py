"""Rollout stages: how much a new deployment may do, widened one stage at a time.

A desk's first live days run with small capital, few symbols and short
windows, then widen: `pilot` -> `ramp` -> `full`. The stage in force is
journaled (`StageChanged`), so it survives restarts; its limits come from
the rollout file:

```toml
timezone = "Asia/Shanghai"    # the exchange's clock, for windows and "today"
initial = "pilot"             # the stage before any promotion (default: the first)

[stages.pilot]
symbols = ["600000.SH", "000001.SZ"]
windows = ["09:35-10:30", "13:30-14:50"]   # local; "21:00-02:30" crosses midnight
max_gross_exposure = "200000"               # open orders included
max_daily_notional = "500000"               # traded today, plus this order
max_orders_per_day = 50
max_position = "10000"                      # per symbol, open orders included

[stages.full]                               # no limits: only the risk file's
```

The stage is checked after the trading state and before the risk limits.
A stage limit left out is off. Usage counts what was sent and traded
since the local midnight of `timezone`.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from livegate.model.decimals import ZERO
from livegate.model.enums import OrderStatus, RejectReason
from livegate.model.orders import Order, OrderIntent
from livegate.model.reports import Fill
from livegate.model.where import located

R = RejectReason
Refusal = tuple[RejectReason, str]
_WINDOW = re.compile(r"^(\d{2}:\d{2})-(\d{2}:\d{2})$")

# Refusals before anything was sent: such an order does not count as sent today.
PRE_TRADE = frozenset(
    {
        R.ROLLOUT_SYMBOL, R.ROLLOUT_WINDOW, R.ROLLOUT_CAPITAL, R.ROLLOUT_ORDERS,
        R.ROLLOUT_POSITION, R.RISK_MAX_QTY, R.RISK_MAX_NOTIONAL, R.RISK_POSITION_LIMIT,
        R.RISK_EXPOSURE, R.RISK_MAX_OPEN_ORDERS, R.RISK_RATE_LIMIT, R.RISK_DUPLICATE_ORDER,
        R.PRICE_BAND, R.PRICE_LIMIT, R.SESSION_CLOSED, R.NOT_READY, R.KILL_SWITCH,
        R.REDUCE_ONLY, R.THROTTLED, R.AUTH_FAILED, R.CALLER_CANCELLED,
    }
)  # fmt: skip


class RolloutError(ValueError):
    """The rollout file is invalid; the message says where."""


class Stage(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    symbols: list[str] | None = None
    windows: list[str] | None = None
    max_gross_exposure: Decimal | None = None
    max_daily_notional: Decimal | None = None
    max_orders_per_day: Annotated[int, msgspec.Meta(ge=0)] | None = None
    max_position: Decimal | None = None
    name: str = ""

    def __post_init__(self) -> None:
        for key in ("max_gross_exposure", "max_daily_notional", "max_position"):
            value = getattr(self, key)
            if value is not None and not (value.is_finite() and value >= 0):
                raise ValueError(f"{key} = {str(value)!r}: must be a number >= 0")

    def limits(self) -> dict[str, Any]:
        """The limits this stage sets, for a person (off ones left out)."""
        data: dict[str, Any] = msgspec.to_builtins(self)
        return {k: v for k, v in data.items() if v is not None and k != "name"}


@dataclass(frozen=True)
class Window:
    """[start, end) on the local clock; an end at or before the start crosses midnight."""

    start: dt.time
    end: dt.time

    def contains(self, t: dt.time) -> bool:
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


class RolloutPlan(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    stages: dict[str, Stage]
    timezone: str = "UTC"
    initial: str = ""

    def __post_init__(self) -> None:
        if not self.stages:
            raise ValueError("a rollout file needs at least one [stages.NAME]")
        if self.initial and self.initial not in self.stages:
            raise ValueError(
                f"initial stage {self.initial!r} is not a stage ({', '.join(self.stages)})"
            )
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone {self.timezone!r} is not a known time zone") from None
        for name, stage in self.stages.items():
            for text in stage.windows or []:
                parse_window(text, f"stage {name!r}")

    @property
    def first(self) -> str:
        return self.initial or next(iter(self.stages))

    def stage(self, name: str | None) -> Stage:
        """The named stage, or the first one when none was ever chosen."""
        chosen = name if name in self.stages else self.first
        return msgspec.structs.replace(self.stages[chosen], name=chosen)


def parse_window(text: str, where: str = "") -> Window:
    match = _WINDOW.match(text.strip())
    try:
        if match is None:
            raise ValueError
        return Window(dt.time.fromisoformat(match[1]), dt.time.fromisoformat(match[2]))
    except ValueError:
        raise ValueError(f"{where}: window {text!r}: write HH:MM-HH:MM".lstrip(": ")) from None


def load_rollout(path: Path) -> RolloutPlan:
    """The rollout file, or RolloutError saying file:line and why."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RolloutError(f"{path}: cannot read: {exc}") from None
    try:
        return parse_plan(tomllib.loads(text))
    except (tomllib.TOMLDecodeError, msgspec.ValidationError, ValueError) as exc:
        raise RolloutError(located(path, text, str(exc))) from None


def parse_plan(raw: Mapping[str, Any]) -> RolloutPlan:
    return msgspec.convert(raw, RolloutPlan)


@dataclass
class Usage:
    """What today has used of a stage's caps."""

    day: dt.date
    orders: int = 0
    traded: Decimal = ZERO


class RolloutGuard:
    """Checks orders against the stage in force and counts what today used.

    The risk engine feeds it: `sent` for each order that passed every
    check, `traded` for each fill. Gross exposure and open quantities are
    the risk engine's, handed in, so exposure is computed in one place.
    """

    def __init__(self, plan: RolloutPlan) -> None:
        self.plan = plan
        self.zone = ZoneInfo(plan.timezone)
        self._windows = {
            name: [parse_window(w) for w in stage.windows or []]
            for name, stage in plan.stages.items()
        }
        self.usage = Usage(self.today(0))

    def today(self, now_ns: int) -> dt.date:
        return dt.datetime.fromtimestamp(now_ns / 1e9, self.zone).date()

    def _usage(self, now_ns: int) -> Usage:
        day = self.today(now_ns)
        if self.usage.day != day:
            self.usage = Usage(day)
        return self.usage

    def sent(self, now_ns: int) -> None:
        self._usage(now_ns).orders += 1

    def traded(self, fill: Fill, multiplier: Decimal, now_ns: int) -> None:
        if fill.replaces is not None:
            return  # confirms an inferred fill already counted
        usage = self._usage(now_ns)
        if self.today(fill.ts_ns or now_ns) == usage.day:
            usage.traded += fill.quantity * fill.price * multiplier

    def rebuild(
        self,
        orders: Iterable[Order],
        fills: Iterable[Fill],
        multiplier_of: Any,
        now_ns: int,
        retired: Iterable[tuple[int, int, Decimal]] = (),
    ) -> None:
        """Today's usage from the book, after a restart: its orders and fills, and what
        orders that left memory used (quarter hours: whole in any zone's day)."""
        usage = self.usage = Usage(self.today(now_ns))
        for start_ns, orders_sent, traded in retired:
            if self.today(start_ns) == usage.day:
                usage.orders += orders_sent
                usage.traded += traded
        for order in orders:
            if self.today(order.created_ns) == usage.day and counts_as_sent(order):
                usage.orders += 1
        for fill in fills:
            if fill.replaces is None and self.today(fill.ts_ns or now_ns) == usage.day:
                usage.traded += fill.quantity * fill.price * multiplier_of(fill.symbol)

    def check(
        self,
        intent: OrderIntent,
        stage_name: str | None,
        now_ns: int,
        value: Decimal | None,
        worst_position: Decimal,
        gross_after: Any,
    ) -> Refusal | None:
        """`value`: this order's notional (None: no price to value it);
        `worst_position`: the symbol's position if every same-side order filled;
        `gross_after`: a callable giving gross exposure with this order added."""
        stage = self.plan.stage(stage_name)
        name = stage.name
        if stage.symbols is not None and intent.symbol not in stage.symbols:
            return R.ROLLOUT_SYMBOL, f"{intent.symbol} is not in stage {name!r}'s symbols"
        windows = self._windows[name]
        if windows:
            local = dt.datetime.fromtimestamp(now_ns / 1e9, self.zone)
            if not any(w.contains(local.time()) for w in windows):
                listed = ", ".join(str(w) for w in windows)
                return R.ROLLOUT_WINDOW, (
                    f"{local:%H:%M} {self.plan.timezone} is outside stage {name!r}'s windows"
                    f" ({listed})"
                )
        usage = self._usage(now_ns)
        if stage.max_orders_per_day is not None and usage.orders >= stage.max_orders_per_day:
            return R.ROLLOUT_ORDERS, (
                f"{usage.orders} orders sent today:"
                f" stage {name!r} allows {stage.max_orders_per_day}"
            )
        if stage.max_position is not None and abs(worst_position) > stage.max_position:
            return R.ROLLOUT_POSITION, (
                f"{intent.symbol} position could reach {worst_position}: stage {name!r}"
                f" allows {stage.max_position}"
            )
        needs_value = stage.max_daily_notional is not None or stage.max_gross_exposure is not None
        if needs_value and value is None:
            return R.ROLLOUT_CAPITAL, f"no price to value this order against stage {name!r}'s caps"
        if stage.max_daily_notional is not None:
            traded = usage.traded + value  # type: ignore[operator]
            if traded > stage.max_daily_notional:
                return R.ROLLOUT_CAPITAL, (
                    f"traded today would be {traded}: stage {name!r} allows"
                    f" {stage.max_daily_notional}"
                )
        if stage.max_gross_exposure is not None:
            gross = gross_after()
            if gross > stage.max_gross_exposure:
                return R.ROLLOUT_CAPITAL, (
                    f"gross exposure would be {gross}: stage {name!r} allows"
                    f" {stage.max_gross_exposure}"
                )
        return None


def counts_as_sent(order: Order) -> bool:
    """An order the gateway let out (or tried to): not one refused before sending."""
    return not (
        order.status is OrderStatus.REJECTED
        and order.broker_order_id is None
        and order.reject_reason in PRE_TRADE
    )
