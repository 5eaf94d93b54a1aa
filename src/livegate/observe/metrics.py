"""Prometheus metrics for one gateway, opt-in: with none configured the hot path pays nothing.

Counters for what happened (orders submitted, acknowledged, refused by
reason, fills, cancels, report anomalies, disconnects), a readiness gauge,
and latency histograms: submit to broker acknowledgement, report receipt
to state applied, broker event time to our receipt (where the broker
stamps it), and strategy callback duration.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

# Order round trips on a local paper broker take a millisecond; on a real
# broker tens to hundreds. Report handling is microseconds to milliseconds.
ROUND_TRIP_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
HANDLING_BUCKETS = (1e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.05, 0.1, 0.5)
CALLBACK_BUCKETS = (1e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 0.01, 0.1)


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry()
        self.orders_submitted = Counter(
            "livegate_orders_submitted", "Orders submitted (intent journaled)", registry=r
        )
        self.orders_accepted = Counter(
            "livegate_orders_accepted", "Orders the broker acknowledged", registry=r
        )
        self.orders_rejected = Counter(
            "livegate_orders_rejected", "Orders refused, by reason code", ["reason"], registry=r
        )
        self.fills = Counter("livegate_fills", "Fills counted (each exactly once)", registry=r)
        self.cancels = Counter("livegate_cancels_sent", "Cancel requests sent", registry=r)
        self.cancels_refused = Counter(
            "livegate_cancels_refused", "Cancels refused by the broker or risk", registry=r
        )
        self.anomalies = Counter(
            "livegate_report_anomalies", "Reports refused or parked, by kind", ["kind"], registry=r
        )
        self.disconnects = Counter("livegate_disconnects", "Broker connection losses", registry=r)
        self.ready = Gauge(
            "livegate_ready", "1 when connected and recovered: orders go out", registry=r
        )
        self.recon_diffs = Counter(
            "livegate_recon_diffs",
            "Reconciliation diffs opened, by severity",
            ["severity"],
            registry=r,
        )
        self.order_round_trip = Histogram(
            "livegate_order_round_trip_seconds",
            "Submit to broker acknowledgement",
            buckets=ROUND_TRIP_BUCKETS,
            registry=r,
        )
        self.report_handling = Histogram(
            "livegate_report_handling_seconds",
            "Report receipt to state applied (journal included)",
            buckets=HANDLING_BUCKETS,
            registry=r,
        )
        self.report_latency = Histogram(
            "livegate_report_latency_seconds",
            "Broker event time to our receipt",
            buckets=ROUND_TRIP_BUCKETS,
            registry=r,
        )
        self.callback_duration = Histogram(
            "livegate_callback_seconds",
            "Strategy callback duration",
            buckets=CALLBACK_BUCKETS,
            registry=r,
        )
        self.journal_pending = Gauge(
            "livegate_journal_pending_events", "Events appended, not yet durable", registry=r
        )

    def watch_journal(self, pending: Callable[[], float]) -> None:
        self.journal_pending.set_function(pending)

    def serve(self, port: int, address: str = "127.0.0.1") -> None:
        """Serve /metrics over HTTP on a thread of its own."""
        start_http_server(port, address, registry=self.registry)
