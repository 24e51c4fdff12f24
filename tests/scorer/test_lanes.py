"""The scorer's lanes without Kafka: an express batch takes the shell before bulk work
that waited longer, and bulk batches are cut into chunks of about the time asked for."""

from __future__ import annotations

import asyncio

from baton_scorer.lanes import ChunkSizer, LaneLock


async def test_an_express_waiter_goes_before_bulk_waiters_that_came_first() -> None:
    lock, order = LaneLock(), []

    async def take(lane: str) -> None:
        async with lock.express() if lane == "express" else lock.bulk():
            order.append(lane)
            await asyncio.sleep(0)

    async with lock.bulk():  # a bulk chunk is being scored
        waiters = [asyncio.create_task(take("bulk")), asyncio.create_task(take("bulk"))]
        await asyncio.sleep(0)
        waiters.append(asyncio.create_task(take("express")))
        await asyncio.sleep(0)
    await asyncio.gather(*waiters)
    assert order == ["express", "bulk", "bulk"]


async def test_the_timers_hold_the_lock_as_bulk_work() -> None:
    lock = LaneLock()
    async with lock:
        express = asyncio.create_task(lock.express().__aenter__())
        await asyncio.sleep(0)
        assert not express.done()
    await express


def test_chunks_take_about_the_time_asked_for_and_never_fewer_than_the_least() -> None:
    sizer = ChunkSizer(seconds=0.1, least=50)
    assert [len(c) for c in sizer.chunks(list(range(2000)))] == [2000]  # nothing measured
    sizer.observe(events=2000, elapsed=1.0)  # 0.5 ms per event: 200 per 0.1 s
    assert [len(c) for c in sizer.chunks(list(range(500)))] == [200, 200, 100]
    sizer.observe(events=10, elapsed=10.0)  # very slow now: still at least 50
    assert sizer.size() == 50
