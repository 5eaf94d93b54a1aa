"""The whole life of one order, read back from the journal.

Everything that happened to an order is a journal event, so its trace is
a query, not a log search: the intent, the risk decision, the answer to the
send, every report (with the broker's and our timestamps), cancels, the
resolver's decisions, and reconciliation diffs about it or its fills.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from livegate.journal.journal import decode_event
from livegate.journal.store import Record, Store
from livegate.model.events import (
    Anomalies,
    CancelRequested,
    ClosedAtBroker,
    DiffOpened,
    DiffResolved,
    FillInferred,
    JournalEvent,
    OrderDenied,
    Received,
    SubmitResent,
    SubmitUnknown,
)
from livegate.model.orders import OrderIntent
from livegate.model.reports import CancelRejectReport, OrderReport, TradeReport


@dataclass
class TraceLine:
    seq: int
    ts_ns: int  # when it happened, as the event says; else when it was journaled
    what: str
    detail: str
    since_intent_us: float | None = None
    broker_to_us_us: float | None = None  # broker's event time to our receipt


def trace_order(store: Store, client_order_id: str) -> list[TraceLine]:
    records = list(store.read_order(client_order_id))
    ids = {client_order_id}
    lines: list[TraceLine] = []
    for record in records:
        event = decode_event(record.payload)
        if isinstance(event, Received) and event.report.broker_order_id:
            ids.add(event.report.broker_order_id)
        if isinstance(event, Received) and isinstance(event.report, TradeReport):
            ids.add(event.report.dedup_key())
        lines.append(_line(record, event))
    lines += _diffs_about(store, ids)
    lines.sort(key=lambda line: (line.seq, line.ts_ns))
    start = next((line.ts_ns for line in lines if line.what == "intent"), None)
    if start is not None:
        for line in lines:
            line.since_intent_us = (line.ts_ns - start) / 1e3
    return lines


def _diffs_about(store: Store, ids: set[str]) -> Iterable[TraceLine]:
    """Reconciliation diffs name orders and fills as their subject, not as an order id."""
    opened: dict[str, str] = {}
    for record in store.read():
        if record.kind not in ("diff_opened", "diff_resolved", "anomalies"):
            continue
        event = decode_event(record.payload)
        if isinstance(event, DiffOpened) and event.finding.subject in ids:
            opened[event.id] = event.finding.subject
            f = event.finding
            yield TraceLine(
                record.seq,
                event.ts_ns,
                "recon diff",
                f"{event.id} {f.kind} {f.marker} {f.severity}: ours {f.ours}, broker {f.theirs}",
            )
        elif isinstance(event, DiffResolved) and event.id in opened:
            how = "automatically" if event.automatic else f"by {event.who}"
            yield TraceLine(
                record.seq,
                event.ts_ns,
                "recon resolved",
                f"{event.id} {event.resolution} {how}: {event.why}",
            )
        elif isinstance(event, Anomalies):
            for anomaly in event.items:
                if anomaly.client_order_id in ids:
                    yield TraceLine(
                        record.seq, anomaly.ts_ns, "anomaly", f"{anomaly.kind}: {anomaly.detail}"
                    )


def _line(record: Record, event: JournalEvent) -> TraceLine:
    seq, ts = record.seq, record.ts_ns
    if isinstance(event, OrderIntent):
        price = f" @ {event.price}" if event.price is not None else ""
        return TraceLine(
            seq,
            event.ts_ns,
            "intent",
            f"{event.side} {event.quantity} {event.symbol} {event.order_type}"
            f"{price} {event.time_in_force} (journaled before sending)",
        )
    if isinstance(event, Received):
        report = event.report
        lag = (event.received_ns - report.ts_ns) / 1e3 if report.ts_ns else None
        source = f" via {event.source}" if event.source != "stream" else ""
        if event.venue:
            source += f" [{event.venue}: not a real broker's]"
        if isinstance(report, TradeReport):
            what = f"{event.venue} fill" if event.venue else "fill"
            detail = (
                f"{report.quantity} @ {report.price} fee {report.fee} trade {report.dedup_key()}"
            )
        elif isinstance(report, OrderReport):
            what = "acknowledged" if event.source == "place" else "order report"
            detail = f"{report.status} cum {report.cum_qty} broker id {report.broker_order_id}"
            if report.text:
                detail += f": {report.text}"
        else:
            assert isinstance(report, CancelRejectReport)
            what, detail = "cancel refused", report.text
        return TraceLine(seq, event.received_ns, what, detail + source, broker_to_us_us=lag)
    if isinstance(event, OrderDenied):
        return TraceLine(seq, event.ts_ns, "refused", f"{event.reason}: {event.text}")
    if isinstance(event, CancelRequested):
        return TraceLine(seq, event.ts_ns, "cancel requested", "journaled before sending")
    if isinstance(event, SubmitUnknown):
        return TraceLine(seq, event.ts_ns, "submit outcome unknown", event.text)
    if isinstance(event, SubmitResent):
        return TraceLine(seq, event.ts_ns, "resent", "same client id, broker dedups ids")
    if isinstance(event, FillInferred):
        return TraceLine(seq, event.ts_ns, "fill inferred", f"{event.quantity} @ {event.price}")
    if isinstance(event, ClosedAtBroker):
        return TraceLine(seq, event.ts_ns, "closed at broker", event.text)
    return TraceLine(seq, ts, type(event).__name__, "")
