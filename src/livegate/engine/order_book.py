"""The gateway's state, changed only by applying journaled events in journal order.

Live and on replay the same `apply` runs on the same events in the same
order, so a restart rebuilds exactly what the process knew. Reports that
would move an order backwards, count a fill twice or overfill an order are
classified as anomalies and change nothing. Reports for an order we cannot
identify yet (only a broker id we have not been told) are held and applied
when the id becomes known, not dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal

from livegate.engine.anomalies import Anomalies
from livegate.engine.archive import Anchor, Archive, RetiredOrder
from livegate.engine.book_records import DiffRecords, HeldReports
from livegate.engine.fills import EARLY, FillAccounting
from livegate.engine.release_state import RELEASE_EVENTS, ReleaseState
from livegate.model.account import AccountSnapshot
from livegate.model.decimals import ZERO
from livegate.model.diffs import Diff
from livegate.model.enums import OrderStatus, RejectReason, TradingState
from livegate.model.events import (
    AccountBaseline,
    AlertChanged,
    CancelRequested,
    ClosedAtBroker,
    DiffAcknowledged,
    DiffOpened,
    DiffResolved,
    EodReconciled,
    ExternalActivity,
    FillInferred,
    JournalEvent,
    LedgerAdjusted,
    OperatorAction,
    OrderDenied,
    Received,
    SubmitResent,
    SubmitUnknown,
    TradingStateChanged,
    VenueChanged,
    event_client_order_id,
)
from livegate.model.fsm import RANK, can_transition, is_stale
from livegate.model.instrument import InstrumentRegistry
from livegate.model.ledger import Ledger
from livegate.model.orders import Order, OrderIntent
from livegate.model.reports import (
    BrokerReport,
    CancelRejectReport,
    Fill,
    OrderReport,
    TradeReport,
)
from livegate.model.validation import report_problem

log = logging.getLogger("livegate.book")
S = OrderStatus
OnChange = Callable[[Order, Fill | None], None]
OnAnomaly = Callable[[str, str | None, str], None]


def external_key(report: BrokerReport) -> str:
    """How external activity is told apart: a trade by its key, an order by its ids."""
    if isinstance(report, TradeReport):
        return "trade:" + report.dedup_key()
    return "order:" + (report.broker_order_id or report.client_order_id or "?")


def _ignore_change(order: Order, fill: Fill | None) -> None:
    return None


def _ignore_anomaly(kind: str, client_order_id: str | None, detail: str) -> None:
    return None


def _ignore_control(event: JournalEvent) -> None:
    return None


class OrderBook(FillAccounting, DiffRecords, HeldReports):
    def __init__(
        self,
        instruments: InstrumentRegistry | None = None,
        on_change: OnChange = _ignore_change,
        on_anomaly: OnAnomaly = _ignore_anomaly,
    ) -> None:
        self.instruments = instruments
        self.on_change = on_change
        self.on_anomaly = on_anomaly
        # A trading state or release change applied: a status view refreshes at once.
        self.on_control: Callable[[JournalEvent], None] = _ignore_control
        self.orders: dict[str, Order] = {}
        self.by_broker_id: dict[str, str] = {}
        self.fills: list[Fill] = []
        self.fill_keys: set[str] = set()
        self.ledger = Ledger()
        self.baseline: AccountSnapshot | None = None
        self.held: dict[str, list[tuple[BrokerReport, int, str]]] = {}
        # Orders that may have a fill gap or an unknown outcome: the only ones the
        # resolver looks at, so its rounds cost what is open, not the whole day.
        # Added where either can begin (the broker's cumulative quantity rising,
        # an unknown submit); pruned by `needing_attention`.
        self.attention: set[str] = set()
        # Orders that may be open, in the order they were made: `open_orders` costs what
        # is open, not the day's history (status, alerts and risk ask every second). An
        # order leaves when found terminal; a terminal order never opens again (fsm.py).
        self._maybe_open: dict[str, Order] = {}
        # Broker orders and trades we never sent, by broker id / trade key.
        self.external: dict[str, BrokerReport] = {}
        self.trading_state = TradingState.ACTIVE
        self.applied_commands: set[str] = set()
        self.release = ReleaseState()  # rollout stage, safe-stop, release records
        self.diffs: dict[str, Diff] = {}  # every diff ever, resolved ones included
        self.alerts: list[AlertChanged] = []  # every alert change, in order
        self.last_eod = ""  # the trading day of the latest end-of-day reconciliation
        self._multipliers: dict[str, Decimal] = {}
        self._last_fill_ns: dict[str, int] = {}  # broker time of the latest fill applied
        self.archive: Archive | None = None  # finished orders out of memory (archive.py)
        self.anchor: Anchor | None = None  # the ledger the fills folded away made

    # -- lookups ---------------------------------------------------------
    def held_order(self, client_order_id: str | None, broker_order_id: str | None) -> Order | None:
        """The order if it is in memory."""
        if client_order_id:
            order = self.orders.get(client_order_id)
            if order is not None:
                return order
        if broker_order_id:
            coid = self.by_broker_id.get(broker_order_id)
            if coid is not None:
                return self.orders.get(coid)
        return None

    def find(self, client_order_id: str | None, broker_order_id: str | None) -> Order | None:
        """The order, from memory or, if it was retired (engine/archive.py), brought back
        into memory as it left: whatever happens to it next happens as if it never left."""
        order = self.held_order(client_order_id, broker_order_id)
        if order is not None:
            return order
        if self.archive is not None:
            retired = self.archive.find(client_order_id, broker_order_id)
            if retired is not None:
                return self._reinstate(retired)
        return None

    def lookup(self, client_order_id: str) -> Order | None:
        """The order by client id, from memory or the archive, changing nothing."""
        order = self.orders.get(client_order_id)
        archive = self.archive
        if order is None and archive is not None and not archive.empty:  # (every new id)
            retired = archive.find(client_order_id, None)
            order = retired.order if retired is not None else None
        return order

    def _reinstate(self, retired: RetiredOrder) -> Order:
        """Its fills stay folded into the ledger's anchor; their keys come back for dedup."""
        order = retired.order
        coid = order.client_order_id
        self.orders[coid] = order
        if order.broker_order_id:
            self.by_broker_id[order.broker_order_id] = coid
        self.fill_keys.update(retired.fill_keys)
        if retired.paper:
            self.release.paper_orders.add(coid)
        return order

    def needing_attention(self) -> list[Order]:
        """Orders with a fill gap or an unknown outcome now; the rest leave the index."""
        found = []
        for coid in self.attention:
            order = self.orders.get(coid)
            if order is not None and (order.fill_gap > 0 or order.status is S.UNKNOWN):
                found.append(order)
        if len(found) < len(self.attention):  # a new set: see open_orders
            self.attention = {o.client_order_id for o in found}
        return found

    def open_orders(self) -> list[Order]:
        """The orders still open, oldest first."""
        maybe = self._maybe_open
        found = [o for o in maybe.values() if o.status.is_open]
        if len(found) < len(maybe):
            # A new dict, not deletions: a dict emptied by deleting still costs its
            # old size to iterate (Python never shrinks it).
            self._maybe_open = {o.client_order_id: o for o in found}
        return found

    def reserved_cash(self) -> Decimal:
        return sum(
            (
                o.leaves_qty * o.price
                for o in self.open_orders()
                if o.price is not None and o.side.sign > 0
            ),
            ZERO,
        )

    # -- changes outside the journal order ----------------------------------
    def open_order(self, intent: OrderIntent) -> Order:
        """Register a new order before its intent is durable, for idempotency.

        The gateway calls this synchronously with its duplicate check, so two
        concurrent submits with one id can never both pass; `forget` undoes it
        if the intent could not be journaled.
        """
        order = Order.from_intent(intent)
        self.orders[intent.client_order_id] = order
        self._maybe_open[intent.client_order_id] = order
        if self.release.on_paper:
            self.release.paper_orders.add(intent.client_order_id)
        return order

    def forget(self, client_order_id: str) -> None:
        self.orders.pop(client_order_id, None)
        self._maybe_open.pop(client_order_id, None)

    # -- applying journaled events -------------------------------------------
    def apply(self, event: JournalEvent) -> None:
        """Apply one journaled event; one that cannot be applied becomes an anomaly.

        Live and at start-up replay alike: a journal holding anything at all
        must always replay, so an exception here is never allowed to escape.
        Reports are checked first (`report_problem`), so this is a last guard.
        (One function, not a wrapper around another: this runs for every event.)
        """
        try:
            if isinstance(event, Received):
                self._apply_report(event.report, event.received_ns, event.source)
            elif isinstance(event, OrderIntent):
                if event.client_order_id not in self.orders:
                    made = self.orders[event.client_order_id] = Order.from_intent(event)
                    self._maybe_open[event.client_order_id] = made
                if self.release.on_paper:
                    self.release.paper_orders.add(event.client_order_id)
                self._release("c:" + event.client_order_id)
            elif isinstance(event, CancelRequested):
                self._cancel_requested(event)
            elif isinstance(event, SubmitUnknown):
                order = self.orders.get(event.client_order_id)
                if order is not None and order.status is S.NEW:
                    order.status = S.UNKNOWN
                    order.updated_ns = event.ts_ns
                    self.attention.add(order.client_order_id)
                    self.on_change(order, None)
            elif isinstance(event, OrderDenied):
                self._finish_locally(
                    event.client_order_id, S.REJECTED, event.text, event.ts_ns, event.reason
                )
            elif isinstance(event, AccountBaseline):
                self.baseline = event.snapshot
                self.ledger = Ledger.from_snapshot(event.snapshot)
            elif isinstance(event, DiffOpened | DiffAcknowledged | DiffResolved):
                self._apply_diff_event(event)
            elif isinstance(event, AlertChanged):
                self.alerts.append(event)
                if event.command_id:
                    self.applied_commands.add(event.command_id)
            elif isinstance(event, LedgerAdjusted):
                if event.symbol is not None and event.quantity is not None:
                    self.ledger.set_position(event.symbol, event.quantity, event.avg_price or ZERO)
                if event.cash is not None:
                    self.ledger.cash = event.cash
            elif isinstance(event, RELEASE_EVENTS):
                if isinstance(event, VenueChanged):
                    self.ledger = Ledger.from_snapshot(event.account)  # the venue's own books
                command_id = self.release.apply(event)
                if command_id:
                    self.applied_commands.add(command_id)
                self.on_control(event)
            elif isinstance(event, TradingStateChanged):
                self.trading_state = event.state
                self.release.trading_state(event)
                if event.command_id:
                    self.applied_commands.add(event.command_id)
                self.on_control(event)
            elif isinstance(event, FillInferred):
                self._infer_fill(event)
            elif isinstance(event, SubmitResent):
                order = self.orders.get(event.client_order_id)
                if order is not None:
                    order.resent += 1
            elif isinstance(event, ClosedAtBroker):
                if self._finish_locally(
                    event.client_order_id, S.CANCELLED, event.text, event.ts_ns
                ):
                    self.on_anomaly(Anomalies.CLOSED_AT_BROKER, event.client_order_id, event.text)
            elif isinstance(event, ExternalActivity):
                report = event.report
                key = external_key(report)
                if key not in self.external:
                    self.external[key] = report
                    self.on_anomaly(
                        Anomalies.EXTERNAL_ORDER,
                        report.client_order_id,
                        f"broker {type(report).__name__} {key} was not sent by us",
                    )
            elif isinstance(event, EodReconciled):
                self.last_eod = event.trading_day
            elif isinstance(event, OperatorAction):
                self.applied_commands.add(event.command_id)
            # Anomaly and GatewayStarted are notes for people; they change nothing.
        except Exception as exc:
            log.exception("journaled %s could not be applied", type(event).__name__)
            self.on_anomaly(
                Anomalies.EVENT_NOT_APPLIED,
                event_client_order_id(event),
                f"{type(event).__name__} not applied: {exc!r}",
            )

    def _finish_locally(
        self,
        client_order_id: str,
        status: S,
        text: str,
        ts_ns: int,
        reason: RejectReason | None = None,
    ) -> bool:
        """End an order on the gateway's own decision (no broker report says so)."""
        order = self.orders.get(client_order_id)
        if order is None or not can_transition(order.status, status):
            return False
        order.status = status
        order.reject_reason = reason
        order.reject_text = text
        order.updated_ns = ts_ns
        self.on_change(order, None)
        return True

    def _cancel_requested(self, event: CancelRequested) -> None:
        order = self.orders.get(event.client_order_id)
        if order is None or not can_transition(order.status, S.PENDING_CANCEL):
            return
        order.pre_cancel_status = order.status
        order.status = S.PENDING_CANCEL
        order.updated_ns = event.ts_ns
        self.on_change(order, None)

    def _apply_report(self, report: BrokerReport, received_ns: int, source: str) -> None:
        problem = report_problem(report)
        if problem:
            self.on_anomaly(
                Anomalies.INVALID_REPORT,
                report.client_order_id,
                f"{type(report).__name__} refused: {problem}",
            )
            return
        boid = report.broker_order_id
        coid = report.client_order_id
        owner = self.by_broker_id.get(boid) if boid else None
        archive = self.archive
        if (
            owner is None
            and boid
            and archive is not None
            and not archive.empty
            and self.find(None, boid)
        ):
            owner = self.by_broker_id.get(boid)  # a retired order's id: back in memory
        if owner is not None and coid and owner != coid:
            # Our broker id for one order, in a report naming another (or one we
            # never sent): booking it anywhere would be a guess.
            self.on_anomaly(
                Anomalies.BROKER_ID_CONFLICT,
                coid,
                f"report names broker order {boid}, which is {owner}'s",
            )
            return
        order = self.find(coid, boid)
        if order is None:
            self._hold(report, received_ns, source)
            return
        bound = False
        if boid and order.broker_order_id != boid:
            if order.broker_order_id is not None:
                self.on_anomaly(
                    Anomalies.BROKER_ID_CONFLICT,
                    order.client_order_id,
                    f"report names broker order {boid}, ours is {order.broker_order_id}",
                )
                return
            order.broker_order_id = boid
            self.by_broker_id[boid] = order.client_order_id
            bound = True
        if isinstance(report, TradeReport):
            order.confirmed_ns = max(order.confirmed_ns, received_ns)
            self._apply_trade(order, report, bound)
        elif isinstance(report, OrderReport):
            order.confirmed_ns = max(order.confirmed_ns, received_ns)
            self._apply_order_report(order, report, received_ns, source, bound)
        else:
            self._apply_cancel_reject(order, report, bound)
        if bound:
            self._release("b:" + boid)  # type: ignore[operator]

    def _apply_order_report(
        self, order: Order, report: OrderReport, received_ns: int, source: str, bound: bool
    ) -> None:
        cum = report.cum_qty
        if cum is None and report.status is S.FILLED:
            cum = order.quantity  # FILLED is all of it: fills we lack are a gap to close
        if cum is not None and cum < order.reported_cum_qty:
            # Backwards: an older report arriving late, or a broker miscounting. Either
            # way it changes nothing but a move to an end state, which it may still say.
            self.on_anomaly(
                Anomalies.STALE_REPORT,
                order.client_order_id,
                f"cumulative quantity {cum} after {order.reported_cum_qty}",
            )
            if not report.status.is_terminal:
                if bound:
                    self.on_change(order, None)
                return
        if cum is not None and cum > order.reported_cum_qty:
            order.reported_cum_qty = cum
            self.attention.add(order.client_order_id)
            if report.avg_price is not None:
                order.reported_avg_price = report.avg_price
        current, target = order.status, report.status
        if current is S.PENDING_CANCEL and target in (S.SUBMITTED, S.PARTIALLY_FILLED):
            # The order moved on while our cancel was in flight: if the cancel is
            # refused (or lost), this is the state to go back to, not the older one.
            before = order.pre_cancel_status
            if before is None or RANK[target] > RANK[before]:
                order.pre_cancel_status = target
        if source == "place" and target is S.SUBMITTED:
            # The answer to place() only says "received": any report on the
            # stream may already have overtaken it, which is not staleness.
            target = S.SUBMITTED if current in (S.NEW, S.UNKNOWN) else current
        if target is current or (
            current is S.PENDING_CANCEL and target in (S.SUBMITTED, S.PARTIALLY_FILLED)
        ):
            # Nothing new, or the order still lives while our cancel is in flight.
            if bound:
                self.on_change(order, None)
            return
        if not can_transition(current, target):
            kind = (
                Anomalies.STALE_REPORT
                if is_stale(current, target)
                else (Anomalies.INVALID_TRANSITION)
            )
            self.on_anomaly(kind, order.client_order_id, f"{target} after {current}")
            if bound:
                self.on_change(order, None)
            return
        order.status = target
        if target is S.REJECTED:
            order.reject_reason = report.reject_reason or RejectReason.BROKER_REJECTED
            order.reject_text = report.text
        order.updated_ns = report.ts_ns or received_ns
        self.on_change(order, None)

    def _apply_cancel_reject(self, order: Order, report: CancelRejectReport, bound: bool) -> None:
        if order.status is not S.PENDING_CANCEL:
            if bound:
                self.on_change(order, None)
            return
        previous = order.pre_cancel_status or S.SUBMITTED
        if previous in EARLY and order.filled_qty > 0:
            previous = S.PARTIALLY_FILLED
        order.status = previous
        order.reject_text = report.text
        order.pre_cancel_status = None
        self.on_change(order, None)
