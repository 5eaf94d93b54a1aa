"""What the engine asks of metrics and order logs: the interfaces `observe` implements.

The engine calls these on its hot path and imports nothing from `observe`
(layers point down only): `observe.metrics.GatewayMetrics` and
`observe.logs.OrderLog` satisfy them structurally. None in their place
costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from livegate.model.enums import ConnectionState
from livegate.model.orders import Order, OrderIntent
from livegate.model.reports import Fill


class CounterHook(Protocol):
    value: float  # the hot path adds to it directly: a call costs more

    def inc(self, amount: float = 1.0) -> None: ...


class LabelledCounterHook(Protocol):
    def labels(self, label: str) -> CounterHook: ...


class GaugeHook(Protocol):
    def set(self, value: float) -> None: ...


class HistogramHook(Protocol):
    @property
    def observe(self) -> Callable[[int], None]: ...  # integer nanoseconds


class MetricsHook(Protocol):
    """The counters, gauges and histograms the gateway feeds."""

    connection_state: ConnectionState

    @property
    def orders_submitted(self) -> CounterHook: ...
    @property
    def orders_accepted(self) -> CounterHook: ...
    @property
    def orders_rejected(self) -> LabelledCounterHook: ...
    @property
    def fills(self) -> CounterHook: ...
    @property
    def paper_fills(self) -> CounterHook: ...
    @property
    def cancels(self) -> CounterHook: ...
    @property
    def cancels_refused(self) -> CounterHook: ...
    @property
    def anomalies(self) -> LabelledCounterHook: ...
    @property
    def disconnects(self) -> CounterHook: ...
    @property
    def reconnects(self) -> CounterHook: ...
    @property
    def ready(self) -> GaugeHook: ...
    @property
    def order_round_trip(self) -> HistogramHook: ...
    @property
    def report_handling(self) -> HistogramHook: ...
    @property
    def report_latency(self) -> HistogramHook: ...
    @property
    def callback_duration(self) -> HistogramHook: ...
    @property
    def recon_diffs(self) -> LabelledCounterHook: ...  # fed by reconciliation, by severity

    def fold(self) -> None:
        """Bucket what was observed since the last call (off the order path)."""

    def watch_journal(self, pending: Callable[[], float]) -> None: ...


class OrderLogHook(Protocol):
    """One structured line per order event, written in batches (`flush`)."""

    @property
    def flush_interval(self) -> float: ...

    def submit(self, intent: OrderIntent, basket: bool = False) -> object: ...
    def cancel(self, client_order_id: str, broker_order_id: str | None) -> object: ...
    def change(self, order: Order, fill: Fill | None) -> object: ...
    def forget(self, client_order_ids: set[str]) -> object:
        """Orders that left memory (engine/archive.py): drop what is kept about them."""

    venue: str  # "paper" after a fallback: every line says so

    def flush(self) -> object: ...
