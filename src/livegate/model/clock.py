"""The one clock the engine, the calendars, the reconciler and the alerts read.

Every timestamp a journaled event carries, every "is the market open", every
"is it the close yet" comes from one `Clock`, so a whole trading day can be
run compressed: a `ScaledClock` starts at any instant and runs `speed` times
faster than the wall, and everything that reads the trading timeline moves
with it. What belongs to the wire does not: timeouts, heartbeats, reconnect
backoff and latency figures stay in real seconds, because the broker on the
other side of the socket runs in real time (docs/decisions/0008-go-live-gate.md).
"""

from __future__ import annotations

import asyncio
import time


class Clock:
    """The wall clock: now is now, a second is a second."""

    speed: float = 1.0

    def now_ns(self) -> int:
        return time.time_ns()

    def real_seconds(self, clock_ns: int) -> float:
        """How long `clock_ns` of the trading timeline takes on the wall."""
        return clock_ns / 1e9 / self.speed

    def ns_for(self, real_seconds: float) -> int:
        """How far the clock moves in `real_seconds` on the wall: wire timeouts
        (an order unacknowledged for 2 s) compared with journal stamps."""
        return int(real_seconds * 1e9 * self.speed)

    async def sleep_until(self, ts_ns: int) -> None:
        """Until the clock reads `ts_ns` (at once when it already does)."""
        while (left := ts_ns - self.now_ns()) > 0:
            await asyncio.sleep(self.real_seconds(left))


class ScaledClock(Clock):
    """Starts at `start_ns` and runs `speed` times as fast as the wall.

    speed 1 with a start in the past or future is a shifted clock (a gate
    evaluated "eight days later"); speed 400 runs Shanghai's 09:15 to 15:05
    in under a minute.
    """

    def __init__(self, start_ns: int, speed: float = 1.0) -> None:
        if not (0 < speed < float("inf")):
            raise ValueError(f"clock speed {speed!r}: must be a positive number")
        if start_ns <= 0:
            raise ValueError(f"clock start {start_ns!r}: must be after 1970")
        self.speed = speed
        self._start_ns = start_ns
        self._origin = time.monotonic_ns()

    def now_ns(self) -> int:
        return self._start_ns + int((time.monotonic_ns() - self._origin) * self.speed)


SYSTEM_CLOCK = Clock()
