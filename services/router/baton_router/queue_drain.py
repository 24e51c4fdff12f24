"""Assigning what waits in the queue once someone can take it.

SQLs nobody could take (and MQLs waiting for an SDR) stay queued in PostgreSQL.
:meth:`QueueDrainer.run` drains every ``drain_seconds`` (shifts start, out-of-office ends)
and refreshes the queue and rep-load gauges; the API calls :meth:`QueueDrainer.drain` at
once after any change that could make someone available. New assignments wake the
dispatcher.
"""

from __future__ import annotations

import asyncio

from baton_router.dispatcher import Dispatcher
from baton_router.metrics import QUEUE_DEPTH, REP_LOAD, record_assigned
from baton_router.store import Stores
from baton_shared.clock import utcnow
from baton_shared.logs import get_logger

log = get_logger(__name__)


class QueueDrainer:
    def __init__(self, stores: Stores, dispatcher: Dispatcher, drain_seconds: float):
        self._stores, self._dispatcher = stores, dispatcher
        self._drain_seconds = drain_seconds
        self._lock = asyncio.Lock()

    async def run(self) -> None:
        """Drain and refresh the gauges every ``drain_seconds`` until cancelled."""
        while True:
            await asyncio.sleep(self._drain_seconds)
            try:
                await self.drain()
                await self._refresh_gauges()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("drain_failed", error=f"{type(exc).__name__}: {exc}")

    async def drain(self) -> int:
        """Assign what waits in the queue to whoever is available now."""
        async with self._lock:
            drained = await self._stores.routing.drain_queue(utcnow())
        for assignment in drained:
            record_assigned(assignment)
        if drained:
            self._dispatcher.wake()
        return len(drained)

    async def _refresh_gauges(self) -> None:
        QUEUE_DEPTH.set(await self._stores.routing.queue_depth())
        # Two columns of the reps not archived: thousands of reps cost milliseconds.
        for rep_id, load in (await self._stores.config.rep_loads(live_only=True)).items():
            REP_LOAD.labels(rep_id=str(rep_id)).set(load)
