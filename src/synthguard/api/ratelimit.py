"""Token-bucket rate limits kept in process memory, keyed by client address or user name.

Hand-written rather than taken from a library (slowapi, limits) because what is needed is small: one
bucket per key, refilled continuously, a bounded number of keys, thread-safe (synchronous FastAPI
dependencies run in a thread pool), and the wait time for ``Retry-After``.

In memory means per process: with ``synthguard serve --workers N`` each worker keeps its own buckets,
so a client can make up to N times the configured rate, and a restart forgets every bucket. That is
the documented trade-off (docs/api.md); a shared limit needs a shared store in front (the reverse
proxy's limiter, or Redis), which synthguard does not ship.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Final

from synthguard.errors import RateLimitError, UsageError

__all__ = ["TokenBucketLimiter"]

#: Keys remembered at most; the least recently seen are forgotten first (a full bucket is the same
#: as a forgotten one, so forgetting only ever favours a client that has been quiet the longest).
DEFAULT_MAX_KEYS: Final = 100_000


class TokenBucketLimiter:
    """``rate`` requests per ``per`` seconds for each key, with bursts up to ``burst`` (default ``rate``).

    >>> limiter = TokenBucketLimiter(rate=2, per=60.0)
    >>> limiter.hit("10.0.0.1"); limiter.hit("10.0.0.1")
    >>> limiter.hit("10.0.0.1")
    Traceback (most recent call last):
    ...
    synthguard.errors.RateLimitError: too many requests; try again in 30 seconds
    """

    def __init__(
        self,
        *,
        rate: float,
        per: float = 60.0,
        burst: float | None = None,
        max_keys: int = DEFAULT_MAX_KEYS,
        what: str = "requests",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or per <= 0:
            raise UsageError(f"a rate limit needs a positive rate and period, got {rate} per {per} s")
        self.capacity: Final = float(burst if burst is not None else rate)
        if self.capacity < 1:
            raise UsageError(f"a rate limit must allow at least one request, got a burst of {burst}")
        self.refill_per_second: Final = rate / per
        self.max_keys: Final = max_keys
        self.what: Final = what
        self._clock = clock
        self._lock = threading.Lock()
        # key -> (tokens, time of last update)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def hit(self, key: str, cost: float = 1.0) -> None:
        """Take ``cost`` tokens from ``key``'s bucket, or raise ``RateLimitError`` with the wait."""
        with self._lock:
            now = self._clock()
            tokens, updated = self._buckets.pop(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - updated) * self.refill_per_second)
            if tokens >= cost:
                self._buckets[key] = (tokens - cost, now)
                self._forget_oldest()
                return
            self._buckets[key] = (tokens, now)
            self._forget_oldest()
        wait = math.ceil((cost - tokens) / self.refill_per_second)
        raise RateLimitError(f"too many {self.what}; try again in {wait} seconds", retry_after=wait)

    def reset(self, key: str | None = None) -> None:
        """Forget one key's bucket (a successful login), or every bucket."""
        with self._lock:
            if key is None:
                self._buckets.clear()
            else:
                self._buckets.pop(key, None)

    def __len__(self) -> int:
        return len(self._buckets)

    def _forget_oldest(self) -> None:
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
