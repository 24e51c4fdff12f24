"""Per-writeKey rate limits, counted in events, with the `limits` library."""

from __future__ import annotations

import math
import time

from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter


class RateLimited(Exception):
    def __init__(self, retry_after_seconds: int):
        super().__init__(f"retry after {retry_after_seconds} s")
        self.retry_after_seconds = retry_after_seconds


class WriteKeyLimiter:
    """Every limit in ``spec`` (e.g. ``500/second;20000/minute``) applies to each writeKey."""

    def __init__(self, spec: str):
        self._limits = parse_many(spec)
        self._limiter = SlidingWindowCounterRateLimiter(MemoryStorage())

    def take(self, write_key: str, events: int) -> None:
        """Count ``events`` against the key, or raise RateLimited with a Retry-After."""
        for limit in self._limits:
            if not self._limiter.hit(limit, "ingest", write_key, cost=events):
                reset_at = self._limiter.get_window_stats(limit, "ingest", write_key).reset_time
                raise RateLimited(max(1, math.ceil(reset_at - time.time())))
