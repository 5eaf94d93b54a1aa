"""The gate's thresholds (a TOML gate file) and the shape of its verdict."""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import msgspec

from livegate.ops.profiles import ProfileError

NonNegative = Annotated[float, msgspec.Meta(ge=0, le=10_000)]


class GateFile(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Thresholds; each default is the production checklist's value."""

    trading_days: Annotated[int, msgspec.Meta(ge=1, le=250)] = 1
    connect_before_open_minutes: NonNegative = 0.0
    max_outage_seconds: NonNegative = 60.0
    min_orders_per_day: Annotated[int, msgspec.Meta(ge=1)] = 1
    eod_within_minutes: Annotated[float, msgspec.Meta(gt=0, le=1440)] = 120.0
    rollback_max_age_days: Annotated[float, msgspec.Meta(gt=0, le=365)] = 7.0
    drills_max_age_days: Annotated[float, msgspec.Meta(gt=0, le=365)] = 7.0
    safe_stop_max_age_days: Annotated[float, msgspec.Meta(gt=0, le=365)] = 30.0
    require_webhook: bool = True
    calendar: str = ""  # overrides the profile's


def load_gate_file(path: Path) -> GateFile:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ProfileError(f"{path}: {exc}") from None
    try:
        rules = msgspec.convert(raw.get("gate", raw), GateFile)
    except msgspec.ValidationError as exc:
        raise ProfileError(f"{path}: {exc}") from None
    if rules.calendar:
        from livegate.risk.sessions import known_calendar

        if not known_calendar(rules.calendar):
            raise ProfileError(
                f"{path}: calendar {rules.calendar!r} is not an exchange_calendars code"
                " (XSHG, XNYS, XHKG, ...)"
            )
    return rules


@dataclass
class Criterion:
    name: str
    passed: bool
    evidence: list[str] = field(default_factory=list)
    todo: str = ""  # what to do about a failure


@dataclass
class Verdict:
    adapter: str
    config_id: str
    evaluated_ns: int
    criteria: list[Criterion]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.criteria)

    def summary(self) -> str:
        return "; ".join(f"{c.name} {'pass' if c.passed else 'FAIL'}" for c in self.criteria)


def when(ts_ns: int) -> str:
    return dt.datetime.fromtimestamp(ts_ns / 1e9, ZoneInfo("UTC")).strftime("%Y-%m-%d %H:%M:%SZ")
