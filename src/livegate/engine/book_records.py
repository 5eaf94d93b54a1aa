"""Two smaller concerns of the order book: reconciliation diffs, and reports held for
orders not known yet.

Part of `OrderBook` (mixins, like `FillAccounting`: the book is one object on
the hot path, and this keeps the file of each concern readable).
"""

from __future__ import annotations

from collections.abc import Callable

from livegate.engine.anomalies import Anomalies
from livegate.model.diffs import Diff, DiffStatus
from livegate.model.events import DiffAcknowledged, DiffOpened, DiffResolved
from livegate.model.reports import BrokerReport


class DiffRecords:
    """Every diff ever opened, with its history; the book owns the state declared here."""

    diffs: dict[str, Diff]

    def _apply_diff_event(self, event: DiffOpened | DiffAcknowledged | DiffResolved) -> None:
        if isinstance(event, DiffOpened):
            self.diffs[event.id] = Diff(event.id, event.finding, event.ts_ns)
            return
        diff = self.diffs.get(event.id)
        if diff is None:
            return
        if isinstance(event, DiffAcknowledged):
            diff.status = DiffStatus.ACKNOWLEDGED
            diff.history.append(f"acknowledged by {event.who}: {event.why}")
        else:
            diff.status = DiffStatus.RESOLVED
            diff.resolution = event.resolution
            how = "automatically" if event.automatic else f"by {event.who}"
            diff.history.append(
                f"{event.resolution} {how}: {event.why} (before: {event.before};"
                f" after: {event.after})"
            )

    def open_diffs(self) -> list[Diff]:
        return [d for d in self.diffs.values() if d.status is not DiffStatus.RESOLVED]


class HeldReports:
    """Reports for an order we cannot identify yet, applied when its id becomes known."""

    held: dict[str, list[tuple[BrokerReport, int, str]]]
    on_anomaly: Callable[[str, str | None, str], None]

    def _apply_report(self, report: BrokerReport, received_ns: int, source: str) -> None:
        raise NotImplementedError  # the book's

    def _hold(self, report: BrokerReport, received_ns: int, source: str) -> None:
        key = (
            "c:" + report.client_order_id
            if report.client_order_id
            else "b:" + (report.broker_order_id or "")
        )
        self.held.setdefault(key, []).append((report, received_ns, source))
        self.on_anomaly(
            Anomalies.HELD_UNKNOWN_ORDER,
            report.client_order_id,
            f"{type(report).__name__} for unknown order {report.broker_order_id}; held",
        )

    def _release(self, key: str) -> None:
        held = self.held.pop(key, None)
        if held:
            for report, received_ns, source in held:
                self._apply_report(report, received_ns, source)
