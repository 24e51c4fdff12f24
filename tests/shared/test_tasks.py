"""Shutdown of background tasks is bounded even when a task ignores its cancellation."""

from __future__ import annotations

import asyncio

from baton_shared.tasks import cancel_and_wait


async def test_cancelled_tasks_end_and_none_is_reported() -> None:
    task = asyncio.create_task(asyncio.sleep(60), name="sleeper")
    await asyncio.sleep(0)

    assert await cancel_and_wait([task], timeout=5) == []
    assert task.cancelled()


async def test_a_task_that_swallows_its_cancellation_does_not_hang_shutdown() -> None:
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                continue  # the bug this guards against

    task = asyncio.create_task(stubborn(), name="stubborn")
    polite = asyncio.create_task(asyncio.sleep(60), name="polite")
    await asyncio.sleep(0)

    assert await cancel_and_wait([task, polite], timeout=0.2) == ["stubborn"]
    assert polite.cancelled() and not task.done()

    release.set()
    task.cancel()
    await asyncio.wait({task}, timeout=5)
    assert task.done()
