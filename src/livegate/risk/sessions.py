"""Is the market open for this instrument now? exchange_calendars, plus our own sessions.

Real exchanges come from `exchange_calendars` (holidays, lunch breaks, half
days included). Its per-call lookup costs microseconds, so the sessions
around today are turned once into UTC nanosecond intervals and checked
with a bisect. Extra sessions (a futures night session, say) are local
times on given weekdays, possibly past midnight. Per-environment overrides
make a paper or test environment always open, or close it.
"""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

_DAY_NS = 86_400_000_000_000
# Exchanges exchange_calendars does not name, mapped to one with the same hours:
# Shenzhen keeps Shanghai's sessions and holidays.
DEFAULT_CALENDARS = {"XSHE": "XSHG", "SZSE": "XSHG", "SSE": "XSHG", "HKEX": "XHKG"}
_WINDOW_DAYS = 10  # sessions cached either side of now


@dataclass(frozen=True)
class ExtraSession:
    """A session of our own: [start, end) local time, on `weekdays` (0 = Monday).

    An end before the start runs past midnight; the weekday is the start's.
    """

    exchange: str
    start: dt.time
    end: dt.time
    tz: str = "UTC"
    weekdays: frozenset[int] = frozenset(range(5))

    def is_open(self, now_ns: int) -> bool:
        local = dt.datetime.fromtimestamp(now_ns / 1e9, ZoneInfo(self.tz))
        t = local.time()
        if self.start <= self.end:
            return local.weekday() in self.weekdays and self.start <= t < self.end
        if t >= self.start:
            return local.weekday() in self.weekdays
        if t < self.end:
            return (local.weekday() - 1) % 7 in self.weekdays
        return False


@dataclass
class _Intervals:
    starts: list[int]
    ends: list[int]
    lo: int
    hi: int


@dataclass
class SessionGuard:
    """`calendar_of` maps an instrument's exchange to a calendar code (XSHG, XNYS, ...).

    `override`: None (use the calendars), "open" (always open, for paper and
    tests), or "closed". Exchanges with neither a calendar nor an extra
    session are open: the guard refuses only where it knows the hours.
    """

    calendar_of: dict[str, str] = field(default_factory=dict)
    extra: list[ExtraSession] = field(default_factory=list)
    override: str | None = None
    _cache: dict[str, _Intervals] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.override not in (None, "open", "closed"):
            raise ValueError(f"session override {self.override!r}: use 'open' or 'closed'")

    def calendar(self, exchange: str) -> str | None:
        code = self.calendar_of.get(exchange) or DEFAULT_CALENDARS.get(exchange, exchange)
        return code if code in _calendar_names() else None

    def is_open(self, exchange: str, now_ns: int) -> bool:
        if self.override is not None:
            return self.override == "open"
        extras = [s for s in self.extra if s.exchange == exchange]
        if any(s.is_open(now_ns) for s in extras):
            return True
        code = self.calendar(exchange)
        if code is None:
            return not extras  # only our own sessions: closed outside them
        intervals = self._intervals(code, now_ns)
        i = bisect.bisect_right(intervals.starts, now_ns) - 1
        return i >= 0 and now_ns < intervals.ends[i]

    def _intervals(self, code: str, now_ns: int) -> _Intervals:
        cached = self._cache.get(code)
        if cached is not None and cached.lo <= now_ns < cached.hi:
            return cached
        lo, hi = now_ns - _WINDOW_DAYS * _DAY_NS, now_ns + _WINDOW_DAYS * _DAY_NS
        starts: list[int] = []
        ends: list[int] = []
        for session in _schedule(code, lo, hi):
            opens = session.open_ns
            for break_start, break_end in session.breaks:
                starts.append(opens)
                ends.append(break_start)
                opens = break_end
            starts.append(opens)
            ends.append(session.close_ns)
        result = _Intervals(starts, ends, lo - lo % _DAY_NS + _DAY_NS, hi - hi % _DAY_NS - _DAY_NS)
        self._cache[code] = result
        return result


@dataclass(frozen=True)
class TradingSession:
    """One session of an exchange calendar, in UTC nanoseconds; `breaks` is lunch."""

    day: dt.date
    open_ns: int
    close_ns: int
    breaks: tuple[tuple[int, int], ...] = ()

    def describe(self, tz: str) -> str:
        zone = ZoneInfo(tz)

        def at(ns: int) -> str:
            return dt.datetime.fromtimestamp(ns / 1e9, zone).strftime("%H:%M")

        lunch = "".join(f", break {at(a)}-{at(b)}" for a, b in self.breaks)
        return f"{self.day} {at(self.open_ns)}-{at(self.close_ns)} {tz}{lunch}"


def known_calendar(code: str) -> bool:
    return code in _calendar_names()


def calendar_timezone(code: str) -> str:
    import exchange_calendars as xcals

    return str(xcals.get_calendar(code).tz)


def trading_sessions(code: str, start_ns: int, end_ns: int) -> list[TradingSession]:
    """The sessions of calendar `code` whose day falls between two instants (inclusive).

    ValueError for a code exchange_calendars does not know.
    """
    if not known_calendar(code):
        raise ValueError(
            f"unknown exchange calendar {code!r} (exchange_calendars codes: XSHG, ...)"
        )
    found = _schedule(code, start_ns - _DAY_NS, end_ns + _DAY_NS)
    return [s for s in found if s.close_ns >= start_ns and s.open_ns <= end_ns]


def _schedule(code: str, lo_ns: int, hi_ns: int) -> list[TradingSession]:
    """The calendar's sessions on the UTC days from `lo_ns` to `hi_ns`, lunch breaks kept."""
    # Imported here: pandas alone is most of a second of start-up, and only
    # instruments with a real exchange calendar ever need it.
    import exchange_calendars as xcals
    import pandas as pd

    calendar = xcals.get_calendar(code)
    lo = max(pd.Timestamp(lo_ns, unit="ns").normalize(), calendar.first_session)
    hi = min(pd.Timestamp(hi_ns, unit="ns").normalize(), calendar.last_session)
    if lo > hi:
        return []
    schedule = calendar.schedule.loc[lo:hi]
    has_breaks = "break_start" in schedule.columns
    found = []
    for day, row in zip(schedule.index, schedule.itertuples(), strict=True):
        breaks: tuple[tuple[int, int], ...] = ()
        if has_breaks and not pd.isna(row.break_start):
            breaks = ((row.break_start.value, row.break_end.value),)
        found.append(TradingSession(day.date(), row.open.value, row.close.value, breaks))
    return found


_NAMES: set[str] = set()


def _calendar_names() -> set[str]:
    if not _NAMES:
        import exchange_calendars as xcals

        _NAMES.update(xcals.get_calendar_names(include_aliases=True))
    return _NAMES
