"""Recovery: bring our books to the broker's after a start or a reconnect, and keep them so.

Invariants guarded here: fills are counted once (what the broker reports
and we hold is skipped, never recounted; a fill gap is fetched, then
inferred, and the inference is replaced by the real fill, not added to
it); an UNKNOWN order is asked about, resent only to a broker that
refuses a second order with the same client id, else finalized; orders
that are not ours are recorded, never adopted; a live order the broker no
longer lists is closed, never silently believed live.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal

from livegate.broker.errors import BrokerRejected
from livegate.engine.control import read_trading_state_command
from livegate.engine.order_book import external_key
from livegate.engine.parts import Parts
from livegate.engine.pipeline import Pipeline
from livegate.model.enums import OrderStatus, RejectReason
from livegate.model.events import (
    ClosedAtBroker,
    ExternalActivity,
    FillInferred,
    JournalEvent,
    OrderDenied,
    SubmitResent,
    SubmitUnknown,
    TradingStateChanged,
)
from livegate.model.orders import Order
from livegate.model.reports import BrokerReport, CancelRejectReport

log = logging.getLogger("livegate.gateway")

PlaceOutcome = Callable[[str, "str | BaseException | None"], "JournalEvent | None"]


class Recovery:
    def __init__(
        self,
        parts: Parts,
        pipeline: Pipeline,
        place_outcome: PlaceOutcome,
        cancelling: Callable[[str], bool],
    ) -> None:
        self.parts = parts
        self.pipeline = pipeline
        self.place_outcome = place_outcome  # what a resend's answer means (order entry's)
        self.cancelling = cancelling  # whether a cancel of ours is in flight
        # Awaited after every recovery sync (reconciliation plugs in here).
        self.after_recover: list[Callable[[], Awaitable[None]]] = []
        # Awaited at the start of every resolver round (release controls plug in here).
        self.each_round: list[Callable[[], Awaitable[None]]] = []
        self._gap_seen: dict[str, float] = {}  # client_order_id -> monotonic first seen

    async def recover(self, restart: bool = False) -> None:
        """Bring local state to the broker's after a start or reconnect.

        On `restart` no request of ours can still be in flight, so a cancel
        the broker never acted on is known to be lost and the order is live
        again (the strategy may cancel it anew).
        """
        if self.parts.adapter.capabilities.query_by_client_order_id:
            attention = self.pipeline.book.needing_attention()
            for order in [o for o in attention if o.status is OrderStatus.UNKNOWN]:
                report = await self.parts.adapter.order_status(
                    order.client_order_id, order.broker_order_id
                )
                if report is not None:
                    await self.pipeline.record(self.pipeline.received(report, "sync"))
        await self.sync_today_trades()
        await self.sync_open_orders(lost_cancels=restart)
        for hook in list(self.after_recover):
            await hook()

    async def sync_open_orders(self, lost_cancels: bool = False) -> None:
        """Apply the broker's open orders, learn how ours ended, record orders not ours.

        A live order the broker no longer lists is asked about where the
        adapter can; where it cannot, it is closed (CANCELLED) with a
        CLOSED_AT_BROKER anomaly, never silently believed live.
        """
        if not self.parts.adapter.capabilities.lists_orders:
            # Nothing to ask. A cancel cut off by the restart is lost as far as we
            # know; if it did reach the broker, its Cancelled comes with the resend.
            for pending in list(self.pipeline.book.open_orders()):
                if lost_cancels and pending.status is OrderStatus.PENDING_CANCEL:
                    lost = CancelRejectReport(
                        pending.client_order_id, pending.broker_order_id, "cancel lost at restart"
                    )
                    self.pipeline.ingest(lost, "sync")
            await self.pipeline.settle()
            return
        started_ns = self.parts.clock.now_ns()
        broker_open = await self.parts.adapter.open_orders()
        seen: set[str] = set()
        for report in broker_open:
            order = self.pipeline.book.find(report.client_order_id, report.broker_order_id)
            if order is None:
                self._record_external(report)
                continue
            seen.add(order.client_order_id)
            if order.status is not report.status or (report.cum_qty or 0) > order.reported_cum_qty:
                self.pipeline.ingest(report, "sync")
            if (
                order.status is OrderStatus.PENDING_CANCEL
                and not self.cancelling(order.client_order_id)
                and (lost_cancels or order.updated_ns <= started_ns)
            ):
                # Still open at the broker, and no cancel of ours is on its way
                # (one cut off by a drop failed with the connection): it was lost.
                lost = CancelRejectReport(
                    order.client_order_id,
                    order.broker_order_id,
                    "cancel not received by the broker before the connection was lost",
                )
                self.pipeline.ingest(lost, "sync")
        await self.pipeline.settle()
        can_ask = self.parts.adapter.capabilities.query_by_client_order_id
        for order in list(self.pipeline.book.open_orders()):
            if order.client_order_id in seen or order.status is OrderStatus.UNKNOWN:
                continue
            if order.broker_order_id is None and not can_ask:
                continue  # never acknowledged: the unknown-order path owns it
            if order.updated_ns > started_ns:
                continue  # changed after the broker's list was taken
            status = await self.parts.adapter.order_status(
                order.client_order_id, order.broker_order_id
            )
            if status is not None:
                if status.status is not order.status:
                    self.pipeline.ingest(status, "sync")
            elif order.status is not OrderStatus.NEW:
                text = "not among the broker's open orders and unknown to it"
                self.pipeline.record_nowait(
                    ClosedAtBroker(order.client_order_id, text, self.parts.clock.now_ns())
                )
        await self.pipeline.settle()

    async def sync_today_trades(self) -> None:
        """Count the broker's fills we missed; fills we hold are skipped, never recounted."""
        if not self.parts.adapter.capabilities.lists_orders:
            return  # what was missed comes again through the stream (a FIX resend)
        for trade in await self.parts.adapter.today_trades():
            if self.pipeline.book.knows_fill(trade):
                continue
            if self.pipeline.book.find(trade.client_order_id, trade.broker_order_id) is None:
                self._record_external(trade)
            else:
                self.pipeline.ingest(trade, "sync")
        await self.pipeline.settle()

    def _record_external(self, report: BrokerReport) -> None:
        if external_key(report) not in self.pipeline.book.external:
            self.pipeline.record_nowait(ExternalActivity(report, self.parts.clock.now_ns()))

    async def resolve_loop(self) -> None:
        while True:
            await asyncio.sleep(self.parts.config.resolve_interval)
            try:
                await self.resolve_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("resolver round failed; trying again next round")

    async def resolve_once(self) -> None:
        """One round: take control commands, fetch or infer missing fills, settle unknowns."""
        cfg = self.parts.config
        await self.apply_control_commands()
        for hook in list(self.each_round):
            await hook()
        now = time.monotonic()
        attention = self.pipeline.book.needing_attention()
        gaps = [o for o in attention if o.fill_gap > 0]
        for coid in list(self._gap_seen):
            if coid not in {o.client_order_id for o in gaps}:
                del self._gap_seen[coid]
        if gaps:
            for order in gaps:
                self._gap_seen.setdefault(order.client_order_id, now)
            if any(now - self._gap_seen[o.client_order_id] >= cfg.gap_fetch_after for o in gaps):
                await self.sync_today_trades()
            for order in gaps:
                age = now - self._gap_seen.get(order.client_order_id, now)
                if order.fill_gap > 0 and age >= cfg.gap_grace:
                    self.pipeline.record_nowait(
                        FillInferred(
                            order.client_order_id,
                            order.fill_gap,
                            _gap_price(order),
                            self.parts.clock.now_ns(),
                        )
                    )
            await self.pipeline.settle()
        unknown = [
            o for o in self.pipeline.book.needing_attention() if o.status is OrderStatus.UNKNOWN
        ]
        if unknown:
            await self._resolve_unknown(unknown)

    async def apply_control_commands(self) -> None:
        if self.parts.config.control_dir is None:
            return
        command = read_trading_state_command(self.parts.config.control_dir)
        if command is not None and command.command_id not in self.pipeline.book.applied_commands:
            log.warning("trading state -> %s by %s: %s", command.state, command.who, command.why)
            await self.pipeline.record(
                TradingStateChanged(
                    command.state,
                    command.who,
                    command.why,
                    self.parts.clock.now_ns(),
                    command.command_id,
                )
            )

    async def _resolve_unknown(self, unknown: list[Order]) -> None:
        caps = self.parts.adapter.capabilities
        if caps.query_by_client_order_id:
            for order in unknown:
                report = await self.parts.adapter.order_status(order.client_order_id, None)
                if report is not None:
                    self.pipeline.ingest(report, "sync")
        else:
            # Only the broker's lists can tell: is it among the open orders or trades?
            await self.sync_today_trades()
            await self.sync_open_orders()
        await self.pipeline.settle()
        grace_ns = self.parts.clock.ns_for(self.parts.config.unknown_grace)
        now_ns = self.parts.clock.now_ns()
        for order in unknown:
            if order.status is not OrderStatus.UNKNOWN or now_ns - order.updated_ns < grace_ns:
                continue
            coid = order.client_order_id
            if caps.dedups_client_order_id and order.resent == 0:
                # Safe only because the broker refuses a second order with this id.
                await self.pipeline.record(SubmitResent(coid, now_ns))
                await self._resend(order)
            else:
                text = (
                    f"no sign of {coid} at the broker {self.parts.config.unknown_grace:g}s after"
                    " its submit became unknown" + (" and a resend" if order.resent else "")
                )
                await self.pipeline.record(
                    OrderDenied(coid, RejectReason.NOT_FOUND_AT_BROKER, text, now_ns)
                )

    async def _resend(self, order: Order) -> None:
        coid = order.client_order_id
        try:
            async with asyncio.timeout(self.parts.config.place_timeout):
                result: str | BaseException | None = await self.parts.adapter.place(
                    order.to_intent()
                )
        except BrokerRejected as exc:
            if exc.reason is RejectReason.DUPLICATE_CLIENT_ORDER_ID:
                return  # the broker has it after all: its reports or the next round tell us
            result = exc
        except Exception as exc:
            result = exc
        outcome = self.place_outcome(coid, result)
        if outcome is not None and not isinstance(outcome, SubmitUnknown):
            await self.pipeline.record(outcome)


def _gap_price(order: Order) -> Decimal:
    """The price of fills we never saw: from the broker's average where it gave one."""
    avg, cum = order.reported_avg_price, order.reported_cum_qty
    gap = order.fill_gap
    if avg is not None and gap > 0:
        missing = (avg * cum - order.filled_notional) / gap
        if missing > 0:
            return missing
    return avg or order.price or order.avg_fill_price or Decimal(0)
