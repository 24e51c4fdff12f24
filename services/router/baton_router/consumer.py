"""The router's consume loop: whole batches, one database transaction each.

Like ``baton_shared.consumer.consume_forever`` (poison records go to ``<topic>.dlq``,
the handler is retried with backoff while it fails — a database outage must not skip a
record — and offsets are committed only after the handler made the batch durable), but
the handler gets every decoded record of a poll at once, so routing costs a few
statements per batch instead of per lead. That is what keeps latency flat at hundreds
of SQLs a second.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from baton_shared.consumer import decode_or_dead_letter, retry_until_done
from baton_shared.logs import get_logger

log = get_logger(__name__)

T = TypeVar("T")


async def consume_batches(
    consumer: AIOKafkaConsumer,
    producer: AIOKafkaProducer,
    name: str,
    decode: Callable[[ConsumerRecord], T],
    handle: Callable[[list[T]], Awaitable[None]],
    after_batch: Callable[[], None] | None = None,
    max_records: int = 500,
) -> None:
    """Run until cancelled. ``after_batch`` runs once the handler made a batch durable.

    The offsets of a handled batch are committed (explicitly, up to that batch) while the
    next batch is fetched and handled; a crash before that commit lands re-delivers the
    batch, which the idempotent handler absorbs."""
    committing: asyncio.Task[None] | None = None
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=500, max_records=max_records)
            if not batch:
                continue
            items: list[T] = []
            for records in batch.values():
                for record in records:
                    item = await decode_or_dead_letter(record, producer, name, decode)
                    if item is not None:
                        items.append(item)
            if items:
                await retry_until_done(name, lambda b=items: handle(b), records=len(items))
            # The handler's work is durable (committed in PostgreSQL): let the next step
            # start on it now rather than after the offset commit's round trip.
            if after_batch is not None:
                after_batch()
            if committing is not None:
                await _finish(committing, name)  # commits stay in order
            offsets = {tp: records[-1].offset + 1 for tp, records in batch.items() if records}
            committing = asyncio.create_task(consumer.commit(offsets))
    finally:
        if committing is not None and not committing.done():
            committing.cancel()


async def _finish(committing: asyncio.Task[None], name: str) -> None:
    try:
        await committing
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        # Typically a rebalance moved the partition: its new owner re-reads the batch
        # from the last committed offset, and routing absorbs the repeat.
        log.warning("offset_commit_failed", consumer=name, error=f"{type(exc).__name__}: {exc}")
