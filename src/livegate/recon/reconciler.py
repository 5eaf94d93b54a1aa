"""Reconciliation runs, the conflict policy applied, and a person's interventions.

A run fetches the broker's view, compares, and turns findings into diffs:
a finding counts only once it has lasted the settle window (fills in flight
are not diffs), one diff per key however many runs see it, and a diff that
stops being found is CLEARED. The policy settles some automatically; an
automatic action counts only if a fresh comparison no longer finds the
difference. Every decision is journaled, with who, why, before and after.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from livegate.broker.adapter import BrokerAdapter
from livegate.engine.archive import RetiredOrder
from livegate.engine.gateway import Gateway
from livegate.engine.order_book import OrderBook
from livegate.model.account import AccountSnapshot
from livegate.model.decimals import ZERO
from livegate.model.diffs import Diff, DiffKind, DiffStatus, Finding, Marker, Resolution, Severity
from livegate.model.enums import Side
from livegate.model.events import (
    ClosedAtBroker,
    DiffAcknowledged,
    DiffOpened,
    DiffResolved,
    EodReconciled,
    LedgerAdjusted,
)
from livegate.model.ledger import Ledger
from livegate.model.orders import Order
from livegate.model.reports import OrderReport
from livegate.recon.compare import BrokerView, LocalView, Tolerances, compare
from livegate.recon.policy import ConflictPolicy
from livegate.recon.report import Report, build_report, write_report

log = logging.getLogger("livegate.recon")
AlertHook = Callable[[Diff], object]

_SUPPRESSING = (Resolution.WRITE_OFF, Resolution.MARK_KNOWN)
_ALLOWED: dict[Resolution, set[DiffKind]] = {
    Resolution.ADOPT_BROKER: {DiffKind.ORDER, DiffKind.TRADE, DiffKind.POSITION, DiffKind.CASH},
    Resolution.CANCEL_AT_BROKER: {DiffKind.ORDER},
    Resolution.MARK_KNOWN: {DiffKind.ORDER, DiffKind.TRADE},
    Resolution.WRITE_OFF: {DiffKind.ORDER, DiffKind.TRADE, DiffKind.POSITION, DiffKind.CASH},
}


@dataclass
class ReconConfig:
    interval: float = 60.0  # seconds between intraday runs
    settle_window: float = 5.0  # how long a difference must last to count
    tolerances: Tolerances = field(default_factory=Tolerances)
    policy: ConflictPolicy = field(default_factory=ConflictPolicy)


@dataclass
class ReconRun:
    ts_ns: int
    eod: bool
    findings: list[Finding]
    opened: list[str] = field(default_factory=list)
    auto_resolved: list[str] = field(default_factory=list)
    cleared: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.findings


class Reconciler:
    def __init__(self, gateway: Gateway, config: ReconConfig | None = None) -> None:
        self.gateway = gateway
        self.config = config or ReconConfig()
        self._first_seen: dict[str, int] = {}
        self._alert_hooks: list[AlertHook] = []
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._last_view: BrokerView | None = None
        self.last_view_ns = 0  # when the broker was last asked (on the gateway's clock)

    def on_alert(self, hook: AlertHook) -> AlertHook:
        """Called with every CRITICAL diff the policy did not settle (monitoring plugs in here)."""
        self._alert_hooks.append(hook)
        return hook

    # -- schedule -------------------------------------------------------------
    def start(self) -> None:
        """Run every `interval` and after every recovery sync of the gateway."""
        self.gateway.after_recover.append(self._after_recover)
        self._task = asyncio.create_task(self._periodic(), name="livegate-recon")

    async def stop(self) -> None:
        if self._after_recover in self.gateway.after_recover:
            self.gateway.after_recover.remove(self._after_recover)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _after_recover(self) -> None:
        await self.run()

    async def _periodic(self) -> None:
        while True:
            await asyncio.sleep(self.config.interval)
            try:
                await self.run()
            except Exception:
                log.exception("reconciliation run failed; next run in %ss", self.config.interval)

    # -- a run ----------------------------------------------------------------
    async def run(self, eod: bool = False) -> ReconRun:
        async with self._lock:
            broker = await self._broker_view()
            findings = self._findings(broker)
            now = self.gateway.clock.now_ns()
            result = ReconRun(now, eod, findings)
            book = self.gateway.book
            open_by_key = {d.finding.key: d for d in book.open_diffs()}
            current = {f.key for f in findings}
            settle = self.gateway.clock.ns_for(self.config.settle_window)
            still: set[str] | None = None  # after a policy action, what is still different
            for finding in findings:
                if finding.key in open_by_key:
                    continue
                if still is not None and finding.key not in still:
                    continue  # settled as a consequence (a fetched fill fixes its position)
                first = self._first_seen.setdefault(finding.key, now)
                in_flight_possible = finding.marker is not Marker.UNVERIFIED
                if not eod and now - first < settle and in_flight_possible:
                    continue  # may be a fill in flight: it has to last to count
                diff_id = f"D{len(book.diffs) + 1}"
                await self.gateway.record(DiffOpened(diff_id, finding, now))
                result.opened.append(diff_id)
                if self.gateway.metrics is not None:
                    self.gateway.metrics.recon_diffs.labels(finding.severity.value).inc()
                if await self._settle_by_policy(book.diffs[diff_id], broker):
                    result.auto_resolved.append(diff_id)
                    still = {f.key for f in self._findings(broker)}
                elif finding.severity is Severity.CRITICAL:
                    self._alert(book.diffs[diff_id])
            for key in list(self._first_seen):
                if key not in current:
                    del self._first_seen[key]
            for key, diff in open_by_key.items():
                if key not in current:
                    await self._resolve(
                        diff,
                        Resolution.CLEARED,
                        "recon",
                        "no longer found",
                        "cleared",
                        automatic=True,
                    )
                    result.cleared.append(diff.id)
            result.findings = self._findings(broker)
            return result

    async def end_of_day(
        self, trading_day: dt.date, out: Path | None
    ) -> tuple[ReconRun, Report, dict[str, Path]]:
        """The close's reconciliation: a run that waits for no settle window, its report of
        every diff (written to `out` when given), and an `EodReconciled` for the gate."""
        result = await self.run(eod=True)
        report = build_report(
            self.diffs(open_only=False),
            trading_day,
            self.gateway.config.account,
            self.config.policy.describe(),
        )
        paths = write_report(report, out) if out is not None else {}
        unresolved = tuple(d.id for d in self.gateway.book.open_diffs())
        await self.gateway.record(
            EodReconciled(
                trading_day.isoformat(),
                len(result.findings),
                unresolved,
                str(paths.get("html", "")),
                self.gateway.clock.now_ns(),
            )
        )
        await self.gateway.checkpoint()  # the day's safe point: the next start begins here
        return result, report, paths

    async def _broker_view(self) -> BrokerView:
        view = await broker_view(
            self.gateway.adapter, self.gateway.book.open_orders(), self.gateway.connected_ns
        )
        self._last_view = view
        self.last_view_ns = self.gateway.clock.now_ns()
        return view

    @property
    def last_account(self) -> AccountSnapshot | None:
        """The broker's account as the latest run fetched it (for the console's books page)."""
        return self._last_view.account if self._last_view is not None else None

    def _local_view(self) -> LocalView:
        """Only the venue in use: live and paper orders never meet in one reconciliation."""
        book = self.gateway.book
        return local_view(book, book.release.on_paper, book.ledger)

    def _findings(self, broker: BrokerView) -> list[Finding]:
        suppressed = {
            (d.finding.key, d.finding.ours, d.finding.theirs)
            for d in self.gateway.book.diffs.values()
            if d.resolution in _SUPPRESSING
        }
        return [
            f
            for f in compare(self._local_view(), broker, self.config.tolerances)
            if (f.key, f.ours, f.theirs) not in suppressed
        ]

    async def _settle_by_policy(self, diff: Diff, broker: BrokerView) -> bool:
        finding = diff.finding
        rule = self.config.policy.rule(finding.kind, finding.marker)
        if not rule.automatic or rule.action is None:
            return False
        after = await self._act(diff, rule.action, broker)
        if any(f.key == finding.key for f in self._findings(broker)):
            diff.history.append(f"policy tried {rule.action}; still different: a person decides")
            return False
        await self._resolve(
            diff, rule.action, "policy", f"{rule.winner} wins", after, automatic=True
        )
        return True

    # -- a person's interventions -------------------------------------------------
    def diffs(self, open_only: bool = True) -> list[Diff]:
        book = self.gateway.book
        return book.open_diffs() if open_only else list(book.diffs.values())

    async def acknowledge(self, diff_id: str, who: str, why: str) -> Diff:
        diff = self._diff(diff_id, who, why)
        await self.gateway.record(DiffAcknowledged(diff_id, who, why, self.gateway.clock.now_ns()))
        return diff

    async def resolve(self, diff_id: str, resolution: Resolution | str, who: str, why: str) -> Diff:
        diff = self._diff(diff_id, who, why)
        action = Resolution(str(resolution).upper())
        if action is Resolution.CLEARED or diff.finding.kind not in _ALLOWED[action]:
            raise ValueError(f"{action} does not apply to a {diff.finding.kind} diff")
        broker = await self._broker_view()
        after = await self._act(diff, action, broker)
        await self._resolve(diff, action, who, why, after)
        return diff

    def _diff(self, diff_id: str, who: str, why: str) -> Diff:
        if not who or not why:
            raise ValueError("an intervention needs who and why: both are journaled")
        diff = self.gateway.book.diffs.get(diff_id)
        if diff is None:
            raise KeyError(f"no diff {diff_id}")
        if diff.status is DiffStatus.RESOLVED:
            raise ValueError(f"diff {diff_id} is already resolved ({diff.resolution})")
        return diff

    async def _act(self, diff: Diff, action: Resolution, broker: BrokerView) -> str:
        """Do what the resolution says; return the state after, in words."""
        finding, gateway = diff.finding, self.gateway
        if action in _SUPPRESSING:
            return "accepted as is"
        if action is Resolution.CANCEL_AT_BROKER:
            report = next(
                (
                    r
                    for r in broker.open_orders
                    if finding.subject in (r.client_order_id, r.broker_order_id)
                ),
                None,
            )
            coid = report.client_order_id if report else finding.subject
            boid = report.broker_order_id if report else None
            await gateway.adapter.cancel(coid or "", boid)
            return f"cancel sent to the broker for {boid or coid}"
        kind = finding.kind
        if kind is DiffKind.TRADE:
            await gateway.sync_today_trades()
            return "broker fills fetched and counted"
        if kind is DiffKind.ORDER:
            if finding.marker in (Marker.MISSING_BROKER, Marker.UNVERIFIED):
                # UNVERIFIED adopted: a person decided the broker no longer has it.
                await gateway.record(
                    ClosedAtBroker(
                        finding.subject, "closed by reconciliation", self.gateway.clock.now_ns()
                    )
                )
            else:
                report = broker.statuses.get(finding.subject)
                if report is not None:
                    await gateway.apply_broker_report(report, "recon")
            order = gateway.book.orders.get(finding.subject)
            return f"order {order.status if order else 'unknown'}"
        now = self.gateway.clock.now_ns()
        if kind is DiffKind.POSITION:
            symbol = finding.subject.split(":")[0]
            theirs = {p.symbol: p for p in broker.account.positions}.get(symbol)
            quantity = theirs.quantity if theirs else ZERO
            price = theirs.avg_price if theirs else ZERO
            await gateway.record(LedgerAdjusted(symbol, quantity, price, None, now))
            return f"position {quantity} @ {price}"
        await gateway.record(LedgerAdjusted(None, None, None, broker.account.cash, now))
        return f"cash {broker.account.cash}"

    async def _resolve(
        self,
        diff: Diff,
        action: Resolution,
        who: str,
        why: str,
        after: str,
        automatic: bool = False,
    ) -> None:
        before = f"ours {diff.finding.ours}, broker {diff.finding.theirs}"
        await self.gateway.record(
            DiffResolved(
                diff.id, action, who, why, before, after, self.gateway.clock.now_ns(), automatic
            )
        )

    def _alert(self, diff: Diff) -> None:
        log.error("critical reconciliation diff %s: %s", diff.id, diff.finding.detail)
        for hook in self._alert_hooks:
            try:
                hook(diff)
            except Exception:
                log.exception("alert hook %r failed", hook)


async def broker_view(
    adapter: BrokerAdapter, ours_open: Iterable[Order], connected_ns: int
) -> BrokerView:
    """What `adapter`'s broker says now; our open orders it does not list are asked about."""
    caps = adapter.capabilities
    if not caps.lists_orders:
        return BrokerView(
            (),
            {},
            (),
            await adapter.account(),
            blind_since_ns=connected_ns,
            reports_account=caps.reports_account,
        )
    open_orders = await adapter.open_orders()
    listed = {r.client_order_id for r in open_orders} | {r.broker_order_id for r in open_orders}
    statuses: dict[str, OrderReport | None] = {}
    can_ask = caps.query_by_client_order_id
    for order in list(ours_open):
        if order.client_order_id in listed or order.broker_order_id in listed:
            continue
        if can_ask or order.broker_order_id is not None:
            statuses[order.client_order_id] = await adapter.order_status(
                order.client_order_id, order.broker_order_id
            )
    return BrokerView(
        open_orders,
        statuses,
        await adapter.today_trades(),
        await adapter.account(),
        reports_account=caps.reports_account,
    )


def local_view(book: OrderBook, paper: bool, ledger: Ledger) -> LocalView:
    """Our books for one venue: its orders, their fills, and that venue's ledger."""
    on_paper = book.release.paper_orders
    orders = [o for o in book.orders.values() if (o.client_order_id in on_paper) is paper]
    mine = {o.client_order_id for o in orders}
    open_sells: dict[str, Decimal] = {}
    reserved = ZERO
    for order in orders:
        if not order.status.is_open:
            continue
        if order.side is Side.SELL:
            open_sells[order.symbol] = open_sells.get(order.symbol, ZERO) + order.leaves_qty
        elif order.price is not None:
            reserved += order.leaves_qty * order.price
    archive = book.archive

    def recall(client_order_id: str | None, broker_order_id: str | None) -> RetiredOrder | None:
        retired = archive.find(client_order_id, broker_order_id) if archive else None
        return retired if retired is not None and retired.paper is paper else None

    return LocalView(
        [o.snapshot() for o in orders],
        [f for f in book.fills if f.client_order_id in mine],
        [p for p in ledger.positions.values() if p.quantity != 0],
        ledger.balance(reserved),
        open_sells,
        recall,
    )
