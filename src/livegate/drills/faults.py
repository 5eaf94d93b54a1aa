"""Failure drills: a realistic order flow through one broker fault, then a verdict.

Each drill starts its own sim broker (a separate process, so a restart is
a real process restart) and a gateway with a SQLite journal. Then it
runs in three phases:

1. orders before the fault;
2. the fault, with orders still being sent;
3. the heal, then orders after it.

The drill waits for everything to settle and checks:
- each order was sent exactly once: no client order id reached the broker
  twice, except through the gateway's own journaled resend of an
  unknown outcome, which the broker refuses as a duplicate;
- each fill was counted exactly once, and our fills are the broker's fills;
- local state equals the broker's: an end-of-day reconciliation finds
  nothing about orders, trades, positions or cash;
- no order is left NEW, UNKNOWN or PENDING_CANCEL;
- what the scenario itself must show (the P0 alert for refused
  credentials, no hammering, orders refused while down rather than queued,
  retry-after honoured, the stall found by heartbeats).

It also measures how long recovery took: from the heal (or from the
fault, where the gateway must find it alone) to READY.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from livegate.broker.sim import SimAdapter
from livegate.drills.sim_process import SimProcess, until
from livegate.engine import Gateway, GatewayConfig
from livegate.engine.control import write_evidence_command
from livegate.engine.retry import RetryPolicy
from livegate.journal import Journal, SQLiteStore, Store
from livegate.model import OrderRequest, OrderStatus
from livegate.model.enums import RejectReason
from livegate.model.reports import TradeReport
from livegate.model.samples import DEMO_START_PRICES, demo_instruments
from livegate.model.secret import Secret
from livegate.observe.alerts import AlertConfig, AlertEngine
from livegate.recon import Reconciler, ReconConfig

SCENARIOS = (
    "network-outage",
    "stalled-connection",
    "delayed-reports",
    "partial-fills",
    "broker-restart",
    "broker-restart-lost-state",
    "duplicate-reports",
    "reordered-reports",
    "throttling",
    "auth-failure",
)
D = Decimal
STUCK = (OrderStatus.NEW, OrderStatus.UNKNOWN, OrderStatus.PENDING_CANCEL)
WORKING = (OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED)


@dataclass
class DrillTimings:
    """How long things take. The defaults suit a person watching; tests go faster."""

    orders: int = 300  # across the three phases
    fault_seconds: float = 3.0
    heartbeat_interval: float = 0.5
    heartbeat_timeout: float = 1.0
    reconnect_delay: float = 0.2
    reconnect_max_delay: float = 2.0
    auth_retry_delay: float = 1.0
    place_timeout: float = 3.0
    settle_timeout: float = 30.0

    @classmethod
    def fast(cls) -> DrillTimings:
        return cls(
            orders=90,
            fault_seconds=1.5,
            heartbeat_interval=0.2,
            heartbeat_timeout=0.5,
            reconnect_delay=0.1,
            reconnect_max_delay=0.5,
            auth_retry_delay=0.5,
            place_timeout=1.5,
        )


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Verdict:
    scenario: str
    checks: list[Check] = field(default_factory=list)
    recovery_seconds: float | None = None
    orders: int = 0
    fills: int = 0
    refused_while_down: int = 0
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def check(self, name: str, ok: bool, detail: str = "") -> None:
        self.checks.append(Check(name, bool(ok), detail))


class Flow:
    """The strategy of a drill: market and limit orders, resting orders, cancels."""

    def __init__(self, gateway: Gateway, sim: SimProcess, seed: int) -> None:
        self.gateway = gateway
        self.sim = sim
        self.rng = random.Random(seed)
        self.mids = dict(DEMO_START_PRICES)
        self.sent = 0
        self.refused_not_ready = 0

    async def requote(self) -> None:
        for symbol in self.mids:
            self.mids[symbol] += D(self.rng.randint(-5, 5)) / 100
            mid = self.mids[symbol]
            await self.sim.control("quote", symbol=symbol, bid=str(mid - D("0.01")),
                                   ask=str(mid + D("0.01")))  # fmt: skip

    def request(self) -> OrderRequest:
        self.sent += 1
        symbol = self.rng.choice(list(self.mids))
        side = "BUY" if self.sent % 2 else "SELL"
        quantity = self.rng.randint(1, 10) * 3  # split-able into three
        coid = f"drill-{self.sent:05d}"
        if self.rng.random() < 0.5:
            return OrderRequest(symbol=symbol, side=side, quantity=quantity,
                                order_type="MARKET", client_order_id=coid)  # fmt: skip
        away = D(self.rng.randint(-3, 8)) / 100  # mostly resting, some crossing
        price = self.mids[symbol] - away if side == "BUY" else self.mids[symbol] + away
        return OrderRequest(symbol=symbol, side=side, quantity=quantity, price=price,
                            client_order_id=coid)  # fmt: skip

    async def run(self, count: int, pace: float = 0.0) -> None:
        """Send `count` orders in small concurrent groups, cancelling some resting ones."""
        done = 0
        while done < count:
            group = min(5, count - done)
            placed = await asyncio.gather(
                *(self.gateway.submit_order(self.request()) for _ in range(group)),
                return_exceptions=True,
            )
            for order in placed:
                if not isinstance(order, BaseException) and order.reject_reason is (
                    RejectReason.NOT_READY
                ):
                    self.refused_not_ready += 1
            done += group
            if self.rng.random() < 0.3:
                # A quote may not get through while the broker is down or restarting.
                with contextlib.suppress(OSError, RuntimeError):
                    await self.requote()
            resting = [o for o in self.gateway.orders(open_only=True) if o.status in WORKING]
            for order in resting:
                if self.rng.random() < 0.15:
                    await self.gateway.cancel_order(order.client_order_id)
            if pace:
                await asyncio.sleep(pace)


async def run_drill(
    scenario: str,
    directory: Path,
    timings: DrillTimings | None = None,
    seed: int = 11,
    evidence: Path | None = None,
    store: Store | None = None,
) -> Verdict:
    """One fault drill; with `evidence` (a data folder), its gateway journals the verdict.
    `store`: the drill gateway's journal (default SQLite in `directory`)."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown drill {scenario!r}; choose from {', '.join(SCENARIOS)}")
    t = timings or DrillTimings()
    directory.mkdir(parents=True, exist_ok=True)
    key = f"lg_sim_{secrets.token_hex(12)}"
    sim = SimProcess(directory / "sim", key)
    sim.start()
    verdict = Verdict(scenario)
    started = time.monotonic()
    config = GatewayConfig(
        account="drill",
        place_timeout=t.place_timeout,
        cancel_timeout=t.place_timeout,
        heartbeat_interval=t.heartbeat_interval,
        heartbeat_timeout=t.heartbeat_timeout,
        reconnect_delay=t.reconnect_delay,
        reconnect_max_delay=t.reconnect_max_delay,
        auth_retry_delay=t.auth_retry_delay,
        unknown_grace=2.0,
        gap_grace=2.0,
        gil_switch_interval=None,
        retry=RetryPolicy(max_throttle_wait=30.0),
    )
    if scenario == "throttling":
        config.broker_rate_limit = 400.0  # set above the broker's real limit, at first
    gateway = Gateway(
        SimAdapter("127.0.0.1", sim.port, Secret(key), "sim"),
        Journal(store if store is not None else SQLiteStore(directory / "journal.sqlite")),
        demo_instruments(),
        config,
    )
    alerts = AlertEngine(gateway, AlertConfig(disconnected_after=3600), sinks=[])
    try:
        await gateway.start()
        flow = Flow(gateway, sim, seed)
        await flow.requote()
        third = max(1, t.orders // 3)
        await flow.run(third)
        await _fault_and_heal(scenario, gateway, sim, flow, alerts, t, verdict, third)
        await flow.run(t.orders - 2 * third)
        await _verdict(gateway, sim, flow, t, verdict)
    finally:
        if gateway.running:
            await gateway.stop()
        sim.stop()
    verdict.seconds = time.monotonic() - started
    if evidence is not None:
        failed = ", ".join(c.name for c in verdict.checks if not c.ok) or "all checks passed"
        write_evidence_command(
            evidence / "control", "drill", scenario, verdict.passed,
            int(verdict.seconds * 1000), "", failed,
        )  # fmt: skip
    return verdict


async def _fault_and_heal(
    scenario: str,
    gateway: Gateway,
    sim: SimProcess,
    flow: Flow,
    alerts: AlertEngine,
    t: DrillTimings,
    verdict: Verdict,
    count: int,
) -> None:
    """Phase 2: the fault, orders during it, the heal; sets the recovery time."""
    ready = lambda: gateway.ready  # noqa: E731
    during: Callable[[], Awaitable[None]] = lambda: flow.run(count)  # noqa: E731
    if scenario == "network-outage":
        await sim.control("down", ms=int(t.fault_seconds * 1000))
        faulted = time.monotonic()
        await until(lambda: not gateway.ready, 5)
        refused_before = flow.refused_not_ready
        await during()
        verdict.refused_while_down = flow.refused_not_ready - refused_before
        verdict.check(
            "orders refused NOT_READY while down, never queued",
            verdict.refused_while_down > 0,
            f"{verdict.refused_while_down} refused",
        )
        healed = faulted + t.fault_seconds
        ok = await until(ready, t.settle_timeout)
        verdict.recovery_seconds = time.monotonic() - healed
        verdict.check("reconnected after the outage", ok)
    elif scenario == "stalled-connection":
        disconnects = gateway.disconnects
        await sim.control("stall", ms=int(t.fault_seconds * 1000))
        faulted = time.monotonic()
        found = await until(lambda: gateway.disconnects > disconnects, t.fault_seconds + 5)
        noticed = time.monotonic() - faulted
        verdict.check(
            "the stall was found by the heartbeat watch",
            found,
            f"after {noticed:.2f}s (heartbeat every {t.heartbeat_interval:g}s,"
            f" timeout {t.heartbeat_timeout:g}s)",
        )
        await during()
        ok = await until(ready, t.settle_timeout)
        verdict.recovery_seconds = time.monotonic() - (faulted + t.fault_seconds)
        verdict.check("reconnected once the broker answered again", ok)
    elif scenario in ("delayed-reports", "partial-fills", "duplicate-reports", "reordered-reports"):
        faults: dict[str, tuple[str, dict[str, Any]]] = {
            "delayed-reports": ("delay", {"ms": 300}),
            "partial-fills": ("split", {"parts": 3}),
            "duplicate-reports": ("duplicate", {"on": True}),
            "reordered-reports": ("reorder", {"on": True}),
        }
        op, args = faults[scenario]
        await sim.control(op, **args)
        await during()
        await sim.control("clear")
        healed = time.monotonic()
        await _settled(gateway, t.settle_timeout)
        verdict.recovery_seconds = time.monotonic() - healed
        if scenario == "duplicate-reports":
            dups = gateway.anomalies["DUPLICATE_FILL"] + gateway.anomalies["STALE_REPORT"]
            verdict.check("duplicates seen and dropped", dups > 0, f"{dups} dropped")
        if scenario == "partial-fills":
            partial = sum(
                1
                for f in gateway.trades()
                if f.quantity < gateway.order(f.client_order_id).quantity
            )
            verdict.check("fills arrived in parts", partial > 0, f"{partial} partial fills")
    elif scenario in ("broker-restart", "broker-restart-lost-state"):
        lose = scenario == "broker-restart-lost-state"
        resting = len(gateway.orders(open_only=True))
        sim.kill()  # SIGKILL: no goodbye
        faulted = time.monotonic()
        await until(lambda: not gateway.ready, 5)
        await asyncio.sleep(t.fault_seconds / 2)
        sim.start(forget_open_orders=lose)
        healed = time.monotonic()
        ok = await until(ready, t.settle_timeout)
        verdict.recovery_seconds = time.monotonic() - healed
        verdict.check("reconnected to the restarted broker", ok, f"down {healed - faulted:.2f}s")
        await flow.requote()
        await during()
        if lose:
            closed = gateway.anomalies.get("CLOSED_AT_BROKER", 0)
            verdict.check(
                "orders the broker lost were found closed, not believed",
                resting == 0 or closed > 0,
                f"{resting} were open; {closed} closed at the broker",
            )
    elif scenario == "throttling":
        await sim.control("throttle", rate=60, retry_after=0.1)
        throttled = gateway.throttled
        await during()
        seen = gateway.throttled - throttled
        verdict.check(
            "the broker throttled us and we honoured retry-after",
            seen > 0,
            f"{seen} requests throttled, each waited out",
        )
        # Now keep under the broker's limit with our own bucket: no more throttling.
        gateway.set_broker_rate_limit(50, 3)
        await asyncio.sleep(0.2)  # the broker's own window refills first
        before = gateway.throttled
        await flow.run(count // 2)
        verdict.check(
            "the token bucket keeps us under the broker's limit",
            gateway.throttled == before,
            f"{gateway.throttled - before} throttled with the bucket at 50/s",
        )
        await sim.control("clear")
        verdict.recovery_seconds = 0.0
        refused = sum(1 for o in gateway.orders() if o.reject_reason is RejectReason.THROTTLED)
        verdict.check("no order refused for throttling", refused == 0, f"{refused} refused")
    elif scenario == "auth-failure":
        stats = await sim.control("stats")
        attempts_before = stats["auth_attempts"]
        await sim.control("fail_auth", on=True)
        faulted = time.monotonic()
        await until(lambda: gateway.last_connect_error is not None, 10)
        await alerts.evaluate()
        raised = {a.key: a.level for a in gateway.book.alerts if a.state == "RAISED"}
        verdict.check("a P0 alert for refused credentials", raised.get("auth-failure") == "P0")
        await during()
        await asyncio.sleep(max(0.0, t.fault_seconds - (time.monotonic() - faulted)))
        attempts = (await sim.control("stats"))["auth_attempts"] - attempts_before
        window = time.monotonic() - faulted
        bound = int(window / t.auth_retry_delay) + 2
        verdict.check(
            "no hammering: logons back off",
            attempts <= bound,
            f"{attempts} logon attempts in {window:.1f}s (at most {bound})",
        )
        await sim.control("fail_auth", on=False)
        healed = time.monotonic()
        ok = await until(ready, t.settle_timeout)
        verdict.recovery_seconds = time.monotonic() - healed
        await alerts.evaluate()
        resolved = any(
            a.key == "auth-failure" and a.state == "RESOLVED" for a in gateway.book.alerts
        )
        verdict.check("reconnected with good credentials; the alert resolved", ok and resolved)


async def _settled(gateway: Gateway, timeout: float) -> bool:
    """Nothing in flight: no order waiting on the broker, no fill gap open."""
    return await until(
        lambda: (
            gateway.ready
            and not any(o.status in STUCK for o in gateway.orders())
            and not any(o.fill_gap > 0 for o in gateway.book.orders.values())
        ),
        timeout,
    )


async def _verdict(
    gateway: Gateway, sim: SimProcess, flow: Flow, t: DrillTimings, verdict: Verdict
) -> None:
    settled = await _settled(gateway, t.settle_timeout)
    stuck = Counter(o.status.value for o in gateway.orders() if o.status in STUCK)
    verdict.check(
        "nothing left in flight", settled, ", ".join(f"{k}={v}" for k, v in stuck.items())
    )
    stats = await sim.control("stats")
    resent = {o.client_order_id for o in gateway.book.orders.values() if o.resent}
    twice = set(stats["sent_twice"])
    verdict.check(
        "each order sent exactly once",
        twice <= resent,
        f"{stats['places']} place requests for {stats['orders']} orders;"
        f" {len(resent)} journaled resends (refused as duplicates)",
    )
    broker_trades = await _reports_arrived(gateway, t.settle_timeout)
    ours = [f for f in gateway.trades() if not f.inferred]
    inferred = [f for f in gateway.trades() if f.inferred and not _replaced(gateway, f.trade_id)]
    our_ids = Counter(f.trade_id for f in ours)
    broker_ids = {tr.trade_id for tr in broker_trades}
    verdict.check(
        "each fill counted exactly once, and ours are the broker's",
        max(our_ids.values(), default=1) == 1 and set(our_ids) == broker_ids and not inferred,
        f"{len(our_ids)} fills here, {len(broker_ids)} at the broker,"
        f" {len(inferred)} still inferred",
    )
    reconciler = Reconciler(gateway, ReconConfig(settle_window=0))
    run = await reconciler.run(eod=True)
    verdict.check(
        "local state equals the broker's (orders, trades, positions, cash)",
        not run.findings,
        "; ".join(f"{f.kind}:{f.marker}:{f.subject}" for f in run.findings[:5]),
    )
    verdict.orders = len(gateway.orders())
    verdict.fills = len(ours)


async def _reports_arrived(gateway: Gateway, timeout: float) -> Sequence[TradeReport]:
    """The broker's trades, once each has reached us or the timeout passed.

    An order the broker filled whose report is still on the wire (the delayed-
    reports drill holds each back) looks settled here; comparing then would
    call a report in flight a lost fill.
    """
    deadline = time.monotonic() + timeout
    while True:
        theirs = await gateway.adapter.today_trades()
        ours = {f.trade_id for f in gateway.trades() if not f.inferred}
        if {tr.trade_id for tr in theirs} <= ours or time.monotonic() > deadline:
            return theirs
        await asyncio.sleep(0.1)


def _replaced(gateway: Gateway, trade_id: str) -> bool:
    return any(f.replaces == trade_id for f in gateway.trades())
