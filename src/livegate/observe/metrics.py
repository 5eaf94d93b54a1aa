"""Prometheus metrics for one gateway, opt-in and cheap.

Counters for what happened (orders submitted, acknowledged, refused by
reason, fills, cancels, report anomalies, disconnects), a readiness gauge,
and latency histograms: submit to broker acknowledgement, report receipt
to state applied, broker event time to our receipt (where the broker
stamps it), and strategy callback duration.

prometheus_client's own metric objects take a lock and do Python work on
every update; measured, that cost the order path 27%. Here the hot path
only adds to plain Python numbers (a histogram observation is a list
append of integer nanoseconds, bucketed later), and a collector turns them into metric families when
/metrics is scraped. Updates happen on the event loop thread only; a scrape
on the server thread may see a histogram's count and sum one event apart.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from livegate.model.enums import ConnectionState

# Order round trips on a local paper broker take a millisecond; on a real
# broker tens to hundreds. Report handling is microseconds to milliseconds.
ROUND_TRIP_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
HANDLING_BUCKETS = (1e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.05, 0.1, 0.5)
CALLBACK_BUCKETS = (1e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 0.01, 0.1)


class _Counter:
    __slots__ = ("children", "value")

    def __init__(self) -> None:
        self.value = 0.0
        self.children: dict[str, _Counter] = {}

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def labels(self, label: str) -> _Counter:
        child = self.children.get(label)
        if child is None:
            child = self.children[label] = _Counter()
        return child


class _Gauge:
    __slots__ = ("function", "value")

    def __init__(self) -> None:
        self.value = 0.0
        self.function: Callable[[], float] | None = None

    def set(self, value: float) -> None:
        self.value = value

    def set_function(self, function: Callable[[], float]) -> None:
        self.function = function

    def read(self) -> float:
        return self.function() if self.function is not None else self.value


class _Histogram:
    """Observations in integer nanoseconds, appended raw and bucketed later.

    `observe` is the list's own append (no Python frame: about 50 ns against
    300 for a bisect and three additions), and integers spare the order
    path a division and a float per observation. `fold` empties the list
    into the buckets; the gateway calls it a few times a second and a scrape
    calls it first, so the list stays short. Appends never take the lock: a
    list's append and a slice deletion are each atomic under the GIL, and
    `fold` deletes only the values it has counted.
    """

    __slots__ = ("bounds", "bounds_ns", "count", "counts", "lock", "observe", "sum_ns", "values")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds  # seconds, as exported
        self.bounds_ns = [round(b * 1e9) for b in bounds]
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.count = 0
        self.sum_ns = 0
        self.values: list[int] = []
        self.observe: Callable[[int], None] = self.values.append
        self.lock = threading.Lock()  # between folders (loop and scrape), not appenders

    def fold(self) -> None:
        with self.lock:
            values = self.values
            n = len(values)
            if not n:
                return
            counts, bounds = self.counts, self.bounds_ns
            batch = values[:n]
            for value in batch:
                counts[bisect_left(bounds, value)] += 1
            self.sum_ns += sum(batch)
            self.count += n
            del values[:n]

    @property
    def sum(self) -> float:
        return self.sum_ns / 1e9

    def cumulative(self) -> list[tuple[str, float]]:
        self.fold()
        buckets, running = [], 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), float(running)))
        return buckets


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.orders_submitted = _Counter()
        self.orders_accepted = _Counter()
        self.orders_rejected = _Counter()  # by reason
        self.fills = _Counter()
        self.paper_fills = _Counter()  # of them, on the paper broker after a fallback
        self.cancels = _Counter()
        self.cancels_refused = _Counter()
        self.anomalies = _Counter()  # by kind
        self.disconnects = _Counter()
        self.reconnects = _Counter()
        self.connection_state = ConnectionState.DISCONNECTED
        self.recon_diffs = _Counter()  # by severity
        self.ready = _Gauge()
        self.journal_pending = _Gauge()
        # Read at scrape time, from the scrape's thread: plain values replaced whole.
        self.trading_state: Callable[[], str] = lambda: "ACTIVE"
        self.venue: Callable[[], str] = lambda: "live"
        self.open_alerts: Callable[[], dict[str, int]] = dict
        self.order_round_trip = _Histogram(ROUND_TRIP_BUCKETS)
        self.report_handling = _Histogram(HANDLING_BUCKETS)
        self.report_latency = _Histogram(ROUND_TRIP_BUCKETS)
        self.callback_duration = _Histogram(CALLBACK_BUCKETS)
        self.histograms = (
            self.order_round_trip,
            self.report_handling,
            self.report_latency,
            self.callback_duration,
        )
        self.registry.register(_Exporter(self))

    def fold(self) -> None:
        """Bucket the observations made since the last fold (see _Histogram)."""
        for hist in self.histograms:
            hist.fold()

    def watch_journal(self, pending: Callable[[], float]) -> None:
        self.journal_pending.set_function(pending)

    def serve(self, port: int, address: str = "127.0.0.1") -> int:
        """Serve /metrics over HTTP on a thread of its own; port 0 picks a free one."""
        server, _ = start_http_server(port, address, registry=self.registry)
        return int(server.server_port)


class _Exporter(Collector):
    def __init__(self, metrics: GatewayMetrics) -> None:
        self.m = metrics

    def collect(self) -> Iterator[Metric]:
        m = self.m
        plain = (
            (
                "livegate_orders_submitted",
                "Orders submitted (intent journaled)",
                m.orders_submitted,
            ),
            ("livegate_orders_accepted", "Orders the broker acknowledged", m.orders_accepted),
            ("livegate_fills", "Fills counted (each exactly once)", m.fills),
            ("livegate_paper_fills", "Of those, paper fills after a fallback", m.paper_fills),
            ("livegate_cancels_sent", "Cancel requests sent", m.cancels),
            (
                "livegate_cancels_refused",
                "Cancels refused by the broker or risk",
                m.cancels_refused,
            ),
            ("livegate_disconnects", "Broker connection losses", m.disconnects),
            ("livegate_reconnects", "Reconnections that reached recovery", m.reconnects),
        )
        for name, text, counter in plain:
            yield CounterMetricFamily(name, text, value=counter.value)
        labelled = (
            ("livegate_orders_rejected", "Orders refused, by reason", "reason", m.orders_rejected),
            ("livegate_report_anomalies", "Reports refused or parked", "kind", m.anomalies),
            ("livegate_recon_diffs", "Reconciliation diffs opened", "severity", m.recon_diffs),
        )
        for name, text, label, counter in labelled:
            family = CounterMetricFamily(name, text, labels=[label])
            for value, child in sorted(counter.children.items()):
                family.add_metric([value], child.value)
            yield family
        yield GaugeMetricFamily("livegate_ready", "1 when orders go out", value=m.ready.read())
        # The ratios are derivable from the counters; exported too for dashboards
        # and alert rules that want one number.
        submitted, sent = m.orders_submitted.value, m.cancels.value
        yield GaugeMetricFamily(
            "livegate_place_success_ratio",
            "Orders the broker acknowledged, of those submitted (1 before any)",
            value=m.orders_accepted.value / submitted if submitted else 1.0,
        )
        yield GaugeMetricFamily(
            "livegate_cancel_success_ratio",
            "Cancels not refused, of those sent (1 before any)",
            value=1.0 - m.cancels_refused.value / sent if sent else 1.0,
        )
        state = GaugeMetricFamily(
            "livegate_connection_state", "1 for the current connection state", labels=["state"]
        )
        for each in ConnectionState:
            state.add_metric([each.value], 1.0 if each is m.connection_state else 0.0)
        yield state
        trading = GaugeMetricFamily(
            "livegate_trading_state", "1 for the current trading state", labels=["state"]
        )
        current = m.trading_state()
        for name in ("ACTIVE", "REDUCING", "HALTED"):
            trading.add_metric([name], 1.0 if name == current else 0.0)
        yield trading
        venue = GaugeMetricFamily(
            "livegate_venue", "1 for where orders go: live, or paper after a fallback",
            labels=["venue"],
        )  # fmt: skip
        current_venue = m.venue()
        for name in ("live", "paper"):
            venue.add_metric([name], 1.0 if name == current_venue else 0.0)
        yield venue
        alerts = GaugeMetricFamily(
            "livegate_open_alerts", "Alerts firing now, by level", labels=["level"]
        )
        firing = m.open_alerts()
        for level in ("P0", "P1", "P2"):
            alerts.add_metric([level], float(firing.get(level, 0)))
        yield alerts
        yield GaugeMetricFamily(
            "livegate_journal_pending_events",
            "Events appended, not yet durable",
            value=m.journal_pending.read(),
        )
        histograms = (
            (
                "livegate_order_round_trip_seconds",
                "Submit to broker acknowledgement",
                m.order_round_trip,
            ),
            (
                "livegate_report_handling_seconds",
                "Report receipt to state applied",
                m.report_handling,
            ),
            (
                "livegate_report_latency_seconds",
                "Broker event time to our receipt",
                m.report_latency,
            ),
            ("livegate_callback_seconds", "Strategy callback duration", m.callback_duration),
        )
        for name, text, hist in histograms:
            yield HistogramMetricFamily(name, text, buckets=hist.cumulative(), sum_value=hist.sum)
