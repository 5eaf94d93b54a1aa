"""Release controls in the engine: the rollout stage and the kill switch (safe-stop).

Invariants guarded here: HALTED is journaled before any cancel of a
safe-stop goes out, so no new order can slip in behind it; every order
open when it was asked is cancelled, and one that is still open (the
broker was down, or refused) is tried again on every resolver round until
none is, across reconnects and restarts (the request is journaled, the
book remembers it until a complete report); a second safe-stop sends
nothing the first already sent. A stage is changed only to one the
rollout file in force names; a journaled stage the file no longer has (a
rollback) falls back to the file's first stage, journaled.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable

from livegate.engine.control import (
    evidence_event,
    read_evidence_commands,
    read_operator_action_commands,
    read_safe_stop_command,
    read_stage_command,
    remove_evidence_command,
    remove_operator_action_command,
)
from livegate.engine.orders import OrderEntry
from livegate.engine.parts import Parts
from livegate.engine.pipeline import Pipeline
from livegate.engine.supervisor import Supervisor
from livegate.model.enums import OrderStatus, TradingState
from livegate.model.errors import LivegateError
from livegate.model.events import (
    OperatorAction,
    SafeStopReport,
    SafeStopRequested,
    StageChanged,
    TradingStateChanged,
)
from livegate.model.orders import OrderRequest

log = logging.getLogger("livegate.gateway")
MAX_CANCEL_TRIES = 3  # a cancel the broker refused this often is listed, not hammered


class ReleaseControls:
    def __init__(
        self, parts: Parts, pipeline: Pipeline, entry: OrderEntry, supervisor: Supervisor
    ) -> None:
        self.parts = parts
        self.pipeline = pipeline
        self.entry = entry
        self.supervisor = supervisor
        self._driving: asyncio.Task[SafeStopReport] | None = None
        self._tries: dict[str, int] = {}  # client id -> cancels sent by safe-stops
        self._reconnects = -1  # the connection the tries were counted on

    # -- the rollout stage ---------------------------------------------------------
    @property
    def stage(self) -> str | None:
        """The stage in force (None: no rollout file is loaded)."""
        rollout = self.parts.risk.rollout
        if rollout is None:
            return None
        return rollout.plan.stage(self.pipeline.book.release.stage).name

    async def set_stage(self, stage: str, who: str, why: str, command_id: str = "") -> None:
        if not who or not why:
            raise ValueError("a stage change needs who and why")
        rollout = self.parts.risk.rollout
        if rollout is None:
            raise ValueError("no rollout file is loaded: there are no stages")
        if stage not in rollout.plan.stages:
            raise ValueError(
                f"no stage {stage!r}: the rollout file has {list(rollout.plan.stages)}"
            )
        await self.pipeline.record(
            StageChanged(stage, who, why, self.parts.clock.now_ns(), command_id)
        )

    async def at_start(self) -> None:
        """Take queued commands; a journaled stage the rollout file lacks falls back."""
        rollout = self.parts.risk.rollout
        journaled = self.pipeline.book.release.stage
        if rollout is not None and journaled is not None and journaled not in rollout.plan.stages:
            first = rollout.plan.first
            why = f"stage {journaled!r} is not in the rollout file in force; back to {first!r}"
            log.warning(why)
            await self.pipeline.record(
                StageChanged(first, "livegate", why, self.parts.clock.now_ns())
            )
        await self.take_commands()

    # -- control commands (the CLI) ------------------------------------------------
    async def take_commands(self) -> None:
        """Stage, safe-stop, evidence and operator-action commands from the control folder,
        each once."""
        control = self.parts.config.control_dir
        if control is None:
            return
        applied = self.pipeline.book.applied_commands
        stage = read_stage_command(control)
        if stage is not None and stage.command_id not in applied:
            try:
                await self.set_stage(stage.stage, stage.who, stage.why, stage.command_id)
            except ValueError as exc:
                log.error("rollout stage command refused: %s", exc)
        stop = read_safe_stop_command(control)
        if stop is not None and stop.command_id not in applied:
            request = await self.request_safe_stop(
                stop.who, stop.why, stop.flatten, stop.command_id, stop.ts_ns
            )
            self._start_driving(request, wait=30.0, report_incomplete=True)
        for evidence in read_evidence_commands(control):
            if evidence.command_id not in applied:
                await self.pipeline.record(evidence_event(evidence))
            remove_evidence_command(control, evidence.command_id)
        for action in read_operator_action_commands(control):
            if action.command_id not in applied:
                await self.pipeline.record(
                    OperatorAction(action.action, action.who, action.why, action.detail,
                                   action.ts_ns, action.command_id)
                )  # fmt: skip
            remove_operator_action_command(control, action.command_id)

    async def resume(self) -> None:
        """A resolver round: a safe-stop not yet complete goes on once the broker is back."""
        pending = self.pipeline.book.release.safe_stop
        if pending is None or not self.supervisor.ready:
            return
        if self._driving is None or self._driving.done():
            if self.supervisor.reconnects != self._reconnects:
                # A new connection: cancels that failed with the old one are tried afresh.
                self._reconnects = self.supervisor.reconnects
                self._tries.clear()
            self._start_driving(pending, wait=self.parts.config.cancel_timeout * 2)

    # -- the kill switch -------------------------------------------------------------
    async def safe_stop(
        self, who: str, why: str, flatten: bool = False, wait: float = 30.0
    ) -> SafeStopReport:
        """HALTED, then cancel everything open (then flatten); the report once done or
        after `wait` seconds (then the rest goes on in the background)."""
        request = await self.request_safe_stop(who, why, flatten, secrets.token_hex(8))
        task = self._start_driving(request, wait, report_incomplete=True)
        return await asyncio.shield(task)

    async def request_safe_stop(
        self, who: str, why: str, flatten: bool, command_id: str, asked_ns: int = 0
    ) -> SafeStopRequested:
        if not who or not why:
            raise ValueError("a safe-stop needs who and why")
        now = self.parts.clock.now_ns()
        log.warning("safe-stop by %s: %s", who, why)
        if self.pipeline.book.trading_state is not TradingState.HALTED:
            await self.pipeline.record(
                TradingStateChanged(TradingState.HALTED, who, f"safe-stop: {why}", now)
            )
        request = SafeStopRequested(who, why, flatten, asked_ns or now, command_id)
        await self.pipeline.record(request)
        return request

    def _start_driving(
        self, request: SafeStopRequested, wait: float, report_incomplete: bool = False
    ) -> asyncio.Task[SafeStopReport]:
        previous = self._driving
        task = asyncio.ensure_future(self._drive(request, wait, report_incomplete, previous))
        self._driving = task
        return task

    async def _drive(
        self,
        request: SafeStopRequested,
        wait: float,
        report_incomplete: bool,
        previous: asyncio.Task[SafeStopReport] | None,
    ) -> SafeStopReport:
        if previous is not None and not previous.done():
            await asyncio.wait([previous])  # one pass at a time; this one finds less to do
        deadline = time.monotonic() + wait
        book = self.pipeline.book
        cancelled: set[str] = set()
        refused: dict[str, str] = {}
        flattened: list[str] = []
        while True:
            if self.supervisor.ready:
                cancelled |= await self._cancel_open(refused)
                if request.flatten and not self._open() and not flattened:
                    flattened = await self._flatten(request)
            left = deadline - time.monotonic()
            if left <= 0 or not self._open():
                break
            await _until(lambda: not self._open() or not self.supervisor.ready, min(left, 0.5))
            if not self.supervisor.ready:
                await _until(lambda: self.supervisor.ready, deadline - time.monotonic())
        remaining = tuple(sorted(o.client_order_id for o in book.open_orders()))
        clock = self.parts.clock
        complete = not remaining and not (request.flatten and self._unflat())
        report = SafeStopReport(
            request.command_id,
            complete,
            len(cancelled),
            remaining,
            tuple(f"{coid}: {text}" for coid, text in sorted(refused.items())),
            tuple(flattened),
            max(0, int(clock.real_seconds(clock.now_ns() - request.ts_ns) * 1000)),
            clock.now_ns(),
        )
        if complete or report_incomplete:
            await self.pipeline.record(report)
        return report

    async def cancel_all(self, wait: float) -> list[str]:
        """Every open order cancelled, without halting (a fallback's first step);
        the ids still open when `wait` runs out or the connection is down."""
        deadline = time.monotonic() + wait
        refused: dict[str, str] = {}
        while self._open() and self.supervisor.ready and time.monotonic() < deadline:
            await self._cancel_open(refused)
            await _until(lambda: not self._open(), min(0.5, deadline - time.monotonic()))
        return self._open()

    def _open(self) -> list[str]:
        return [o.client_order_id for o in self.pipeline.book.open_orders()]

    def _unflat(self) -> bool:
        return any(p.quantity != 0 for p in self.pipeline.book.ledger.positions.values())

    async def _cancel_open(self, refused: dict[str, str]) -> set[str]:
        """One cancel for every open order without one in flight; counts refusals."""
        targets = []
        for order in self.pipeline.book.open_orders():
            coid = order.client_order_id
            if order.status is OrderStatus.PENDING_CANCEL or self.entry.cancelling(coid):
                continue
            tries = self._tries.get(coid, 0)
            if tries >= MAX_CANCEL_TRIES:
                refused[coid] = order.reject_text or "the broker refused to cancel it"
                continue
            self._tries[coid] = tries + 1
            targets.append(coid)
        results = await asyncio.gather(
            *(self.entry.cancel(coid) for coid in targets), return_exceptions=True
        )
        for coid, result in zip(targets, results, strict=True):
            if isinstance(result, LivegateError):
                refused[coid] = str(result)
            elif isinstance(result, BaseException):
                log.warning("safe-stop cancel of %s failed: %r", coid, result)
        return set(targets)

    async def _flatten(self, request: SafeStopRequested) -> list[str]:
        """A reduce-only market order against each position; the ids sent."""
        sent = []
        positions = [p for p in self.pipeline.book.ledger.positions.values() if p.quantity != 0]
        for n, position in enumerate(positions, 1):
            side = "SELL" if position.quantity > 0 else "BUY"
            coid = f"SS{request.command_id[:8]}F{n:03d}"
            order_request = OrderRequest(
                symbol=position.symbol,
                side=side,
                quantity=abs(position.quantity),
                order_type="MARKET",
                client_order_id=coid,
                tag="safe-stop flatten",
            )
            try:
                await self.entry.submit(order_request, reduce_only=True)
            except (LivegateError, ValueError) as exc:
                log.error("safe-stop could not flatten %s: %s", position.symbol, exc)
                continue
            sent.append(coid)
        await _until(lambda: not self._open(), self.parts.config.place_timeout)
        return sent


async def _until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + max(0.0, timeout)
    while not condition():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.01)
    return True
