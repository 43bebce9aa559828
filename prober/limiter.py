"""Adaptive concurrency: fewer requests in flight when the store throttles.

Additive increase, multiplicative decrease (as TCP and AWS's adaptive retry mode do):
a throttling answer (429, 503, SlowDown) halves the limit — at most once a second, so
one burst of 503s is one signal — and every ``limit`` successes raise it by one, back
up to ``--concurrency``.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from types import TracebackType


class AdaptiveLimiter:
    def __init__(self, maximum: int, minimum: int = 2, cooldown: float = 1.0) -> None:
        self.maximum = max(1, maximum)
        self.minimum = min(max(1, minimum), self.maximum)
        self.limit = self.maximum
        self.cooldown = cooldown
        self.in_flight = 0
        self._successes = 0
        self._last_decrease = 0.0
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def __aenter__(self) -> None:
        while self.in_flight >= self.limit:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                if fut in self._waiters:
                    self._waiters.remove(fut)
                self._wake()
                raise
        self.in_flight += 1

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        free = self.limit - self.in_flight
        while free > 0 and self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                free -= 1

    def throttled(self) -> None:
        now = time.monotonic()
        if now - self._last_decrease >= self.cooldown and self.limit > self.minimum:
            self.limit = max(self.minimum, self.limit // 2)
            self._last_decrease = now
            self._successes = 0

    def succeeded(self) -> None:
        if self.limit >= self.maximum:
            return
        self._successes += 1
        if self._successes >= self.limit:
            self._successes = 0
            self.limit += 1
            self._wake()
