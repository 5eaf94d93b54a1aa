"""Disagreements between our books and the broker's, as reconciliation finds them."""

from __future__ import annotations

import enum

import msgspec


class DiffKind(enum.StrEnum):
    ORDER = "ORDER"
    TRADE = "TRADE"
    POSITION = "POSITION"
    CASH = "CASH"


class Marker(enum.StrEnum):
    MISSING_LOCAL = "MISSING_LOCAL"  # the broker has it, we do not
    MISSING_BROKER = "MISSING_BROKER"  # we have it, the broker does not
    QTY_MISMATCH = "QTY_MISMATCH"
    PRICE_MISMATCH = "PRICE_MISMATCH"
    STATUS_MISMATCH = "STATUS_MISMATCH"
    CASH_MISMATCH = "CASH_MISMATCH"
    UNVERIFIED = "UNVERIFIED"  # open here; a broker that cannot be asked may not have it


class Severity(enum.StrEnum):
    CRITICAL = "CRITICAL"  # money or risk is wrong: a person must look
    WARNING = "WARNING"
    INFO = "INFO"


class DiffStatus(enum.StrEnum):
    OPEN = "OPEN"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    RESOLVED = "RESOLVED"


class Resolution(enum.StrEnum):
    ADOPT_BROKER = "ADOPT_BROKER"  # make our books say what the broker says
    CANCEL_AT_BROKER = "CANCEL_AT_BROKER"  # an order live at the broker that should not be
    MARK_KNOWN = "MARK_KNOWN"  # an external order or trade someone knows about
    WRITE_OFF = "WRITE_OFF"  # accept the difference, with a note
    CLEARED = "CLEARED"  # it went away by itself (a fill in flight arrived)


class Finding(msgspec.Struct, frozen=True):
    """One difference as a reconciliation run sees it.

    `key` names what differs (kind, marker and subject), so the same
    difference seen by two runs is one diff, not two.
    """

    kind: DiffKind
    marker: Marker
    severity: Severity
    subject: str  # client order id, trade id, symbol or currency
    ours: str
    theirs: str
    detail: str

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.marker}:{self.subject}"


class Diff(msgspec.Struct):
    """A finding with an id and a history: what a person acknowledges and resolves."""

    id: str
    finding: Finding
    opened_ns: int
    status: DiffStatus = DiffStatus.OPEN
    resolution: Resolution | None = None
    history: list[str] = msgspec.field(default_factory=list)
