"""Waiting on a condition with a timeout (never sleep-and-hope)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any


async def wait_until(
    probe: Callable[[], Awaitable[Any]], what: str, timeout: float = 15.0
) -> Any:
    """Poll ``probe`` (async) until it returns something truthy, and return that; fail
    after ``timeout`` naming ``what`` and the last value seen."""
    last = None
    try:
        async with asyncio.timeout(timeout):
            while not (last := await probe()):
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}; last: {last!r}") from None
    return last
