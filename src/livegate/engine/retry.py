"""Retrying broker calls by what their failure means, and a client-side rate limit.

The error class decides (see broker/errors.py):
- BrokerNetworkError: the request certainly did not reach the broker, so it
  is safe to repeat; tried again `network_retries` times with exponential
  backoff and full jitter, so many clients do not retry in step.
- BrokerThrottled: the broker said when to come back; we wait `retry_after`
  (up to `max_throttle_wait` in all) and try again. The token bucket keeps
  us under the broker's published rate, so this should be rare.
- BrokerRejected, BrokerAuthError, UnknownOutcome: never retried here. A
  rejection is final, credentials do not improve by repetition, and an
  unknown outcome may already be an order (recovery asks the broker).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from livegate.broker.errors import BrokerNetworkError, BrokerThrottled

T = TypeVar("T")


@dataclass
class RetryPolicy:
    network_retries: int = 2
    backoff: float = 0.05  # first wait, doubled each time, with full jitter
    max_backoff: float = 2.0
    max_throttle_wait: float = 10.0  # in all, for one request


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
    ceiling = min(cap, base * (2**attempt))
    return (rng or random).uniform(0, ceiling)


class TokenBucket:
    """At most `rate` requests a second on average, bursts up to `burst`."""

    def __init__(
        self,
        rate: float,
        burst: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = float(burst if burst is not None else max(1, int(rate)))
        self.clock = clock
        self.sleep = sleep  # both injectable, so the pacing is testable without waiting
        self._tokens = self.burst
        self._stamp = clock()
        self.waited = 0.0  # seconds spent waiting, for metrics and drills

    def _refill(self) -> None:
        now = self.clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    async def acquire(self) -> None:
        self._refill()
        while self._tokens < 1 - 1e-9:  # not 1: float steps must not loop on dust
            wait = (1 - self._tokens) / self.rate
            self.waited += wait
            await self.sleep(wait)
            self._refill()
        self._tokens = max(0.0, self._tokens - 1)


async def call_with_retry(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    bucket: TokenBucket | None = None,
    failed: BaseException | None = None,
) -> T:
    """Call (again, if `failed` is the first attempt's error) until it succeeds or must stop."""
    attempt = 0
    throttled_for = 0.0
    while True:
        if failed is not None:
            if isinstance(failed, BrokerThrottled):
                wait = max(failed.retry_after, 0.001)
                if throttled_for + wait > policy.max_throttle_wait:
                    raise failed
                throttled_for += wait
            elif isinstance(failed, BrokerNetworkError):
                if attempt >= policy.network_retries:
                    raise failed
                wait = backoff_delay(attempt, policy.backoff, policy.max_backoff)
                attempt += 1
            else:
                raise failed
            await asyncio.sleep(wait)
            if bucket is not None:
                await bucket.acquire()
        try:
            return await call()
        except (BrokerNetworkError, BrokerThrottled) as exc:
            failed = exc
