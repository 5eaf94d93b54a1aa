"""Start-up health checks: what was checked before the first order could go out."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HealthCheck:
    name: str  # connect, heartbeat, clock skew, account, recovery sync
    ok: bool
    detail: str
    ms: float


class ClockSkewError(Exception):
    """The broker's clock and ours disagree by more than the configured limit."""
