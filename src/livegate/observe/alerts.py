"""Alerting: P0 cannot trade, P1 our state disagrees with the broker's, P2 degraded.

Rules are conditions over the gateway's state, evaluated every `interval`.
An alert is raised once when its condition starts (deduplicated by key),
escalated once if it persists past `escalate_after`, resolved when the
condition clears, and acknowledged by a person. Each change is journaled
(`AlertChanged`), so the history survives restarts, and is sent to every
sink: the log, stdout, a file (JSON lines), a webhook (JSON POST). A P0 can
switch the gateway to HALTED when `safe_stop_on_p0` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from livegate.broker.adapter import AdapterProblems
from livegate.broker.errors import BrokerAuthError
from livegate.engine.control import read_alert_ack_commands
from livegate.engine.gateway import Gateway
from livegate.model.diffs import Severity
from livegate.model.enums import OrderStatus, TradingState
from livegate.model.events import AlertChanged

log = logging.getLogger("livegate.alerts")

Condition = Callable[[Gateway], str | None]  # the alert's text while it holds, else None


@dataclass(frozen=True)
class Rule:
    key: str
    level: str
    condition: Condition


@dataclass
class AlertConfig:
    interval: float = 1.0
    escalate_after: float = 300.0
    disconnected_after: float = 10.0  # P0 once not ready this long
    unknown_deadline: float = 60.0  # P1 once an UNKNOWN order is this old
    ack_latency: float = 2.0  # P2 once an order waits this long for its acknowledgement
    # P1 while a broker report was refused (invalid, contradicting, overfill) this recently.
    refused_report_window: float = 600.0
    reject_rate: float = 0.5  # P2 when this share of the last orders was refused...
    reject_window: int = 50  # ...among this many
    safe_stop_on_p0: bool = False


def default_rules(cfg: AlertConfig) -> list[Rule]:
    down_since: dict[str, float] = {}

    def disconnected(g: Gateway) -> str | None:
        if g.ready:
            down_since.pop("t", None)
            return None
        since = down_since.setdefault("t", time.monotonic())
        if time.monotonic() - since >= cfg.disconnected_after:
            return f"broker connection down for {time.monotonic() - since:.0f}s"
        return None

    def auth_failed(g: Gateway) -> str | None:
        error = g.last_connect_error
        if isinstance(error, BrokerAuthError):
            return f"broker refused our credentials: {error}"
        return None

    def halted(g: Gateway) -> str | None:
        return "trading is HALTED" if g.trading_state is TradingState.HALTED else None

    def journal_failed(g: Gateway) -> str | None:
        failed = g.journal.failed
        return f"journal write failed: {failed}" if failed is not None else None

    def critical_diffs(g: Gateway) -> str | None:
        ids = [d.id for d in g.book.open_diffs() if d.finding.severity is Severity.CRITICAL]
        return f"critical reconciliation diffs open: {', '.join(ids)}" if ids else None

    def aged(g: Gateway, status: OrderStatus, seconds: float, since_update: bool) -> str:
        """Client ids of orders in `status` for longer than `seconds`, five at most shown."""
        deadline = g.clock.now_ns() - g.clock.ns_for(seconds)
        ids = [
            o.client_order_id
            for o in g.book.open_orders()  # NEW and UNKNOWN are open: never the whole day
            if o.status is status and (o.updated_ns if since_update else o.created_ns) < deadline
        ]
        more = f" and {len(ids) - 5} more" if len(ids) > 5 else ""
        return ", ".join(ids[:5]) + more

    def stuck_unknown(g: Gateway) -> str | None:
        stuck = aged(g, OrderStatus.UNKNOWN, cfg.unknown_deadline, since_update=True)
        return f"orders unresolved past {cfg.unknown_deadline:g}s: {stuck}" if stuck else None

    def slow_acks(g: Gateway) -> str | None:
        # Measured on the orders still waiting, so a broker that stopped
        # answering shows here before any histogram has a slow sample.
        waiting = aged(g, OrderStatus.NEW, cfg.ack_latency, since_update=False)
        return f"orders unacknowledged after {cfg.ack_latency:g}s: {waiting}" if waiting else None

    def refused_reports(g: Gateway) -> str | None:
        since = time.monotonic() - cfg.refused_report_window
        recent = [r for r in g.refused_reports if r[0] >= since]
        if not recent:
            return None
        _, kind, coid, detail = recent[-1]
        return (
            f"{len(recent)} broker report(s) refused in the last"
            f" {cfg.refused_report_window:g}s; latest {kind} for {coid}: {detail}"
        )

    def broker_problems(g: Gateway) -> str | None:
        problems = getattr(g.adapter, "problems", None)
        if not isinstance(problems, AdapterProblems):
            return None
        recent = problems.since(time.monotonic() - cfg.refused_report_window)
        return f"{len(recent)} broker adapter problem(s); latest: {recent[-1]}" if recent else None

    def rejects(g: Gateway) -> str | None:
        recent = list(itertools.islice(reversed(g.book.orders.values()), cfg.reject_window))
        if len(recent) < cfg.reject_window:
            return None
        refused = sum(1 for o in recent if o.status is OrderStatus.REJECTED)
        share = refused / len(recent)
        return (
            f"{share:.0%} of the last {len(recent)} orders refused"
            if share >= cfg.reject_rate
            else None
        )

    return [
        Rule("disconnected", "P0", disconnected),
        Rule("auth-failure", "P0", auth_failed),
        Rule("halted", "P0", halted),
        Rule("journal-failed", "P0", journal_failed),
        Rule("critical-diffs", "P1", critical_diffs),
        Rule("unknown-orders", "P1", stuck_unknown),
        Rule("refused-reports", "P1", refused_reports),
        Rule("broker-problems", "P1", broker_problems),
        Rule("slow-acks", "P2", slow_acks),
        Rule("reject-rate", "P2", rejects),
    ]


def open_alerts(changes: Iterable[AlertChanged]) -> dict[str, AlertChanged]:
    """Per key, the latest change of each alert not RESOLVED since it was raised."""
    latest: dict[str, AlertChanged] = {}
    for change in changes:
        if change.state == "RESOLVED":
            latest.pop(change.key, None)
        elif change.state != "ACKNOWLEDGED" or change.key in latest:
            latest[change.key] = change
    return latest


Sink = Callable[[AlertChanged], None]


def log_sink(alert: AlertChanged) -> None:
    level = logging.ERROR if alert.level == "P0" else logging.WARNING
    log.log(level, "%s %s %s: %s", alert.level, alert.state, alert.key, alert.text)


def _json(alert: AlertChanged) -> str:
    return json.dumps(
        {
            "key": alert.key,
            "level": alert.level,
            "state": alert.state,
            "text": alert.text,
            "ts_ns": alert.ts_ns,
            "who": alert.who,
        }
    )


def stdout_sink(alert: AlertChanged) -> None:
    print(_json(alert), file=sys.stdout, flush=True)


def file_sink(path: Path) -> Sink:
    def write(alert: AlertChanged) -> None:
        with path.open("a", encoding="utf-8") as handle:
            handle.write(_json(alert) + "\n")

    return write


def webhook_sink(url: str, timeout: float = 5.0) -> Sink:
    """POST each change as JSON, on a worker thread: a slow receiver never stalls trading."""

    def post(alert: AlertChanged) -> None:
        request = urllib.request.Request(
            url, data=_json(alert).encode(), headers={"Content-Type": "application/json"}
        )
        try:
            urllib.request.urlopen(request, timeout=timeout).close()
        except OSError as exc:
            log.warning("alert webhook %s failed: %s", url, exc)

    def send(alert: AlertChanged) -> None:
        asyncio.get_running_loop().run_in_executor(None, post, alert)

    return send


@dataclass
class _Firing:
    level: str
    since: float
    escalated: bool = False


@dataclass
class AlertEngine:
    gateway: Gateway
    config: AlertConfig = field(default_factory=AlertConfig)
    sinks: list[Sink] = field(default_factory=lambda: [log_sink])
    rules: list[Rule] | None = None
    _firing: dict[str, _Firing] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None
    _stopping: asyncio.Future[None] | None = None  # a safe-stop a P0 pulled
    open_by_level: dict[str, int] = field(default_factory=dict)  # for /metrics

    def __post_init__(self) -> None:
        if self.rules is None:
            self.rules = default_rules(self.config)

    def start(self) -> None:
        """Alerts a previous run left open are open still: the first evaluation
        resolves (journaled) those whose condition is gone, so the journal never
        holds an alert raised and then forgotten by a restart."""
        now = time.monotonic()
        for change in open_alerts(self.gateway.book.alerts).values():
            escalated = change.state == "ESCALATED"
            self._firing.setdefault(change.key, _Firing(change.level, now, escalated))
        self.open_by_level = dict(Counter(f.level for f in self._firing.values()))
        self._task = asyncio.create_task(self._loop(), name="livegate-alerts")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.interval)
            try:
                await self.evaluate()
            except Exception:
                log.exception("alert evaluation failed")

    def open_alerts(self) -> dict[str, str]:
        return {key: firing.level for key, firing in self._firing.items()}

    async def evaluate(self) -> None:
        await self._take_acknowledgements()
        now = time.monotonic()
        for rule in self.rules or ():
            text = rule.condition(self.gateway)
            firing = self._firing.get(rule.key)
            if text is not None and firing is None:
                self._firing[rule.key] = _Firing(rule.level, now)
                await self._change(rule.key, rule.level, "RAISED", text)
                if rule.level == "P0" and self.config.safe_stop_on_p0 and rule.key != "halted":
                    await self._safe_stop(text)
            elif text is not None and firing is not None:
                if not firing.escalated and now - firing.since >= self.config.escalate_after:
                    firing.escalated = True
                    await self._change(rule.key, rule.level, "ESCALATED", text)
            elif text is None and firing is not None:
                del self._firing[rule.key]
                await self._change(rule.key, rule.level, "RESOLVED", "condition cleared")

    async def acknowledge(self, key: str, who: str, why: str, command_id: str = "") -> None:
        if key not in self._firing:
            raise KeyError(f"no open alert {key!r}")
        if not who or not why:
            raise ValueError("acknowledging an alert needs who and why")
        await self._change(key, self._firing[key].level, "ACKNOWLEDGED", why, who, command_id)

    async def _take_acknowledgements(self) -> None:
        """Acknowledgements left by `livegate alerts --ack`, applied once each."""
        control = self.gateway.config.control_dir
        if control is None:
            return
        for command in read_alert_ack_commands(control):
            if command.command_id in self.gateway.book.applied_commands:
                continue
            if command.key in self._firing:
                await self.acknowledge(command.key, command.who, command.why, command.command_id)

    async def _change(
        self, key: str, level: str, state: str, text: str, who: str = "", command_id: str = ""
    ) -> None:
        change = AlertChanged(key, level, state, text, self.gateway.clock.now_ns(), who, command_id)
        # Replaced whole, never changed in place: /metrics reads it from its own thread.
        self.open_by_level = dict(Counter(f.level for f in self._firing.values()))
        if self.gateway.journal.failed is None:
            await self.gateway.record(change)
        for sink in self.sinks:
            try:
                sink(change)
            except Exception:
                log.exception("alert sink %r failed", sink)

    async def _safe_stop(self, text: str) -> None:
        """The kill switch, as `livegate safe-stop` pulls it: HALTED, then every open
        order cancelled (once the broker is back, when the P0 is a lost connection).
        In the background: evaluating alerts must not wait for the broker."""
        g = self.gateway
        if not g.running or g.journal.failed is not None or g.book.release.safe_stop is not None:
            return
        if g.trading_state is TradingState.HALTED and g.book.release.last_safe_stop is not None:
            return  # stopped already; a second press would send nothing anyway

        async def pull() -> None:
            try:
                await g.safe_stop("alerts", f"P0: {text}")
            except Exception:
                log.exception("safe-stop on P0 failed")

        self._stopping = asyncio.ensure_future(pull())
