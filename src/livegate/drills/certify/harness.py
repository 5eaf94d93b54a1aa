"""One scenario's bench: the target's adapter behind the fault wrapper, a real Gateway on a
fresh journal, and the verdicts every scenario ends with.

The common verdicts are the drills': each order sent once (a resend only
under the same id, to a broker that refuses a second one), each fill
counted once, our books equal to the broker's own view (orders, trades,
positions, cash, as far as the adapter can state them), and nothing left
NEW, UNKNOWN or PENDING_CANCEL.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from livegate.broker.adapter import BrokerAdapter
from livegate.drills.certify.faulty import FaultyAdapter
from livegate.drills.certify.target import CertifyEnv, Factory, Target, TestMarket
from livegate.engine import Gateway, GatewayConfig
from livegate.engine.anomalies import REFUSED_REPORTS, Anomalies
from livegate.journal import Journal, SQLiteStore
from livegate.model.diffs import Marker
from livegate.model.enums import OrderStatus
from livegate.model.instrument import InstrumentRegistry
from livegate.recon.compare import Tolerances, compare
from livegate.recon.reconciler import broker_view, local_view

STUCK = (OrderStatus.NEW, OrderStatus.UNKNOWN, OrderStatus.PENDING_CANCEL)


class NotApplicable(Exception):
    """The adapter (or its test market) cannot do what this scenario needs; says why."""


def certify_config() -> GatewayConfig:
    """Short timings, so a lost answer is asked about within a second or two."""
    return GatewayConfig(
        account="certify",
        place_timeout=3.0,
        cancel_timeout=3.0,
        unknown_grace=1.0,
        gap_fetch_after=0.2,
        gap_grace=2.0,
        resolve_interval=0.1,
        heartbeat_interval=0.5,
        heartbeat_timeout=2.0,
        reconnect_delay=0.05,
        reconnect_max_delay=0.5,
        auth_retry_delay=0.5,
        gil_switch_interval=None,
    )


def as_target(made: Target | BrokerAdapter | None) -> Target | None:
    if made is None or isinstance(made, Target):
        return made
    return Target(made)


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class Bench:
    factory: Factory
    directory: Path
    settings: dict[str, object] = field(default_factory=dict)
    spec: str = ""  # MODULE:FACTORY, for a child process to build the same target
    checks: list[Check] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)
    gateway: Gateway | None = None
    faulty: FaultyAdapter | None = None
    target: Target | None = None
    instruments: InstrumentRegistry | None = None  # what the gateway validates against
    placed: Counter[str] = field(default_factory=Counter)  # across restarts
    restarted: bool = False  # a gateway ran on this journal before the current one
    _targets: list[Target] = field(default_factory=list)

    # -- building ---------------------------------------------------------------
    def build(self, bad_credentials: bool = False) -> Target:
        env = CertifyEnv(self.directory / "adapter", bad_credentials, dict(self.settings))
        env.directory.mkdir(parents=True, exist_ok=True)
        target = as_target(self.factory(env))
        if target is None:
            raise NotApplicable("the factory cannot build it with a refused key")
        self._targets.append(target)
        return target

    @property
    def market(self) -> TestMarket:
        assert self.target is not None
        if self.target.market is None:
            raise NotApplicable("the target has no test market to move prices with")
        return self.target.market

    async def start(self) -> Gateway:
        """A gateway on this bench's journal, the target's adapter behind the wrapper."""
        self.target = self.build()
        self.faulty = FaultyAdapter(self.target.adapter)
        registry = self.instruments or self.target.instruments
        path = self.directory / "journal.sqlite"
        self.restarted = path.exists()
        journal = Journal(SQLiteStore(path))
        self.gateway = Gateway(self.faulty, journal, registry, certify_config())
        await self.gateway.start()
        return self.gateway

    async def restart(self) -> Gateway:
        """Stop, then a new adapter from the factory on the same files and journal."""
        await self.stop_gateway()
        return await self.start()

    async def stop_gateway(self) -> None:
        if self.gateway is not None and self.gateway.running:
            await self.gateway.stop()
        if self.faulty is not None:
            self.placed.update(self.faulty.placed)

    async def close(self) -> None:
        await self.stop_gateway()
        for target in self._targets:
            if target.close is not None:
                done = target.close()
                if asyncio.iscoroutine(done):
                    await done

    # -- verdicts -------------------------------------------------------------
    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.checks.append(Check(name, bool(ok), detail))
        return bool(ok)

    def note(self, *items: str) -> None:
        self.evidence.extend(items)

    async def until(self, condition: object, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while not condition():  # type: ignore[operator]
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    async def verdict(self, settle: float = 10.0) -> None:
        """The checks every scenario ends with, on the running gateway."""
        g = self.gateway
        assert g is not None and self.faulty is not None
        await self.until(lambda: not [o for o in g.book.open_orders() if o.status in STUCK], settle)
        stuck = [
            f"{o.client_order_id} {o.status}" for o in g.book.open_orders() if o.status in STUCK
        ]
        self.check("nothing left NEW, UNKNOWN or PENDING_CANCEL", not stuck, ", ".join(stuck))
        placed = self.placed + self.faulty.placed
        allowed = 2 if g.adapter.capabilities.dedups_client_order_id else 1
        twice = sorted(c for c, n in placed.items() if n > allowed)
        self.check("each order sent once", not twice, f"sent more than once: {twice}")
        over = [o.client_order_id for o in g.book.orders.values() if o.filled_qty > o.quantity]
        self.check("each fill counted once (no order overfilled)", not over, ", ".join(over))
        inferred = [f"{f.client_order_id} {f.quantity}" for f in g.trades() if f.inferred]
        self.check("every fill reported by the broker (none inferred from its totals)",
                   not inferred, ", ".join(inferred))  # fmt: skip
        faults = self.faulty.faults
        kinds = set(REFUSED_REPORTS)
        # An old report is legitimate after a fault, a reconnect or a restart: a
        # broker (a FIX session above all) resends what it sent before. Otherwise
        # nothing can make one, and an adapter that does has a bug.
        calm = not (faults.duplicate or faults.reorder or faults.delay)
        if calm and g.reconnects == 0 and not self.restarted:
            kinds |= {Anomalies.STALE_REPORT, Anomalies.INVALID_TRANSITION}
        refused = {k: n for k, n in g.anomalies.items() if k in kinds}
        self.check("no report refused as impossible, contradicting or backwards",
                   not refused, str(refused))  # fmt: skip
        await self.books_equal()

    async def books_equal(self) -> None:
        g = self.gateway
        assert g is not None
        if not g.ready:
            self.check("our books equal the broker's", False, "the gateway is not connected")
            return
        findings: list[str] = []
        foreign: list[str] = []
        unverifiable: list[str] = []
        for _ in range(3):  # a report in flight settles within a moment
            theirs = await broker_view(g.adapter, g.book.open_orders(), g.connected_ns)
            named = [r.client_order_id for r in theirs.open_orders]
            named += [t.client_order_id for t in theirs.trades]
            foreign = sorted({c for c in named if c and c not in g.book.orders})
            ours = local_view(g.book, False, g.book.ledger)
            found = compare(ours, theirs, Tolerances())
            # UNVERIFIED: a broker that cannot be asked (a plain FIX session) left an
            # order unconfirmed by a reconnect. Not a difference: nothing to compare.
            unverifiable = [f.subject for f in found if f.marker is Marker.UNVERIFIED]
            findings = [f"{f.kind.value} {f.marker.value} {f.subject}: {f.detail}"
                        for f in found if f.marker is not Marker.UNVERIFIED]  # fmt: skip
            if not findings and not foreign:
                break
            await asyncio.sleep(0.3)
        self.check("the broker holds no order under an id we never sent", not foreign,
                   ", ".join(foreign[:5]))  # fmt: skip
        note = f" (cannot be asked about: {', '.join(unverifiable)})" if unverifiable else ""
        self.check("our books equal the broker's", not findings,
                   "; ".join(findings[:5]) + note)  # fmt: skip

    def seqs(self, *client_order_ids: str) -> str:
        """Journal sequence numbers of these orders' events, as evidence."""
        g = self.gateway
        assert g is not None
        out = []
        for coid in client_order_ids:
            numbers = [r.seq for r in g.journal.store.read_order(coid)]
            out.append(f"{coid}: seq {','.join(str(n) for n in numbers)}")
        return "; ".join(out)


def price_off(market: TestMarket, ticks: int) -> Decimal:
    return market.mid + market.tick * ticks
