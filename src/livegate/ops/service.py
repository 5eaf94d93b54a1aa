"""The gateway run as a long-lived service, with everything an operator watches.

A strategy normally embeds the Gateway in its own process. Run as a
service (`livegate serve`), the same gateway also gets, in one place:
Prometheus `/metrics` over HTTP, the alert engine with its sinks, the
intraday reconciler, JSON order logs and JSON process logs, the control
folder for trading-state and acknowledgement commands, and a status file
(`service.json`) that `livegate status` reads without touching the
gateway. It stops cleanly on SIGTERM or SIGINT: the strategy task is
cancelled, then the gateway stops (journal drained, logs flushed).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import json
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from livegate.engine.control import (
    ReconCommand,
    answer_recon_command,
    atomic_write,
    read_recon_commands,
)
from livegate.engine.gateway import Gateway
from livegate.model.events import GateOverridden
from livegate.observe.alerts import (
    AlertConfig,
    AlertEngine,
    Rule,
    file_sink,
    log_sink,
    webhook_sink,
)
from livegate.observe.logs import OrderLog
from livegate.observe.metrics import GatewayMetrics
from livegate.ops.config_files import release_record
from livegate.ops.fallback import FallbackRefused, fall_back_to_paper, return_to_live
from livegate.ops.profiles import Profile, snapshot
from livegate.ops.release_status import release_status
from livegate.ops.snapshots import write_snapshot
from livegate.ops.standby import lease_status
from livegate.recon import Reconciler, ReconConfig
from livegate.recon.report import Report, build_report
from livegate.risk.sessions import trading_sessions

log = logging.getLogger("livegate.service")
Strategy = Callable[[Gateway], Awaitable[object]]
STATUS_FILE = "service.json"
_DAY_NS = 86_400 * 10**9


@dataclass
class ServiceConfig:
    data_dir: Path
    environment: str = "paper"
    metrics_port: int | None = 9108  # None: no HTTP endpoint
    metrics_address: str = "127.0.0.1"
    alerts: AlertConfig = field(default_factory=AlertConfig)
    webhook: str | None = None
    recon: ReconConfig | None = field(default_factory=ReconConfig)  # None: no intraday runs
    status_interval: float = 1.0
    profile: Profile | None = None  # recorded in the config snapshot (references, no secrets)
    # The exchange calendar the trading day follows (XSHG, ...): the end-of-day
    # reconciliation runs `eod_after_close` seconds of the gateway's clock after
    # each close. Empty: no scheduled EOD (`livegate recon --eod` still works).
    calendar: str = ""
    eod_after_close: float = 60.0
    gate_override: tuple[str, str] | None = None  # (who, why) of `serve --override-gate`


class GatewayService:
    """Wires an unstarted gateway to its observers; `run` serves until stopped."""

    def __init__(self, gateway: Gateway, config: ServiceConfig) -> None:
        self.gateway = gateway
        self.config = config
        data = config.data_dir
        data.mkdir(parents=True, exist_ok=True)
        given = gateway.metrics
        self.metrics = given if isinstance(given, GatewayMetrics) else GatewayMetrics()
        gateway.metrics = self.metrics
        self._log_stream = (data / "orders.log").open("ab")
        gateway.order_log = gateway.order_log or OrderLog(
            config.environment, gateway.config.account, self._log_stream
        )
        if gateway.config.control_dir is None:
            gateway.config.control_dir = data / "control"
        sinks = [log_sink, file_sink(data / "alerts.jsonl")]
        self.sink_kinds = ["log", "file"]
        if config.webhook:
            sinks.append(webhook_sink(config.webhook))
            self.sink_kinds.append("webhook")
        self.alerts = AlertEngine(gateway, config.alerts, sinks=sinks)
        if config.gate_override is not None:
            assert self.alerts.rules is not None
            self.alerts.rules.append(Rule("gate-override", "P1", self._overridden))
        self._override_ns = 0
        self.metrics.trading_state = lambda: gateway.trading_state.value
        self.metrics.venue = lambda: gateway.venue
        self.metrics.open_alerts = lambda: self.alerts.open_by_level
        self.reconciler = Reconciler(gateway, config.recon) if config.recon else None
        self.metrics_url: str | None = None
        self.started_ns = 0
        self._stop = asyncio.Event()

    def request_stop(self) -> None:
        self._stop.set()

    async def run(
        self,
        strategy: Strategy | None = None,
        run_for: float | None = None,
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        """Start everything, run the strategy (if any), serve until a signal or `run_for`.

        `on_ready` is called once the gateway is up and orders may flow.
        """
        cfg = self.config
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._stop.set)
        if cfg.metrics_port is not None:
            port = self.metrics.serve(cfg.metrics_port, cfg.metrics_address)
            self.metrics_url = f"http://{cfg.metrics_address}:{port}/metrics"
        self.started_ns = time.time_ns()
        if self.gateway.release is None:  # the embedded default: versions, no files
            self.gateway.release = release_record(self.gateway.adapter, [])
        # Which kinds of alert sink this run has (never a webhook's address): the gate
        # asks that one reaches a person.
        self.gateway.release = msgspec.structs.replace(
            self.gateway.release, alert_sinks=tuple(self.sink_kinds)
        )
        write_snapshot(cfg.data_dir, self.gateway.release)
        self.write_config_snapshot()
        self.gateway.on_connection_state.append(lambda _: self.write_status())
        self.gateway.on_control.append(lambda _: self.write_status())
        try:
            await self.gateway.start()
        except BaseException:
            self.write_status(stopped=True)  # the failed start-up checks, for `livegate status`
            self._log_stream.close()
            raise
        if cfg.gate_override is not None:
            who, why = cfg.gate_override
            self._override_ns = self.gateway.clock.now_ns()
            release = self.gateway.release
            config_id = release.config_id if release is not None else ""
            await self.gateway.record(GateOverridden(who, why, config_id, self._override_ns))
            log.warning("live start without a passing go-live gate: overridden by %s: %s", who, why)
        self.alerts.start()
        if self.reconciler is not None:
            self.reconciler.start()
        if on_ready is not None:
            on_ready()
        strategy_task = (
            asyncio.create_task(self._run_strategy(strategy), name="livegate-strategy")
            if strategy is not None
            else None
        )
        status_task = asyncio.create_task(self._status_loop(), name="livegate-status")
        control_task = asyncio.create_task(self._control_loop(), name="livegate-control")
        eod_task = (
            asyncio.create_task(self._eod_loop(), name="livegate-eod") if cfg.calendar else None
        )
        try:
            if run_for is None:
                await self._stop.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), run_for)
        finally:
            for task in (strategy_task, status_task, control_task, eod_task):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            await self.alerts.stop()
            if self.reconciler is not None:
                await self.reconciler.stop()
            await self.gateway.stop()
            self.write_status(stopped=True)
            self._log_stream.close()
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)

    def _overridden(self, gateway: Gateway) -> str | None:
        """P1 from an override of the go-live gate until a person acknowledges it."""
        if not self._override_ns or self.config.gate_override is None:
            return None
        acknowledged = any(
            a.key == "gate-override" and a.state == "ACKNOWLEDGED" and a.ts_ns >= self._override_ns
            for a in gateway.book.alerts
        )
        who, why = self.config.gate_override
        return None if acknowledged else f"live without a passing go-live gate: {who}: {why}"

    async def _run_strategy(self, strategy: Strategy) -> None:
        try:
            await strategy(self.gateway)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The strategy's failure is not the gateway's: it keeps serving
            # (recon, alerts, control commands) until told to stop.
            log.exception("strategy failed")

    async def _control_loop(self) -> None:
        """Reconciliation asked for from the CLI (`livegate recon` / `diffs --dir`)."""
        control = self.gateway.config.control_dir
        assert control is not None
        while True:
            await asyncio.sleep(0.2)
            for command in read_recon_commands(control):
                if command.op == "fallback":
                    answer = await self._fallback(command)
                else:
                    answer = await self._reconcile(command)
                answer_recon_command(control, command, answer)

    async def _fallback(self, command: ReconCommand) -> dict[str, Any]:
        """`livegate fallback paper|live`: the switch, or why it did not happen."""
        try:
            if command.action == "paper":
                event = await fall_back_to_paper(
                    self.gateway, command.who, command.why, command.command_id
                )
            elif command.action == "live":
                event = await return_to_live(
                    self.gateway, command.who, command.why, command.command_id
                )
            else:
                raise ValueError(f"fallback to {command.action!r}: choose paper or live")
        except (FallbackRefused, ValueError) as exc:
            return {"ok": False, "error": str(exc)}
        self.write_status()
        return {"ok": True, "error": "", "venue": event.venue, "paper_book": event.paper_book}

    async def _reconcile(self, command: ReconCommand) -> dict[str, Any]:
        reconciler = self.reconciler or Reconciler(self.gateway, ReconConfig(settle_window=0))
        answer: dict[str, Any] = {"ok": True, "error": ""}
        report: Report | None = None
        try:
            if command.op == "run":
                if command.eod:  # the report written, and journaled for the gate
                    out = Path(command.out) if command.out else self.config.data_dir
                    result, report, paths = await reconciler.end_of_day(self.trading_day(), out)
                    answer["paths"] = {kind: str(path) for kind, path in paths.items()}
                else:
                    result = await reconciler.run(eod=True)
                answer["findings"] = len(result.findings)
                answer["opened"] = result.opened
                answer["auto_resolved"] = result.auto_resolved
                answer["cleared"] = result.cleared
            elif command.op == "ack":
                await reconciler.acknowledge(command.diff_id, command.who, command.why)
            elif command.op == "resolve":
                await reconciler.resolve(command.diff_id, command.action, command.who, command.why)
            else:
                raise ValueError(f"unknown reconciliation request {command.op!r}")
        except (ValueError, KeyError) as exc:
            return {"ok": False, "error": str(exc.args[0] if exc.args else exc)}
        if report is None:
            report = build_report(
                reconciler.diffs(open_only=command.op != "run" and not command.show_all),
                self.trading_day(),
                self.gateway.config.account,
                reconciler.config.policy.describe(),
            )
        answer["report"] = msgspec.to_builtins(report)
        return answer

    async def _eod_loop(self) -> None:
        """At each close of the calendar (on the gateway's clock, so a compressed day
        closes too): the end-of-day reconciliation, its report, and its journal entry."""
        clock = self.gateway.clock
        after = int(self.config.eod_after_close * 1e9)
        while True:
            now = clock.now_ns()
            ahead = trading_sessions(self.config.calendar, now - _DAY_NS, now + 10 * _DAY_NS)
            upcoming = [s for s in ahead if s.close_ns + after > now]
            if not upcoming:
                await clock.sleep_until(now + _DAY_NS)
                continue
            session = upcoming[0]
            await clock.sleep_until(session.close_ns + after)
            reconciler = self.reconciler or Reconciler(self.gateway, ReconConfig(settle_window=0))
            try:
                run, _, paths = await reconciler.end_of_day(session.day, self.config.data_dir)
            except Exception:
                log.exception("end-of-day reconciliation of %s failed", session.day)
                continue
            log.info(
                "end-of-day reconciliation of %s: %d difference(s); report %s",
                session.day,
                len(run.findings),
                paths.get("html"),
            )

    def trading_day(self) -> datetime.date:
        """The session now belongs to (the last one opened), else the clock's date."""
        now = self.gateway.clock.now_ns()
        if self.config.calendar:
            opened = [
                s
                for s in trading_sessions(self.config.calendar, now - 7 * _DAY_NS, now)
                if s.open_ns <= now
            ]
            if opened:
                return opened[-1].day
        return datetime.datetime.fromtimestamp(now / 1e9).date()

    async def _status_loop(self) -> None:
        while True:
            self.write_status()
            await asyncio.sleep(self.config.status_interval)

    def status(self, stopped: bool = False) -> dict[str, Any]:
        g = self.gateway
        open_orders = sum(1 for _ in g.book.open_orders())
        return {
            "pid": os.getpid(),
            "environment": self.config.environment,
            "account": g.config.account,
            "broker": g.adapter.name,
            "started_ns": self.started_ns,
            "updated_ns": time.time_ns(),
            "running": not stopped,
            "connection_state": g.connection_state.value,
            "ready": g.ready,
            "trading_state": g.trading_state.value,
            "last_connect_error": repr(g.last_connect_error) if g.last_connect_error else None,
            "disconnects": g.disconnects,
            "reconnects": g.reconnects,
            "orders": len(g.book.orders),
            "open_orders": open_orders,
            "open_alerts": self.alerts.open_alerts(),
            "metrics_url": self.metrics_url,
            "heartbeat_rtt_ms": round(g.heartbeat_rtt * 1e3, 3) if g.heartbeat_rtt else None,
            "clock_skew_s": g.clock_skew,
            "health": [dataclasses.asdict(check) for check in g.health],
            "broker_account": self._broker_account(),
            **lease_status(g.journal.store),
            **release_status(g),
        }

    def _broker_account(self) -> dict[str, Any] | None:
        """The broker's positions and cash as the latest reconciliation fetched them."""
        reconciler = self.reconciler
        account = reconciler.last_account if reconciler is not None else None
        if reconciler is None or account is None:
            return None
        data: dict[str, Any] = msgspec.to_builtins(account)
        data["at_ns"] = reconciler.last_view_ns
        return data

    def write_config_snapshot(self) -> None:
        data = config_snapshot(self.gateway, self.config.profile)
        text = json.dumps(data, indent=2, default=_plain).encode()
        atomic_write(self.config.data_dir / "config-snapshot.json", text)

    def write_status(self, stopped: bool = False) -> None:
        status = json.dumps(self.status(stopped), indent=2).encode()
        atomic_write(self.config.data_dir / STATUS_FILE, status)


def config_snapshot(gateway: Gateway, profile: Profile | None) -> dict[str, Any]:
    """What this run was configured with. Credentials appear only as their references
    (env:VAR, file:PATH:SECTION): a Secret cannot be encoded, so one that strayed
    in here would fail loudly rather than print."""
    return {
        "profile": snapshot(profile) if profile is not None else None,
        "broker": gateway.adapter.name,
        "gateway": dataclasses.asdict(gateway.config),
    }


def _plain(value: object) -> str:
    if isinstance(value, Path | Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} does not belong in a config snapshot")


def read_status(data_dir: Path) -> dict[str, Any] | None:
    path = data_dir / STATUS_FILE
    if not path.exists():
        return None
    result: dict[str, Any] = json.loads(path.read_text())
    return result
