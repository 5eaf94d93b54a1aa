"""The gateway's settings, checked when they are made.

A negative timeout or rate must fail where it is written (a profile, a
test, a script), not as every order turning UNKNOWN later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from livegate.engine.retry import RetryPolicy


@dataclass
class GatewayConfig:
    """Timeouts and recovery timing, in seconds.

    gap_fetch_after: a fill gap (the broker says more is filled than the
        fills we hold) this old makes us fetch today's trades.
    gap_grace: a gap this old, still open, is closed with an inferred fill.
    unknown_grace: an UNKNOWN order the broker still shows no sign of after
        this long is resent (only to a broker that dedups client ids) or
        finalized as REJECTED / NOT_FOUND_AT_BROKER.
    resolve_interval: how often the resolver looks at gaps and unknowns.
    gil_switch_interval: set as the interpreter's switch interval while the
        gateway runs (restored on stop), so the journal writer thread gets
        the GIL back within this long instead of the default 5 ms; measured:
        SQLite batch inserts 303k rows/s beside a busy thread at 5 ms, 439k at
        1 ms. None leaves the host's setting alone.
    heartbeat_interval: how often the broker's liveness is checked with a
        heartbeat round trip (None: never); one that takes longer than
        `heartbeat_timeout` drops the connection, which then reconnects.
    degraded_latency / max_clock_skew: a heartbeat slower than this, or a
        broker clock further off than this, makes the connection DEGRADED
        (orders still go out). At start, a skew beyond max_clock_skew
        refuses to start.
    reconnect_delay / reconnect_max_delay: exponential backoff with jitter
        between reconnect attempts; a refused credential waits at least
        `auth_retry_delay`, so we never hammer a broker with a bad key.
    retry: how a place or cancel that certainly did not reach the broker,
        or was throttled, is tried again (engine/retry.py).
    broker_rate_limit / broker_rate_burst: a client-side token bucket on
        places and cancels, to stay under the broker's published limit.
    checkpoint_every: journal events between two checkpoints of the book
        (engine/book_state.py), so a start after a crash replays at most about
        this many. One is always written at each clean stop and after each
        end-of-day reconciliation. 0 (the default): only those, because a
        checkpoint still holds every order the book holds, finished ones too,
        and encoding it pauses the event loop (about 1.5 s at 250,000 orders);
        finished orders leaving memory will make it cheap (issue 21).
    retain_hours: at each checkpoint, orders finished and untouched for this
        long leave memory, with their fills (engine/archive.py): served from
        the journal's store, still refused as duplicates. Longer than any
        trading day, so the day's orders stay. 0: never.
    """

    account: str = "default"
    place_timeout: float = 10.0
    cancel_timeout: float = 10.0
    gap_fetch_after: float = 1.0
    gap_grace: float = 5.0
    unknown_grace: float = 10.0
    resolve_interval: float = 0.5
    gil_switch_interval: float | None = 0.0005
    reconnect_delay: float = 0.5
    reconnect_max_delay: float = 30.0
    auth_retry_delay: float = 30.0
    heartbeat_interval: float | None = 2.0
    heartbeat_timeout: float = 3.0
    degraded_latency: float = 0.5
    max_clock_skew: float = 2.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    broker_rate_limit: float | None = None
    broker_rate_burst: int | None = None
    control_dir: Path | None = None  # where `livegate trading-state` drops commands
    checkpoint_every: int = 0
    retain_hours: float = 26.0

    def __post_init__(self) -> None:
        """Refuse what would misbehave later: a negative timeout makes every order
        UNKNOWN, a negative rate a traceback on the first order."""
        for name in (*_POSITIVE_SECONDS, *_GRACES):
            value = getattr(self, name)
            if value is None and name in _OPTIONAL:
                continue
            number = isinstance(value, int | float) and not isinstance(value, bool)
            low_ok = number and (value >= 0 if name in _GRACES else value > 0)
            if not (low_ok and value < float("inf")):
                sign = "zero or more" if name in _GRACES else "positive"
                raise ValueError(f"GatewayConfig.{name}={value!r}: must be a {sign} number")
        for name in ("broker_rate_limit", "broker_rate_burst"):
            value = getattr(self, name)
            if value is not None and not 0 < value < float("inf"):
                raise ValueError(f"GatewayConfig.{name}={value!r}: must be positive (or None)")
        every = self.checkpoint_every
        if isinstance(every, bool) or not isinstance(every, int) or every < 0:
            raise ValueError(
                f"GatewayConfig.checkpoint_every={every!r}: must be a whole number of events,"
                " 0 or more"
            )


_GRACES = ("gap_fetch_after", "gap_grace", "unknown_grace", "retain_hours")  # 0: at once
_POSITIVE_SECONDS = (
    "place_timeout",
    "cancel_timeout",
    "resolve_interval",
    "reconnect_delay",
    "reconnect_max_delay",
    "auth_retry_delay",
    "heartbeat_interval",
    "heartbeat_timeout",
    "degraded_latency",
    "max_clock_skew",
    "gil_switch_interval",
)
_OPTIONAL = ("heartbeat_interval", "gil_switch_interval")
