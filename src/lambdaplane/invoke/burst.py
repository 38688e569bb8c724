"""How fast a function may add execution environments: AWS's concurrency scaling rate.

AWS lets each function add at most 1,000 environments every 10 seconds, refilling
that allowance continuously rather than in steps, and never banking unused allowance
beyond the 1,000. That is a token bucket per function: ``limit`` tokens, refilled at
``limit / window`` per second; a cold start takes one, and is throttled when none is
left. Warm starts never take one. The clock is injected, so the rule is unit-tested
without waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable

WINDOW_SECONDS = 10.0
DEFAULT_LIMIT = 1000  # new environments per function per window, as AWS
_PRUNE_ABOVE = 1024  # buckets kept before full (idle) ones are forgotten


class BurstLimiter:
    """New-environment allowance per function: ``limit`` per ``window`` seconds."""

    def __init__(
        self,
        limit: int = DEFAULT_LIMIT,
        window: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("a burst limit needs limit >= 1 and window > 0")
        self.limit = limit
        self._rate = limit / window  # tokens per second
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, as of)

    def _tokens(self, key: str, now: float) -> float:
        bucket = self._buckets.get(key)
        if bucket is None:
            return float(self.limit)
        tokens, then = bucket
        return min(float(self.limit), tokens + (now - then) * self._rate)

    def take(self, key: str) -> bool:
        """Use one new-environment allowance of ``key``; False when there is none left."""
        now = self._clock()
        tokens = self._tokens(key, now)
        if tokens < 1:
            return False
        if len(self._buckets) > _PRUNE_ABOVE:
            self._prune(now)
        self._buckets[key] = (tokens - 1, now)
        return True

    def refund(self, key: str) -> None:
        """Give back an allowance taken for an environment that was not started after all."""
        now = self._clock()
        self._buckets[key] = (min(float(self.limit), self._tokens(key, now) + 1), now)

    def available(self, key: str) -> int:
        return int(self._tokens(key, self._clock()))

    def _prune(self, now: float) -> None:
        for key in [k for k in self._buckets if self._tokens(k, now) >= self.limit]:
            del self._buckets[key]
