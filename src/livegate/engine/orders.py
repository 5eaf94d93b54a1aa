"""Order entry: admit, check, journal the intent, send, and read what the answer means.

Invariants guarded here: one client_order_id maps to at most one broker
order, ever (a duplicate of a working order returns it, a finished order's
id is refused, and nothing is resent under a new id); no send without a
journaled intent (write-ahead); a timeout is not a rejection (UNKNOWN,
asked about by recovery); at most one cancel in flight per order.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from livegate.broker.errors import (
    BrokerAuthError,
    BrokerNetworkError,
    BrokerRejected,
    BrokerThrottled,
)
from livegate.engine.deadlines import Deadlines
from livegate.engine.parts import Parts
from livegate.engine.pipeline import Pipeline
from livegate.engine.retry import TokenBucket, call_with_retry
from livegate.engine.supervisor import Supervisor
from livegate.model.enums import OrderStatus, RejectReason
from livegate.model.errors import (
    CancelRefusedError,
    DuplicateClientOrderIdError,
    JournalError,
    OrderNotFoundError,
)
from livegate.model.events import (
    CancelRequested,
    JournalEvent,
    OrderDenied,
    SubmitUnknown,
)
from livegate.model.orders import Order, OrderIntent, OrderRequest, OrderSnapshot
from livegate.model.reports import CancelRejectReport, OrderReport
from livegate.model.validation import validate_request

log = logging.getLogger("livegate.gateway")
T = TypeVar("T")


class OrderEntry:
    def __init__(self, parts: Parts, pipeline: Pipeline, supervisor: Supervisor) -> None:
        self.parts = parts
        self.pipeline = pipeline
        self.supervisor = supervisor  # read for readiness only
        cfg = parts.config
        self._place_deadlines = Deadlines(cfg.place_timeout)
        self._cancel_deadlines = Deadlines(cfg.cancel_timeout)
        self._cancels_in_flight: dict[str, asyncio.Future[None]] = {}
        self._bucket = (
            TokenBucket(cfg.broker_rate_limit, cfg.broker_rate_burst)
            if cfg.broker_rate_limit
            else None
        )
        self.throttled = 0  # requests the broker throttled at least once
        # Set while the broker is being switched (a fallback): new orders are refused
        # NOT_READY with this text, never sent to the broker being left.
        self.paused = ""
        self.placing = 0  # places on the wire now
        self._id_prefix = secrets.token_hex(4)
        self._id_counter = 0

    def cancelling(self, client_order_id: str) -> bool:
        """A cancel of ours for this order is on its way."""
        return client_order_id in self._cancels_in_flight

    def new_client_order_id(self) -> str:
        while True:
            self._id_counter += 1
            coid = f"LG{self._id_prefix}{self._id_counter:08d}"
            if self.pipeline.book.lookup(coid) is None:
                return coid

    async def submit(self, request: OrderRequest, reduce_only: bool = False) -> OrderSnapshot:
        """Gateway.submit_order: at most one broker order per client_order_id.

        `reduce_only`: a safe-stop's closing order (passes HALTED if it reduces)."""
        existing, intent = self._admit(request, set())
        if intent is None:
            return existing  # type: ignore[return-value]
        refusal = self._risk_check(intent, reduce_only)
        order = self.pipeline.book.open_order(intent)
        self.parts.risk.track(order)
        coid = intent.client_order_id
        try:
            await self.pipeline.record(intent)
        except JournalError:
            self.pipeline.book.forget(coid)  # never durable, never sent
            self.parts.risk.forget(coid)
            raise
        except asyncio.CancelledError:
            # The intent is durable (the journal's future outlives a cancelled
            # waiter), the order never went out: it ends here, with the reason.
            self.pipeline.record_nowait(
                OrderDenied(
                    coid,
                    RejectReason.CALLER_CANCELLED,
                    "the caller gave up before the order was sent",
                    self.parts.clock.now_ns(),
                )
            )
            raise
        if self.parts.metrics is not None:
            self.parts.metrics.orders_submitted.value += 1  # not .inc(): a call costs more
        if self.parts.order_log is not None:
            self.parts.order_log.submit(intent)
        if refusal is None and (self.paused or not self.supervisor.ready):
            refusal = (
                RejectReason.NOT_READY,
                self.paused or "broker connection is down or recovering",
            )
        if refusal is not None:
            reason, text = refusal
            await self.pipeline.record(OrderDenied(coid, reason, text, self.parts.clock.now_ns()))
            return order.snapshot()
        deadlines = self._place_deadlines
        deadlines.arm(coid)  # covers the adapter call only, never our own journal waits
        self.placing += 1
        try:
            if self._bucket is not None:
                await self._bucket.acquire()
            self.parts.journal.fence()  # paused past its lease: sends nothing
            try:
                result: str | BaseException | None = await self.parts.adapter.place(intent)
            except (BrokerNetworkError, BrokerThrottled) as first:
                result = await self._retry(first, lambda: self.parts.adapter.place(intent))
        except asyncio.CancelledError:
            if not deadlines.expired(coid):
                # The caller gave up mid-send; whether it went out is unknown.
                self.pipeline.record_nowait(
                    SubmitUnknown(coid, "caller cancelled", self.parts.clock.now_ns())
                )
                raise
            result = TimeoutError(f"place timed out after {deadlines.timeout}s")
        except Exception as exc:
            result = exc
        finally:
            deadlines.disarm(coid)
            self.placing -= 1
        outcome = self.place_outcome(coid, result)
        if outcome is not None:
            await self.pipeline.record(outcome)
        return order.snapshot()

    async def submit_many(self, requests: Sequence[OrderRequest]) -> list[OrderSnapshot]:
        """A basket (Gateway.submit_orders): validated whole, one journal wait for
        all intents, one adapter call (`place_many` where the adapter has it)."""
        admitted: list[tuple[OrderSnapshot | None, OrderIntent | None]] = []
        seen: set[str] = set()
        for request in requests:
            admitted.append(self._admit(request, seen))
        intents = [intent for _, intent in admitted if intent is not None]
        refusals: dict[str, tuple[RejectReason, str]] = {}
        orders = []
        for intent in intents:  # in order: each order uses up room for the next
            refusal = self._risk_check(intent)
            if refusal is not None:
                refusals[intent.client_order_id] = refusal
            order = self.pipeline.book.open_order(intent)
            self.parts.risk.track(order)
            orders.append(order)
        if intents:
            try:
                for intent in intents[:-1]:
                    self.pipeline.record_nowait(intent)
                await self.pipeline.record(intents[-1])  # batches commit in order
            except JournalError:
                for intent in intents:
                    self.pipeline.book.forget(intent.client_order_id)
                    self.parts.risk.forget(intent.client_order_id)
                raise
            if self.parts.metrics is not None:
                self.parts.metrics.orders_submitted.inc(len(intents))
            if self.parts.order_log is not None:
                for intent in intents:
                    self.parts.order_log.submit(intent, basket=True)
            now = self.parts.clock.now_ns()
            outcomes: list[JournalEvent] = [
                OrderDenied(coid, reason, text, now) for coid, (reason, text) in refusals.items()
            ]
            to_send = [i for i in intents if i.client_order_id not in refusals]
            results: Sequence[str | BaseException | None] = []
            if to_send and self.supervisor.ready and not self.paused:
                self.placing += 1
                try:
                    results = await self._place_basket(to_send)
                finally:
                    self.placing -= 1
            elif to_send:
                down = BrokerNetworkError(self.paused or "broker connection is down or recovering")
                results = [down] * len(to_send)
            outcomes += [
                outcome
                for intent, result in zip(to_send, results, strict=True)
                if (outcome := self.place_outcome(intent.client_order_id, result)) is not None
            ]
            for outcome in outcomes[:-1]:
                self.pipeline.record_nowait(outcome)
            if outcomes:
                await self.pipeline.record(outcomes[-1])
        placed = iter(orders)
        return [
            existing if intent is None else next(placed).snapshot()  # type: ignore[misc]
            for existing, intent in admitted
        ]

    def _risk_check(
        self, intent: OrderIntent, reduce_only: bool = False
    ) -> tuple[RejectReason, str] | None:
        now = self.parts.clock.now_ns()
        book = self.pipeline.book
        refusal = self.parts.risk.check(
            intent,
            book.ledger.positions,
            now,
            book.trading_state,
            book.release.stage,
            reduce_only,
        )
        if refusal is None:
            self.parts.risk.passed(intent, now)
        return refusal

    def set_broker_rate_limit(self, rate: float | None, burst: int | None = None) -> None:
        """Places and cancels per second we allow ourselves (None: no limit), e.g. when
        the broker publishes a new limit; takes effect for the next request."""
        self._bucket = TokenBucket(rate, burst) if rate else None

    def _admit(
        self, request: OrderRequest, basket: set[str]
    ) -> tuple[OrderSnapshot | None, OrderIntent | None]:
        """(existing order, None) for a duplicate of an active order, else (None, new intent)."""
        coid = request.client_order_id or self.new_client_order_id()
        existing = self.pipeline.book.lookup(coid)  # a finished order may be retired
        if existing is not None:
            if existing.status.is_open:
                return existing.snapshot(), None
            raise DuplicateClientOrderIdError(
                f"client_order_id {coid} belongs to a finished order ({existing.status})"
            )
        if coid in basket:
            raise DuplicateClientOrderIdError(f"client_order_id {coid} appears twice in a basket")
        basket.add(coid)
        intent = validate_request(
            request,
            self.parts.instruments,
            account=self.parts.config.account,
            client_order_id=coid,
            ts_ns=self.parts.clock.now_ns(),
        )
        return None, intent

    async def _place_basket(
        self, intents: Sequence[OrderIntent]
    ) -> Sequence[str | BaseException | None]:
        key = object()  # one deadline for the whole basket
        deadlines = self._place_deadlines
        deadlines.arm(key)
        try:
            place_many = getattr(self.parts.adapter, "place_many", None)
            self.parts.journal.fence()
            if place_many is not None:
                results: Sequence[str | BaseException | None] = await place_many(intents)
            else:
                results = await asyncio.gather(
                    *(self._place_with_retry(intent) for intent in intents),
                    return_exceptions=True,
                )
        except asyncio.CancelledError:
            if not deadlines.expired(key):
                for intent in intents:
                    self.pipeline.record_nowait(
                        SubmitUnknown(
                            intent.client_order_id, "caller cancelled", self.parts.clock.now_ns()
                        )
                    )
                raise
            timeout = TimeoutError(f"place timed out after {deadlines.timeout}s")
            results = [timeout] * len(intents)
        except Exception as exc:
            results = [exc] * len(intents)
        finally:
            deadlines.disarm(key)
        return results

    async def _place_with_retry(self, intent: OrderIntent) -> str | None:
        if self._bucket is not None:
            await self._bucket.acquire()
        self.parts.journal.fence()
        try:
            return await self.parts.adapter.place(intent)
        except (BrokerNetworkError, BrokerThrottled) as first:
            return await self._retry(first, lambda: self.parts.adapter.place(intent))

    async def _retry(self, first: BaseException, call: Callable[[], Awaitable[T]]) -> T:
        """A request that certainly did not reach the broker, or was throttled, again.

        Only here, off the fast path; the policy is engine/retry.py's. The
        caller's deadline still bounds the whole.
        """
        if isinstance(first, BrokerThrottled):
            self.throttled += 1
        return await call_with_retry(call, self.parts.config.retry, self._bucket, first)

    def place_outcome(self, coid: str, result: str | BaseException | None) -> JournalEvent | None:
        """What the answer to place() means for the order, as the event to journal."""
        now = self.parts.clock.now_ns()
        if isinstance(result, BrokerRejected):
            report = OrderReport(
                OrderStatus.REJECTED, coid, reject_reason=result.reason, text=result.text
            )
            return self.pipeline.received(report, "place", now)
        if isinstance(result, BrokerNetworkError | BrokerThrottled | BrokerAuthError):
            # Certainly not at the broker: refused here, nothing to recover.
            reason = {
                BrokerThrottled: RejectReason.THROTTLED,
                BrokerAuthError: RejectReason.AUTH_FAILED,
            }.get(type(result), RejectReason.NOT_READY)
            return OrderDenied(coid, reason, f"not sent: {result}", now)
        if isinstance(result, BaseException):
            # Timeout, UnknownOutcome, an adapter bug: it may have gone out.
            log.warning("submit outcome unknown for %s: %r", coid, result)
            return SubmitUnknown(coid, repr(result), now)
        if result:
            return self.pipeline.received(
                OrderReport(OrderStatus.SUBMITTED, coid, result, ts_ns=now), "place", now
            )
        return None

    async def cancel(
        self, client_order_id: str | None = None, broker_order_id: str | None = None
    ) -> OrderSnapshot:
        """Idempotent: a finished order returns its final state; one cancel in flight at most."""
        order = self.pipeline.book.find(client_order_id, broker_order_id)
        if order is None:
            raise OrderNotFoundError(
                f"no order with client id {client_order_id!r} / broker id {broker_order_id!r}"
            )
        coid = order.client_order_id
        in_flight = self._cancels_in_flight.get(coid)
        if in_flight is not None:
            # One request on the wire per order; the others share its outcome.
            await asyncio.shield(in_flight)
            return order.snapshot()
        if order.status.is_terminal or order.status is OrderStatus.PENDING_CANCEL:
            return order.snapshot()
        refused = self.parts.risk.check_cancel(self.parts.clock.now_ns())
        if refused is not None:
            if self.parts.metrics is not None:
                self.parts.metrics.cancels_refused.inc()
            raise CancelRefusedError(refused[1], refused[0])
        if self.parts.order_log is not None:
            self.parts.order_log.cancel(coid, order.broker_order_id)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._cancels_in_flight[coid] = done
        # Once journaled, the request goes out whether or not its caller waits.
        await asyncio.shield(asyncio.ensure_future(self._cancel_flow(order, done)))
        return order.snapshot()

    async def _cancel_flow(self, order: Order, done: asyncio.Future[None]) -> None:
        coid = order.client_order_id
        try:
            await self.pipeline.record(CancelRequested(coid, self.parts.clock.now_ns()))
            # Re-read: a report applied meanwhile may have finished the order.
            if self.pipeline.book.orders[coid].status is OrderStatus.PENDING_CANCEL:
                await self._send_cancel(order)
        finally:
            del self._cancels_in_flight[coid]
            done.set_result(None)

    async def _send_cancel(self, order: Order) -> None:
        coid, boid = order.client_order_id, order.broker_order_id
        refused: CancelRejectReport | None = None
        deadlines = self._cancel_deadlines
        if self.parts.metrics is not None:
            self.parts.metrics.cancels.inc()
        deadlines.arm(coid)
        try:
            if self._bucket is not None:
                await self._bucket.acquire()
            self.parts.journal.fence()
            try:
                await self.parts.adapter.cancel(coid, boid)
            except (BrokerNetworkError, BrokerThrottled) as first:
                await self._retry(first, lambda: self.parts.adapter.cancel(coid, boid))
        except asyncio.CancelledError:
            if not deadlines.expired(coid):
                raise
            # Outcome unknown: stays PENDING_CANCEL until the broker's reports
            # or a recovery sync say what happened.
            log.warning("cancel of %s timed out; outcome unknown", coid)
        except (BrokerRejected, BrokerNetworkError, BrokerThrottled, BrokerAuthError) as exc:
            # Refused or never sent: the order lives on and may be cancelled again.
            refused = CancelRejectReport(
                coid, boid, f"cancel failed: {exc}", self.parts.clock.now_ns()
            )
        except Exception as exc:
            log.warning("cancel outcome unknown for %s: %r", coid, exc)
        finally:
            deadlines.disarm(coid)
        if refused is not None:
            if self.parts.metrics is not None:
                self.parts.metrics.cancels_refused.inc()
            await self.pipeline.record(self.pipeline.received(refused, "cancel", refused.ts_ns))
