"""Kinds of report the order book refused or parked: stable names (logs, journal, alerts)."""

from __future__ import annotations


class Anomalies:
    """Kinds of report the book refused or parked; names are stable (logs, journal)."""

    DUPLICATE_FILL = "DUPLICATE_FILL"
    STALE_REPORT = "STALE_REPORT"
    INVALID_TRANSITION = "INVALID_TRANSITION"
    OVERFILL = "OVERFILL"
    HELD_UNKNOWN_ORDER = "HELD_UNKNOWN_ORDER"
    BROKER_ID_CONFLICT = "BROKER_ID_CONFLICT"
    FILL_ON_REJECTED = "FILL_ON_REJECTED"
    FILL_INFERRED = "FILL_INFERRED"
    CLOSED_AT_BROKER = "CLOSED_AT_BROKER"
    EXTERNAL_ORDER = "EXTERNAL_ORDER"
    # A broker report impossible on its own (a non-finite or non-positive
    # number, no order named): journaled as received, never applied.
    INVALID_REPORT = "INVALID_REPORT"
    # A report whose symbol or side is not its order's: never applied.
    REPORT_CONTRADICTS_ORDER = "REPORT_CONTRADICTS_ORDER"
    # An event that raised while being applied: skipped, so a replay goes on.
    EVENT_NOT_APPLIED = "EVENT_NOT_APPLIED"


# Kinds that mean the broker said something we refused to book: a person looks.
REFUSED_REPORTS = frozenset(
    {
        Anomalies.INVALID_REPORT,
        Anomalies.REPORT_CONTRADICTS_ORDER,
        Anomalies.OVERFILL,
        Anomalies.BROKER_ID_CONFLICT,
        Anomalies.EVENT_NOT_APPLIED,
    }
)
