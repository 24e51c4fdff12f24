"""Per-writeKey rate limits, counted in events, with the `limits` library.

The asyncio flavour of its memory storage: the threaded one starts a timer thread to
expire counters every 10 ms under load, and each start stalls the event loop.
"""

from __future__ import annotations

import math
import time

from limits import parse_many
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter


class RateLimited(Exception):
    def __init__(self, retry_after_seconds: int):
        super().__init__(f"retry after {retry_after_seconds} s")
        self.retry_after_seconds = retry_after_seconds


class WriteKeyLimiter:
    """Every limit in ``spec`` (e.g. ``500/second;20000/minute``) applies to each writeKey."""

    def __init__(self, spec: str):
        self._limits = parse_many(spec)
        self._limiter = SlidingWindowCounterRateLimiter(MemoryStorage())

    async def take(self, write_key: str, events: int) -> None:
        """Count ``events`` against the key, or raise RateLimited with a Retry-After."""
        for limit in self._limits:
            if not await self._limiter.hit(limit, "ingest", write_key, cost=events):
                stats = await self._limiter.get_window_stats(limit, "ingest", write_key)
                raise RateLimited(max(1, math.ceil(stats.reset_time - time.time())))
