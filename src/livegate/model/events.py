"""The events the gateway journals: immutable values, replayed to rebuild state.

Everything that changes an order is one of these, and the order book applies
them in journal order both live and on replay, so a restart rebuilds exactly
the state the process had. Tags are part of the on-disk format: never rename.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgspec

from livegate.model.account import AccountSnapshot
from livegate.model.diffs import Finding, Resolution
from livegate.model.enums import RejectReason, TradingState
from livegate.model.orders import OrderIntent
from livegate.model.reports import BrokerReport


class Received(msgspec.Struct, frozen=True, gc=False, tag="received", omit_defaults=True):
    """A broker report, as it arrived. `source` says how: stream, place, cancel or sync.

    `venue` is "paper" for a report of the paper broker a fallback switched to
    (empty: the configured broker), so a paper fill is never taken for a real one.
    """

    report: BrokerReport
    received_ns: int
    source: str = "stream"
    venue: str = ""


class CancelRequested(msgspec.Struct, frozen=True, tag="cancel_requested"):
    client_order_id: str
    ts_ns: int


class SubmitUnknown(msgspec.Struct, frozen=True, tag="submit_unknown"):
    """The send may or may not have reached the broker; only the broker can tell."""

    client_order_id: str
    text: str
    ts_ns: int


class OrderDenied(msgspec.Struct, frozen=True, tag="denied"):
    """Finished by the gateway's own decision, with no broker report to say so.

    Refused before sending (risk, release controls, broker unreachable), or
    given up after the broker showed no sign of it (NOT_FOUND_AT_BROKER).
    """

    client_order_id: str
    reason: RejectReason
    text: str
    ts_ns: int


class SubmitResent(msgspec.Struct, frozen=True, tag="resent"):
    """An UNKNOWN order sent again under the same id, to a broker that dedups ids."""

    client_order_id: str
    ts_ns: int


class FillInferred(msgspec.Struct, frozen=True, tag="fill_inferred"):
    """Fills the broker's cumulative quantity proves but whose trade reports never came.

    Counted so positions match the broker; replaced (not added to) when the
    real fills arrive.
    """

    client_order_id: str
    quantity: Decimal
    price: Decimal
    ts_ns: int


class ClosedAtBroker(msgspec.Struct, frozen=True, tag="closed_at_broker"):
    """A live order the broker no longer lists and cannot be asked about: closed."""

    client_order_id: str
    text: str
    ts_ns: int


class ExternalActivity(msgspec.Struct, frozen=True, tag="external"):
    """A broker order or trade we never sent: recorded for reconciliation, not adopted."""

    report: BrokerReport
    ts_ns: int


class TradingStateChanged(msgspec.Struct, frozen=True, tag="trading_state"):
    """Who switched the gateway to which trading state, and why."""

    state: TradingState
    who: str
    why: str
    ts_ns: int
    command_id: str = ""  # set when it came from a control command (the CLI)


class DiffOpened(msgspec.Struct, frozen=True, tag="diff_opened"):
    id: str
    finding: Finding
    ts_ns: int


class DiffAcknowledged(msgspec.Struct, frozen=True, tag="diff_acknowledged"):
    id: str
    who: str
    why: str
    ts_ns: int


class DiffResolved(msgspec.Struct, frozen=True, tag="diff_resolved"):
    """How a diff was settled: by whom, why, and the state before and after."""

    id: str
    resolution: Resolution
    who: str
    why: str
    before: str
    after: str
    ts_ns: int
    automatic: bool = False


class LedgerAdjusted(msgspec.Struct, frozen=True, tag="ledger_adjusted"):
    """Our position or cash set to the broker's, by a reconciliation decision."""

    symbol: str | None
    quantity: Decimal | None
    avg_price: Decimal | None
    cash: Decimal | None
    ts_ns: int


class AlertChanged(msgspec.Struct, frozen=True, tag="alert"):
    """An alert raised, escalated, resolved or acknowledged: its history is these events."""

    key: str
    level: str  # P0 cannot trade, P1 state mismatch, P2 degraded
    state: str  # RAISED, ESCALATED, RESOLVED, ACKNOWLEDGED
    text: str
    ts_ns: int
    who: str = ""
    command_id: str = ""  # set when a control command (the CLI) acknowledged it


class AccountBaseline(msgspec.Struct, frozen=True, tag="baseline"):
    """The broker's account at the journal's birth; local books start from it."""

    snapshot: AccountSnapshot


class Anomaly(msgspec.Struct, frozen=True, tag="anomaly", omit_defaults=True):
    """A note that a report was a duplicate, stale, invalid or for an unknown order.

    Derivable from the journal (replay classifies the same way); written so an
    operator can find it without replaying.
    """

    kind: str
    client_order_id: str | None
    detail: str
    ts_ns: int


class Anomalies(msgspec.Struct, frozen=True, tag="anomalies"):
    """The anomalies found while applying one batch, in one record.

    One record per applied batch, not per anomaly: a burst of duplicates must
    not double the journal's writes.
    """

    items: tuple[Anomaly, ...]


class GatewayStarted(msgspec.Struct, frozen=True, tag="started"):
    ts_ns: int
    adapter: str
    version: str


class StageChanged(msgspec.Struct, frozen=True, tag="rollout_stage"):
    """Who moved the gateway to which rollout stage, and why (ops/release.md)."""

    stage: str
    who: str
    why: str
    ts_ns: int
    command_id: str = ""


class SafeStopRequested(msgspec.Struct, frozen=True, tag="safe_stop"):
    """The kill switch: HALTED is journaled before this, then every open order is
    cancelled (and, with `flatten`, positions closed) until a complete report."""

    who: str
    why: str
    flatten: bool
    ts_ns: int
    command_id: str


class SafeStopReport(msgspec.Struct, frozen=True, tag="safe_stop_report"):
    """Where a safe-stop stands: `complete` once nothing it must cancel is open.

    `refused`: "client_order_id: broker's text" for cancels the broker refused;
    `flattened`: the client ids of the closing orders it sent.
    """

    command_id: str
    complete: bool
    cancelled: int
    remaining: tuple[str, ...]
    refused: tuple[str, ...]
    flattened: tuple[str, ...]
    millis: int  # from the command to now (an int: a journaled NaN would not replay)
    ts_ns: int


class ConfigFile(msgspec.Struct, frozen=True):
    """One configuration file as it was when a release started: role, path, content."""

    role: str  # profiles, risk, reference, sessions, rollout
    path: str
    sha256: str
    content: str


class ReleaseRecorded(msgspec.Struct, frozen=True, tag="release"):
    """What a `serve` start ran: versions and every config file's content (credentials
    appear only as the references a profile holds, never their values)."""

    config_id: str  # hash of the files' roles and contents
    livegate_version: str
    python: str
    adapter_module: str
    adapter_version: str
    profile_name: str
    files: tuple[ConfigFile, ...]
    ts_ns: int
    alert_sinks: tuple[str, ...] = ()  # kinds (log, file, webhook), never an address


class VenueChanged(msgspec.Struct, frozen=True, tag="venue", omit_defaults=True):
    """A fallback: orders now go to `venue` ("paper" or "live"), by whom and why.

    `account` is the book the venue starts from: for paper, the live broker's
    positions and cash at the switch; for live, our live books as they were
    left. `paper_book` is the paper broker's file, so a restart reopens it.
    """

    venue: str
    who: str
    why: str
    account: AccountSnapshot
    ts_ns: int
    paper_book: str = ""
    command_id: str = ""


class ConnectionChanged(msgspec.Struct, frozen=True, tag="connection"):
    """The broker connection came up (recovered: orders may go out) or went down.

    The go-live gate reads these to tell a whole trading day from one with a
    hole in it; a clean stop journals a last `up=False`.
    """

    up: bool
    state: str
    ts_ns: int


class EodReconciled(msgspec.Struct, frozen=True, tag="eod_recon"):
    """An end-of-day reconciliation ran: what it found and what was left open.

    `unresolved`: ids of diffs still open when it finished; `report`: where
    its HTML/JSON/CSV report went (empty when none was written).
    """

    trading_day: str
    findings: int
    unresolved: tuple[str, ...]
    report: str
    ts_ns: int


class GateOverridden(msgspec.Struct, frozen=True, tag="gate_override"):
    """`serve --override-gate`: a live start without a passing gate, by whom and why."""

    who: str
    why: str
    config_id: str
    ts_ns: int


class EvidenceRecorded(msgspec.Struct, frozen=True, tag="evidence"):
    """A drill's or a certification's verdict, for the go-live gate."""

    kind: str  # drill, certify
    name: str
    passed: bool
    millis: int
    config_id: str
    detail: str
    ts_ns: int
    command_id: str = ""
    # Who it is about: "module version" of the adapter (certify, the gate) and, for
    # certify, the scenario groups that ran whole with no failure.
    adapter: str = ""
    covers: tuple[str, ...] = ()


class OperatorAction(msgspec.Struct, frozen=True, tag="operator_action"):
    """An operator's action that no other event records (a config rollback writes files
    the gateway reads only at its next start): so every action is in the journal with
    who and why. It changes nothing on replay."""

    action: str
    who: str
    why: str
    detail: str
    ts_ns: int
    command_id: str


JournalEvent = (
    OrderIntent
    | Received
    | CancelRequested
    | SubmitUnknown
    | OrderDenied
    | SubmitResent
    | FillInferred
    | ClosedAtBroker
    | ExternalActivity
    | TradingStateChanged
    | DiffOpened
    | DiffAcknowledged
    | DiffResolved
    | LedgerAdjusted
    | AlertChanged
    | AccountBaseline
    | Anomaly
    | Anomalies
    | GatewayStarted
    | StageChanged
    | SafeStopRequested
    | SafeStopReport
    | ReleaseRecorded
    | EvidenceRecorded
    | VenueChanged
    | ConnectionChanged
    | EodReconciled
    | GateOverridden
    | OperatorAction
)


def _report_client_order_id(event: Any) -> str | None:
    return event.report.client_order_id  # type: ignore[no-any-return]


def _own_client_order_id(event: Any) -> str | None:
    return event.client_order_id  # type: ignore[no-any-return]


def _no_client_order_id(event: Any) -> str | None:
    return None


# Per-type lookups, on the hot path of every journal append.
_CLIENT_ORDER_ID: dict[type, Callable[[Any], str | None]] = {
    Received: _report_client_order_id,
    OrderIntent: _own_client_order_id,
    CancelRequested: _own_client_order_id,
    SubmitUnknown: _own_client_order_id,
    OrderDenied: _own_client_order_id,
    SubmitResent: _own_client_order_id,
    FillInferred: _own_client_order_id,
    ClosedAtBroker: _own_client_order_id,
    ExternalActivity: _report_client_order_id,
    Anomaly: _own_client_order_id,
    Anomalies: _no_client_order_id,
    AccountBaseline: _no_client_order_id,
    TradingStateChanged: _no_client_order_id,
    DiffOpened: _no_client_order_id,
    DiffAcknowledged: _no_client_order_id,
    DiffResolved: _no_client_order_id,
    LedgerAdjusted: _no_client_order_id,
    AlertChanged: _no_client_order_id,
    GatewayStarted: _no_client_order_id,
    StageChanged: _no_client_order_id,
    SafeStopRequested: _no_client_order_id,
    SafeStopReport: _no_client_order_id,
    ReleaseRecorded: _no_client_order_id,
    EvidenceRecorded: _no_client_order_id,
    VenueChanged: _no_client_order_id,
    ConnectionChanged: _no_client_order_id,
    EodReconciled: _no_client_order_id,
    GateOverridden: _no_client_order_id,
}
_KIND: dict[type, str] = {
    kind: str(msgspec.inspect.type_info(kind).tag)  # type: ignore[attr-defined]
    for kind in _CLIENT_ORDER_ID
}


def event_client_order_id(event: JournalEvent) -> str | None:
    """The order an event is about, for the journal's per-order index."""
    return _CLIENT_ORDER_ID[type(event)](event)


def event_kind(event: JournalEvent) -> str:
    """The event's tag: the journal's `kind` column."""
    return _KIND[type(event)]
