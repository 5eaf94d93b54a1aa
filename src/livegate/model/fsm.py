"""The order state machine as an explicit transition table.

A move not in the table never happens. Reports that would need one are
classified: *stale* when they point backwards (a "Submitted" after
"Filled") or come after the order ended (a "Cancelled" after "Filled"),
*invalid* otherwise (a "Rejected" after a partial fill). Both are journaled
and change nothing.

Two moves out of a terminal state exist on purpose: a CANCELLED or EXPIRED
order whose late fills complete it is FILLED, because a cancel cannot
succeed on a fully filled order and the fills are the broker's final word.
PENDING_CANCEL may return to SUBMITTED / PARTIALLY_FILLED only when the
broker refuses the cancel.
"""

from __future__ import annotations

from typing import Final

from livegate.model.enums import OrderStatus as S

_LIVE_TARGETS = frozenset(
    {S.SUBMITTED, S.PARTIALLY_FILLED, S.FILLED, S.PENDING_CANCEL, S.CANCELLED, S.EXPIRED}
)

TRANSITIONS: Final[dict[S, frozenset[S]]] = {
    S.NEW: _LIVE_TARGETS | {S.UNKNOWN, S.REJECTED},
    S.UNKNOWN: _LIVE_TARGETS | {S.REJECTED},
    S.SUBMITTED: _LIVE_TARGETS - {S.SUBMITTED} | {S.REJECTED},
    S.PARTIALLY_FILLED: frozenset({S.FILLED, S.PENDING_CANCEL, S.CANCELLED, S.EXPIRED}),
    S.PENDING_CANCEL: frozenset(
        {S.SUBMITTED, S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.EXPIRED, S.REJECTED}
    ),
    S.FILLED: frozenset(),
    S.CANCELLED: frozenset({S.FILLED}),
    S.REJECTED: frozenset(),
    S.EXPIRED: frozenset({S.FILLED}),
}

# How far along the lifecycle a status is; used only to tell a stale report
# (pointing backwards) from an invalid one.
RANK: Final[dict[S, int]] = {
    S.NEW: 0,
    S.UNKNOWN: 0,
    S.SUBMITTED: 1,
    S.PARTIALLY_FILLED: 2,
    S.PENDING_CANCEL: 2,
    S.FILLED: 3,
    S.CANCELLED: 3,
    S.REJECTED: 3,
    S.EXPIRED: 3,
}


def can_transition(src: S, dst: S) -> bool:
    return dst in TRANSITIONS[src]


def is_stale(current: S, reported: S) -> bool:
    """Behind the order's state, or about an order that has already ended."""
    return RANK[reported] < RANK[current] or (current.is_terminal and reported.is_terminal)
