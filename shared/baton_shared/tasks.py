"""Stopping a service's background tasks in bounded time."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from baton_shared.logs import get_logger

log = get_logger(__name__)


async def cancel_and_wait(tasks: Iterable[asyncio.Task[None]], timeout: float) -> list[str]:
    """Cancel ``tasks`` and wait up to ``timeout`` seconds for them to end. A task that
    does not end (it swallowed its cancellation) is logged by name and left behind, so
    shutdown goes on instead of hanging; the names are returned."""
    pending = [task for task in tasks if not task.done()]
    for task in pending:
        task.cancel()
    if not pending:
        return []
    _, stuck = await asyncio.wait(pending, timeout=timeout)
    names = sorted(task.get_name() for task in stuck)
    if names:
        log.error("tasks_ignored_cancellation", tasks=names, waited_s=timeout)
    return names
