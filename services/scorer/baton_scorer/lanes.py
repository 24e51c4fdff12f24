"""The scorer's two lanes: express-lane records are scored ahead of bulk work.

Ingest copies every express-lane event (a demo request) to ``leads.express``; the worker
reads it in an agent of its own, one record at a time, while the bulk agent reads
``leads.events``, ``leads.activity`` and the stitched events in batches. Both score
through the same shell and caches, one batch at a time, under a :class:`LaneLock`: a
waiting express batch gets the shell before the next bulk chunk. A bulk batch is
scored in chunks that take about ``chunk_seconds`` each (:class:`ChunkSizer`, from the
cost per event measured so far), so an express record waits for at most one chunk.
The copy that later arrives on ``leads.events`` is absorbed by the lead's dedup window;
scores do not depend on the order events arrive in.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from baton_scorer.metrics import LANE_BATCH_SECONDS as BATCH
from baton_scorer.metrics import LANE_PICKUP_SECONDS as PICKUP
from baton_scorer.metrics import LANE_WAIT_SECONDS as WAIT

T = TypeVar("T")
Ack = Callable[[Any], Awaitable[Any]]


class LaneLock:
    """A lock with two priorities: ``express()`` waiters go before ``bulk()`` ones.

    ``async with lock`` is a bulk acquisition (the timers use it)."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._express_waiting = 0
        self._no_express = asyncio.Event()
        self._no_express.set()

    @asynccontextmanager
    async def express(self) -> AsyncIterator[None]:
        self._express_waiting += 1
        self._no_express.clear()
        try:
            await self._lock.acquire()
        finally:
            self._express_waiting -= 1
            if not self._express_waiting:
                self._no_express.set()
        try:
            yield
        finally:
            self._lock.release()

    @asynccontextmanager
    async def bulk(self) -> AsyncIterator[None]:
        await self._acquire_bulk()
        try:
            yield
        finally:
            self._lock.release()

    async def _acquire_bulk(self) -> None:
        while True:
            await self._no_express.wait()
            await self._lock.acquire()
            if self._no_express.is_set():
                return
            self._lock.release()  # an express batch came meanwhile: it goes first

    async def __aenter__(self) -> None:
        await self._acquire_bulk()

    async def __aexit__(self, *exc: object) -> None:
        self._lock.release()


class ChunkSizer:
    """Splits a bulk batch into chunks of about ``seconds`` of work each (at least
    ``least`` events), from an average of the cost per event seen so far."""

    def __init__(self, seconds: float, least: int = 250) -> None:
        self.seconds = seconds
        self.least = least
        self.per_event: float | None = None

    def size(self) -> int | None:
        """Events per chunk now (None: no measurement yet, the whole batch)."""
        if self.per_event is None:
            return None
        return max(self.least, int(self.seconds / self.per_event))

    def chunks(self, items: Sequence[T]) -> Iterator[Sequence[T]]:
        size = self.size() or len(items)
        for start in range(0, len(items), size):
            yield items[start : start + size]

    def observe(self, events: int, elapsed: float) -> None:
        """One chunk of ``events`` took ``elapsed`` seconds."""
        cost = elapsed / max(1, events)
        self.per_event = cost if self.per_event is None else 0.7 * self.per_event + 0.3 * cost


class Lanes:
    """The two ways a batch reaches ``shell.score_batch`` (a :class:`LaneLock` as
    ``shell.lock``): ``express`` at once, ``bulk`` chunk by chunk; each chunk's records
    are acked (``ack``) once it is durable."""

    def __init__(self, shell: Any, chunk_seconds: float) -> None:
        self.shell = shell
        self.sizer = ChunkSizer(chunk_seconds)

    async def express(self, events: list[Any], ack: Ack) -> None:
        arrived = picked_up(events, "express")
        async with self.shell.lock.express():
            WAIT.labels(lane="express").observe(time.time() - arrived)
            await self._score(events, "express")
        for ev in events:
            await ack(ev)

    async def bulk(self, events: list[Any], ack: Ack) -> None:
        for chunk in self.sizer.chunks(events):
            arrived = picked_up(chunk[:1], "bulk")
            async with self.shell.lock.bulk():
                WAIT.labels(lane="bulk").observe(time.time() - arrived)
                elapsed = await self._score(list(chunk), "bulk")
            self.sizer.observe(len(chunk), elapsed)
            for ev in chunk:
                await ack(ev)

    async def _score(self, events: list[Any], lane: str) -> float:
        started = time.time()
        await self.shell.score_batch(events)
        elapsed = time.time() - started
        BATCH.labels(lane=lane).observe(elapsed)
        return elapsed


def picked_up(events: Sequence[Any], lane: str) -> float:
    """Now, having observed how long each of ``events`` took from its Kafka timestamp
    to its lane (express: every record; bulk: the oldest of a chunk)."""
    now = time.time()
    for ev in events:
        PICKUP.labels(lane=lane).observe(max(0.0, now - ev.message.timestamp))
    return now
