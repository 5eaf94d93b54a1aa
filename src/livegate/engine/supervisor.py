"""The broker connection: start-up checks, heartbeats, reconnects, the connection state.

Invariant guarded here: orders go out only while the connection is READY
or DEGRADED, that is connected and recovered. Between a drop and the end
of the recovery sync, new orders are refused (NOT_READY), never queued.
The same supervision holds for every adapter: a heartbeat watch tells a
quiet broker from a dead one, reconnects back off with jitter, and refused
credentials wait long enough never to hammer the broker.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from livegate.broker.errors import BrokerAuthError
from livegate.engine.health import ClockSkewError, HealthCheck
from livegate.engine.parts import Parts
from livegate.engine.pipeline import Pipeline
from livegate.model.enums import ConnectionState
from livegate.model.errors import JournalError
from livegate.model.events import ConnectionChanged

log = logging.getLogger("livegate.gateway")
T = TypeVar("T")


class Supervisor:
    def __init__(self, parts: Parts, pipeline: Pipeline) -> None:
        self.parts = parts
        self.pipeline = pipeline
        self.ready = False  # connected and recovered: new orders may go out
        self.stopping = False
        self.connection_state = ConnectionState.DISCONNECTED
        self.last_connect_error: BaseException | None = None  # cleared once connected
        self.reconnects = 0
        self.disconnects = 0
        self.connected_ns = 0  # when the current broker session began
        self.health: list[HealthCheck] = []  # the start-up checks of the last start
        self.heartbeat_rtt: float | None = None
        self.clock_skew: float | None = None  # broker clock minus ours, seconds
        # Called with each new connection state (metrics, alerts, a status view).
        self.on_connection_state: list[Callable[[ConnectionState], None]] = []
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._stream_task: asyncio.Task[None] | None = None

    # -- start-up ----------------------------------------------------------------
    async def check(self, name: str, step: Awaitable[T]) -> T:
        """One start-up health check, timed and kept in `health`; a failure stops the start."""
        started = time.perf_counter()
        try:
            result = await step
        except Exception as exc:
            ms = (time.perf_counter() - started) * 1e3
            self.health.append(HealthCheck(name, False, f"{type(exc).__name__}: {exc}", ms))
            log.error("start-up check %r failed: %s", name, exc)
            exc.add_note(f"livegate: the start-up check {name!r} failed; nothing was sent")
            raise
        ms = (time.perf_counter() - started) * 1e3
        self.health.append(HealthCheck(name, True, "", ms))
        return result

    async def open_session(self) -> None:
        """Connect, then authenticate where the adapter does that as its own step."""
        adapter = self.parts.adapter
        self.set_connection(ConnectionState.CONNECTING)
        await adapter.connect()
        authenticate = getattr(adapter, "authenticate", None)
        if authenticate is not None:
            self.set_connection(ConnectionState.AUTHENTICATING)
            await authenticate()
        self.last_connect_error = None
        self.connected_ns = self.parts.clock.now_ns()

    async def startup_heartbeat(self) -> None:
        _, skew = await self._heartbeat_once()
        limit = self.parts.config.max_clock_skew
        if skew is not None and abs(skew) > limit:
            raise ClockSkewError(f"broker clock is {skew:+.3f}s from ours (limit {limit:g}s)")
        self.health.append(
            HealthCheck(
                "clock skew", True, "broker gives no clock" if skew is None else f"{skew:+.4f}s", 0
            )
        )

    # -- while running -------------------------------------------------------------
    def watch(self) -> None:
        interval = self.parts.config.heartbeat_interval
        if interval:
            self._heartbeat_task = asyncio.create_task(
                self._watch_heartbeats(interval), name="livegate-heartbeat"
            )

    def unwatch(self) -> None:
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            self._heartbeat_task = None

    async def _heartbeat_once(self) -> tuple[float, float | None]:
        """A heartbeat round trip: (seconds, broker clock minus ours or None)."""
        started = time.perf_counter()
        sent_ns = time.time_ns()
        broker_ns = await asyncio.wait_for(
            self.parts.adapter.heartbeat(), self.parts.config.heartbeat_timeout
        )
        rtt = time.perf_counter() - started
        skew = None
        if broker_ns:
            skew = (broker_ns - (sent_ns + int(rtt * 5e8))) / 1e9  # against our midpoint
        self.heartbeat_rtt, self.clock_skew = rtt, skew
        return rtt, skew

    async def _watch_heartbeats(self, interval: float) -> None:
        """Tell a quiet broker from a dead one; mark the connection DEGRADED while slow."""
        cfg = self.parts.config
        while True:
            await asyncio.sleep(interval)
            if self.connection_state not in (ConnectionState.READY, ConnectionState.DEGRADED):
                continue  # the reconnect loop owns the connection now
            try:
                rtt, skew = await self._heartbeat_once()
            except Exception as exc:
                log.warning("heartbeat failed (%r): dropping the connection to reconnect", exc)
                await self.abort_connection()
                continue
            slow = rtt > cfg.degraded_latency or (
                skew is not None and abs(skew) > cfg.max_clock_skew
            )
            if slow and self.connection_state is ConnectionState.READY:
                log.warning("broker connection degraded: rtt %.3fs, skew %s", rtt, skew)
                self.set_connection(ConnectionState.DEGRADED)
            elif not slow and self.connection_state is ConnectionState.DEGRADED:
                self.set_connection(ConnectionState.READY)

    async def abort_connection(self) -> None:
        adapter = self.parts.adapter
        abort = getattr(adapter, "abort", None)
        if abort is not None:
            abort()
        else:
            await adapter.close()

    def start_stream(self, recover: Callable[[], Awaitable[None]]) -> None:
        """Consume the adapter's reports in a task of our own (`run_stream`)."""
        self._stream_task = asyncio.create_task(self.run_stream(recover), name="livegate-ingest")

    async def end_stream(self) -> None:
        """After the adapter closed: let the stream end (5 s at most), else cut it."""
        task, self._stream_task = self._stream_task, None
        if task is not None:
            try:
                await asyncio.wait_for(task, 5)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()

    def cancel_stream(self) -> None:
        if self._stream_task is not None:
            self._stream_task.cancel()
            self._stream_task = None

    async def run_stream(self, recover: Callable[[], Awaitable[None]]) -> None:
        """Consume the report stream; when it ends while we run, reconnect and `recover`.

        The heartbeat watch drops a connection that stopped answering, which
        ends the stream and brings us here too.
        """
        parts, ingest = self.parts, self.pipeline.ingest
        while True:
            try:
                async for report in parts.adapter.reports():
                    ingest(report, "stream")
            except JournalError:
                log.error("journal failed; report ingest stopped")
                return
            except Exception:
                log.exception("report stream ended with an error")
            if self.stopping:
                return
            self.disconnects += 1
            if parts.metrics is not None:
                parts.metrics.disconnects.inc()
            self.set_connection(ConnectionState.DISCONNECTED)
            log.warning("broker connection lost; reconnecting")
            if not await self._reconnect():
                return
            self.reconnects += 1
            if parts.metrics is not None:
                parts.metrics.reconnects.inc()
            self.set_connection(ConnectionState.SYNCING)
            try:
                await recover()
            except Exception:
                log.exception("recovery after reconnect failed; reconnecting again")
                await self.abort_connection()
                continue
            self.set_connection(ConnectionState.READY)

    async def _reconnect(self) -> bool:
        """Until a session is open (True), or the gateway stops (False)."""
        attempt = 0
        while not self.stopping:
            await asyncio.sleep(self._reconnect_wait(attempt))
            attempt += 1
            try:
                await self.open_session()
                return True
            except Exception as exc:
                self.last_connect_error = exc
                self.set_connection(ConnectionState.DISCONNECTED)
                log.warning("reconnect attempt %d failed: %r", attempt, exc)
        return False

    def _reconnect_wait(self, attempt: int) -> float:
        """Exponential backoff with equal jitter; a refused credential waits longer."""
        cfg = self.parts.config
        ceiling = min(cfg.reconnect_max_delay, cfg.reconnect_delay * (2**attempt))
        wait: float = ceiling / 2 + random.uniform(0, ceiling / 2)
        if isinstance(self.last_connect_error, BrokerAuthError):
            wait = max(wait, cfg.auth_retry_delay)  # a bad key does not improve by asking
        return wait

    def set_connection(self, state: ConnectionState) -> None:
        """One place for the connection state: readiness, the gauge, the hooks, and the
        journal when readiness flips (the gate's proof of a whole trading day)."""
        was_ready = self.ready
        self.ready = state in (ConnectionState.READY, ConnectionState.DEGRADED)
        if self.ready != was_ready and self.parts.journal.writable:
            event = ConnectionChanged(self.ready, state.value, self.parts.clock.now_ns())
            self.pipeline.record_nowait(event)
        if state is self.connection_state:
            return
        self.connection_state = state
        metrics = self.parts.metrics
        if metrics is not None:
            metrics.ready.set(1 if self.ready else 0)
            metrics.connection_state = state
        for hook in self.on_connection_state:
            try:
                hook(state)
            except Exception:
                log.exception("connection state hook %r failed", hook)
