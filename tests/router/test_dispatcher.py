"""Pieces of webhook delivery that need no network: Retry-After parsing, endpoint keys,
the delivery loop stopping when cancelled."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from baton_router.dispatcher import Dispatcher, retry_after_seconds
from baton_router.store.outbox import Claimed, endpoint_key

NOW = datetime(2025, 3, 3, 12, 0, 0, tzinfo=UTC)


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert retry_after_seconds("120", NOW) == 120.0
    assert retry_after_seconds("Mon, 03 Mar 2025 12:05:00 GMT", NOW) == 300.0
    assert retry_after_seconds("Mon, 03 Mar 2025 11:00:00 GMT", NOW) == 0.0  # in the past
    assert retry_after_seconds("-5", NOW) == 0.0


def test_unusable_retry_after_is_ignored() -> None:
    assert retry_after_seconds(None, NOW) is None
    assert retry_after_seconds("soon", NOW) is None


def test_concurrency_is_limited_per_rep_or_track_not_for_kafka() -> None:
    rep, track = uuid.UUID(int=1), uuid.UUID(int=2)
    assert endpoint_key("webhook", rep, None) == f"rep:{rep}"
    assert endpoint_key("webhook", None, track) == f"track:{track}"
    assert endpoint_key("kafka", None, None) == "kafka"


class _NothingDue:
    """A store with an empty outbox: the loop only waits for a wake or the poll."""

    async def claim_due(self, *args: Any, **kw: Any) -> Claimed:
        return Claimed(rows=[])

    async def mark_delivered_many(self, *args: Any) -> None:
        return None


async def test_the_loop_stops_when_cancelled_in_the_turn_it_is_woken() -> None:
    """A delivery finishing (it wakes the loop) in the same turn as shutdown cancels the
    loop: the loop must still end. ``asyncio.wait_for`` on Python 3.11 returned the
    wake's result there and dropped the cancellation, so the router never stopped."""
    dispatcher = Dispatcher(_NothingDue(), None, None, (1.0,), poll_seconds=30.0)  # type: ignore[arg-type]
    loop = asyncio.create_task(dispatcher.run())
    for _ in range(20):  # a few turns: the first claim, then waiting for a wake
        await asyncio.sleep(0)

    dispatcher.wake()
    loop.cancel()

    done, _ = await asyncio.wait({loop}, timeout=5)
    assert done, "the dispatcher loop ignored its cancellation"
    assert loop.cancelled()
