"""What every room of the engine shares, in one place.

The gateway's collaborators (pipeline, supervisor, order entry, recovery)
each hold this, never each other's insides: swapping the metrics or the
order log of a built gateway (as `livegate serve` does) reaches all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from livegate.broker.adapter import BrokerAdapter
from livegate.engine.config import GatewayConfig
from livegate.engine.hooks import MetricsHook, OrderLogHook
from livegate.journal.journal import Journal
from livegate.model.clock import SYSTEM_CLOCK, Clock
from livegate.model.instrument import InstrumentRegistry
from livegate.risk.engine import RiskEngine


@dataclass
class Parts:
    adapter: BrokerAdapter
    journal: Journal
    instruments: InstrumentRegistry
    config: GatewayConfig
    risk: RiskEngine
    metrics: MetricsHook | None = None  # None: no metric costs anything on the hot path
    order_log: OrderLogHook | None = None  # None: no log line on the order path
    clock: Clock = SYSTEM_CLOCK  # the trading timeline (model/clock.py)
