"""Full trading days: which sessions of the calendar this folder traded whole.

A session counts when the gateway was connected from before the open to
after the close (no outage inside longer than the gate allows, a restart
included), orders went out during it, and an end-of-day reconciliation
after its close left no diff unresolved (the last one of that day counts:
a desk that resolves its diffs and reconciles again has a clean day).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from livegate.gate.evidence import Evidence
from livegate.gate.rules import Criterion, GateFile
from livegate.risk.sessions import TradingSession, calendar_timezone, trading_sessions

SHOWN = 5  # sessions listed as evidence, the latest ones


def up_intervals(found: Evidence) -> list[tuple[int, int, int]]:
    """(from, to, seq it came up) of each stretch the broker connection was up.

    A start while up means the previous run died without saying so: its
    stretch ends at that run's last journaled stamp. One still up at the end
    of the journal ends at the journal's last stamp (nothing proves more).
    """
    flips: list[tuple[int, str, int]] = [
        (seq, "up" if e.up else "down", e.ts_ns) for seq, e in found.connections
    ]
    flips += [(seq, "start", found.run_ends.get(seq, e.ts_ns)) for seq, e in found.starts]
    flips.sort()
    stretches: list[tuple[int, int, int]] = []
    since: tuple[int, int] | None = None  # (ts, seq)
    for seq, what, ts in flips:
        if what == "up":
            if since is None:
                since = (ts, seq)
        elif since is not None:
            stretches.append((since[0], max(since[0], ts), since[1]))
            since = None
    if since is not None:
        stretches.append((since[0], max(since[0], found.last_ns), since[1]))
    return stretches


def judge_days(found: Evidence, calendar: str, rules: GateFile, now_ns: int) -> Criterion:
    c = Criterion("trading days", False)
    need = rules.trading_days
    c.todo = (
        f"trade {need} whole session(s) through this folder: serve from before the open to"
        " after the close, send orders, and let the close's reconciliation end clean"
        " (resolve what it finds, then `livegate recon --eod`)"
    )
    if not calendar:
        c.evidence.append("the profile names no exchange calendar")
        c.todo = 'add calendar = "XSHG" (or the exchange\'s code) to the profile'
        return c
    if not found.first_ns:
        c.evidence.append("the journal holds nothing yet")
        return c
    try:
        sessions = trading_sessions(calendar, found.first_ns, now_ns)
        tz = calendar_timezone(calendar)
    except ValueError as exc:
        c.evidence.append(str(exc))
        return c
    done = [s for s in sessions if s.close_ns <= now_ns and s.close_ns >= found.first_ns]
    stretches = up_intervals(found)
    judged = [(s, *_judge(s, found, stretches, rules, tz)) for s in done]
    good = [s for s, ok, _ in judged if ok]
    c.passed = len(good) >= need
    c.evidence.append(
        f"{len(good)} whole session(s) of {calendar} out of {len(done)} since the journal began"
        f" (need {need})"
    )
    for s, ok, text in judged[-SHOWN:]:
        c.evidence.append(f"{'whole' if ok else 'not whole'}: {s.describe(tz)}: {text}")
    if c.passed:
        c.todo = ""
    return c


def _judge(
    s: TradingSession,
    found: Evidence,
    stretches: list[tuple[int, int, int]],
    rules: GateFile,
    tz: str,
) -> tuple[bool, str]:
    zone = ZoneInfo(tz)

    def at(ns: int) -> str:
        return dt.datetime.fromtimestamp(ns / 1e9, zone).strftime("%H:%M:%S")

    need_from = s.open_ns - int(rules.connect_before_open_minutes * 60e9)
    inside = [st for st in stretches if st[1] >= need_from and st[0] <= s.close_ns]
    if not inside:
        return False, "not connected during the session"
    first = inside[0]
    if first[0] > need_from:
        return False, f"connected at {at(first[0])} (seq {first[2]}), after the open"
    outage, worst_at, reach = 0, 0, first[1]
    for stretch in inside[1:]:
        gap = stretch[0] - reach
        if gap > outage:
            outage, worst_at = gap, reach
        reach = max(reach, stretch[1])
    if outage > rules.max_outage_seconds * 1e9:
        return False, (
            f"an outage of {outage / 1e9:.0f}s from {at(worst_at)}"
            f" (longest allowed {rules.max_outage_seconds:g}s)"
        )
    if reach < s.close_ns:
        return False, f"connected until {at(reach)}, before the close"
    orders = sum(1 for ts in found.intents if s.open_ns <= ts <= s.close_ns)
    if orders < rules.min_orders_per_day:
        return False, f"{orders} order(s) sent (at least {rules.min_orders_per_day})"
    limit = s.close_ns + int(rules.eod_within_minutes * 60e9)
    eods = [
        (seq, e)
        for seq, e in found.eods
        if e.trading_day == s.day.isoformat() and s.close_ns <= e.ts_ns <= limit
    ]
    connected = f"connected {at(first[0])} (seq {first[2]}) to {at(reach)}"
    if not eods:
        return False, (
            f"{connected}, {orders} orders; no end-of-day reconciliation within"
            f" {rules.eod_within_minutes:g} min of the close"
        )
    seq, eod = eods[-1]
    if eod.unresolved:
        return False, (
            f"{connected}, {orders} orders; end-of-day reconciliation (seq {seq}) left"
            f" {len(eod.unresolved)} diff(s) unresolved: {', '.join(eod.unresolved)}"
        )
    report = f", report {eod.report}" if eod.report else ""
    return True, (
        f"{connected}, longest outage {outage / 1e9:.0f}s, {orders} orders;"
        f" end-of-day reconciliation seq {seq} clean{report}"
    )
