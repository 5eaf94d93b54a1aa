"""The gateway's parts, and its connection's state, under the names its public API
has always used.

Each reads and writes the one shared `Parts`, so swapping, say, the
metrics of a built gateway (as `livegate serve` does) reaches every room.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from livegate.broker.adapter import BrokerAdapter
from livegate.engine.config import GatewayConfig
from livegate.engine.health import HealthCheck
from livegate.engine.hooks import MetricsHook, OrderLogHook
from livegate.engine.parts import Parts
from livegate.journal.journal import Journal
from livegate.model.clock import Clock
from livegate.model.enums import ConnectionState
from livegate.model.instrument import InstrumentRegistry
from livegate.risk.engine import RiskEngine

if TYPE_CHECKING:
    from livegate.engine.orders import OrderEntry
    from livegate.engine.supervisor import Supervisor


class PartsAccess:
    parts: Parts

    @property
    def adapter(self) -> BrokerAdapter:
        return self.parts.adapter

    @adapter.setter
    def adapter(self, value: BrokerAdapter) -> None:
        self.parts.adapter = value

    @property
    def journal(self) -> Journal:
        return self.parts.journal

    @journal.setter
    def journal(self, value: Journal) -> None:
        self.parts.journal = value

    @property
    def instruments(self) -> InstrumentRegistry:
        return self.parts.instruments

    @instruments.setter
    def instruments(self, value: InstrumentRegistry) -> None:
        self.parts.instruments = value

    @property
    def config(self) -> GatewayConfig:
        return self.parts.config

    @config.setter
    def config(self, config: GatewayConfig) -> None:
        self.parts.config = config

    @property
    def risk(self) -> RiskEngine:
        return self.parts.risk

    @risk.setter
    def risk(self, value: RiskEngine) -> None:
        self.parts.risk = value

    @property
    def metrics(self) -> MetricsHook | None:
        return self.parts.metrics

    @metrics.setter
    def metrics(self, metrics: MetricsHook | None) -> None:
        self.parts.metrics = metrics
        if metrics is not None:
            journal = self.parts.journal
            metrics.watch_journal(lambda: float(journal.pending_events))

    @property
    def order_log(self) -> OrderLogHook | None:
        return self.parts.order_log

    @order_log.setter
    def order_log(self, order_log: OrderLogHook | None) -> None:
        self.parts.order_log = order_log

    @property
    def clock(self) -> Clock:
        """The trading timeline every journaled stamp is read from (model/clock.py)."""
        return self.parts.clock


class ConnectionStatus:
    """The broker connection's state and figures, kept by the supervisor."""

    supervisor: Supervisor
    entry: OrderEntry

    @property
    def on_connection_state(self) -> list[Callable[[ConnectionState], None]]:
        """Called with each new connection state (metrics, alerts, a status view)."""
        return self.supervisor.on_connection_state

    @property
    def connection_state(self) -> ConnectionState:
        return self.supervisor.connection_state

    @property
    def last_connect_error(self) -> BaseException | None:
        return self.supervisor.last_connect_error

    @property
    def reconnects(self) -> int:
        return self.supervisor.reconnects

    @property
    def disconnects(self) -> int:
        return self.supervisor.disconnects

    @property
    def connected_ns(self) -> int:
        """When the current broker session began."""
        return self.supervisor.connected_ns

    @property
    def health(self) -> list[HealthCheck]:
        """The start-up checks of the last start."""
        return self.supervisor.health

    @property
    def heartbeat_rtt(self) -> float | None:
        return self.supervisor.heartbeat_rtt

    @property
    def clock_skew(self) -> float | None:
        """Broker clock minus ours, seconds."""
        return self.supervisor.clock_skew

    @property
    def throttled(self) -> int:
        """Requests the broker throttled at least once."""
        return self.entry.throttled
