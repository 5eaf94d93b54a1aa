"""Timeouts for many concurrent broker calls, at the cost of a dict entry each.

`asyncio.timeout` arms a timer per call (measured here: 9 microseconds, a
fifth of the whole per-order budget). The gateway's calls all share one
timeout per kind, so entries enter in deadline order and one periodic check
can expire them from the front. An expired call's task is cancelled; the
caller asks `expired(key)` in its CancelledError handler to tell a timeout
from a real cancellation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable


class Deadlines:
    def __init__(self, timeout: float, resolution: float | None = None) -> None:
        self.timeout = timeout
        self.resolution = resolution if resolution is not None else min(1.0, timeout / 10)
        self._armed: dict[Hashable, tuple[float, asyncio.Task[object]]] = {}
        self._expired: set[Hashable] = set()
        self._timer: asyncio.TimerHandle | None = None

    def arm(self, key: Hashable) -> None:
        """Start the clock for `key` on behalf of the current task."""
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("Deadlines.arm must be called from a task")
        loop = task.get_loop()
        self._armed[key] = (loop.time() + self.timeout, task)
        if self._timer is None:
            self._timer = loop.call_later(self.resolution, self._check, loop)

    def disarm(self, key: Hashable) -> None:
        self._armed.pop(key, None)
        self._expired.discard(key)

    def expired(self, key: Hashable) -> bool:
        """True if `key` timed out; the cancellation it caused is then undone."""
        if key not in self._expired:
            return False
        self._expired.discard(key)
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        return True

    def _check(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        now = loop.time()
        armed = self._armed
        while armed:
            key = next(iter(armed))
            deadline, task = armed[key]
            if deadline > now:
                break
            del armed[key]
            self._expired.add(key)
            task.cancel(f"deadline of {self.timeout}s passed")
        if armed:
            self._timer = loop.call_later(self.resolution, self._check, loop)
