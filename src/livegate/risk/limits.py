"""Risk limits and their configuration file (TOML), per environment and per account.

```toml
[limits]                      # every account
max_order_qty = "10000"
max_order_notional = "1000000"
max_position = "50000"        # per symbol, counting open orders
max_gross_exposure = "5000000"
max_net_exposure = "2000000"
max_open_orders = 500
max_orders_per_window = 50
max_cancels_per_window = 50
rate_window_seconds = 1.0
duplicate_window_seconds = 0.5
price_band_pct = "0.05"
reference_max_age_seconds = 5.0

[accounts.desk-a]             # overrides for one account
max_position = "5000"

[sessions]
override = "open"             # paper / tests: always open ("closed" to stop)
calendars = { NASDAQ = "XNYS" }
[[sessions.extra]]
exchange = "SHFE"
start = "21:00"
end = "02:30"
tz = "Asia/Shanghai"
weekdays = [0, 1, 2, 3, 4]
```

A limit left out is off. Amounts are decimal strings.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

import msgspec

from livegate.model.where import located
from livegate.risk.sessions import ExtraSession, SessionGuard


class RiskLimits(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    max_order_qty: Decimal | None = None
    max_order_notional: Decimal | None = None
    max_position: Decimal | None = None
    max_gross_exposure: Decimal | None = None
    max_net_exposure: Decimal | None = None
    max_open_orders: int | None = None
    max_orders_per_window: int | None = None
    max_cancels_per_window: int | None = None
    rate_window_seconds: float = 1.0
    duplicate_window_seconds: float | None = None
    price_band_pct: Decimal | None = None
    reference_max_age_seconds: float = 5.0

    def merged(self, override: RiskLimits) -> RiskLimits:
        """This account's limits: the override's fields where it sets them."""
        defaults = RiskLimits()
        changes = {
            f: getattr(override, f)
            for f in self.__struct_fields__
            if getattr(override, f) != getattr(defaults, f)
        }
        return msgspec.structs.replace(self, **changes)


class _ExtraSessionFile(msgspec.Struct, forbid_unknown_fields=True):
    exchange: str
    start: str
    end: str
    tz: str = "UTC"
    weekdays: list[int] = msgspec.field(default_factory=lambda: [0, 1, 2, 3, 4])


class SessionsFile(msgspec.Struct, forbid_unknown_fields=True):
    """Session hours: a risk file's `[sessions]`, or a sessions file of its own."""

    override: str | None = None
    calendars: dict[str, str] = {}
    extra: list[_ExtraSessionFile] = []

    def guard(self) -> SessionGuard:
        extra = [
            ExtraSession(
                e.exchange,
                dt.time.fromisoformat(e.start),
                dt.time.fromisoformat(e.end),
                e.tz,
                frozenset(e.weekdays),
            )
            for e in self.extra
        ]
        return SessionGuard(dict(self.calendars), extra, self.override)


class RiskFile(msgspec.Struct, forbid_unknown_fields=True):
    limits: RiskLimits = RiskLimits()
    accounts: dict[str, RiskLimits] = {}
    sessions: SessionsFile = msgspec.field(default_factory=SessionsFile)

    def for_account(self, account: str) -> RiskLimits:
        override = self.accounts.get(account)
        return self.limits.merged(override) if override else self.limits

    def session_guard(self) -> SessionGuard:
        return self.sessions.guard()


class RiskConfigError(ValueError):
    """The risk file is invalid; says where."""


T = TypeVar("T")


def load_risk_file(path: Path) -> RiskFile:
    return load_toml(path, RiskFile)


def load_sessions_file(path: Path) -> SessionsFile:
    return load_toml(path, SessionsFile)


def load_toml(path: Path, kind: type[T]) -> T:
    """A TOML config file as `kind`, or RiskConfigError saying file:line and why."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RiskConfigError(f"{path}: cannot read: {exc}") from None
    try:
        value = msgspec.convert(tomllib.loads(text), kind, str_keys=True)
        if isinstance(value, SessionsFile | RiskFile):
            _check_sessions(value if isinstance(value, SessionsFile) else value.sessions)
        return value
    except (tomllib.TOMLDecodeError, msgspec.ValidationError, ValueError) as exc:
        raise RiskConfigError(located(path, text, str(exc))) from None


def _check_sessions(sessions: SessionsFile) -> None:
    """Times and overrides fail when the file is read, not at the first order."""
    for extra in sessions.extra:
        for text in (extra.start, extra.end):
            try:
                dt.time.fromisoformat(text)
            except ValueError:
                raise ValueError(f"session time {text!r}: write HH:MM") from None
    sessions.guard()
