"""The consume loop every plain-aiokafka service uses.

For each record: decode it (a record that does not decode is poison: it goes to
``<topic>.dlq`` with the error and is counted, never crash-looped on); hand it
to the service's handler, retrying with backoff while the handler fails (a
database outage must not skip a record); then, once every record of the batch
has been made durable by its handler, commit the offsets. Committing is the
last step, so a crash re-delivers, and handlers are idempotent.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord
from prometheus_client import Counter
from pydantic import ValidationError

from baton_shared.kafka import send_to_dlq
from baton_shared.logs import get_logger

log = get_logger(__name__)

T = TypeVar("T")

CONSUMED = Counter("baton_consumer_records_total", "Records consumed", ["consumer", "outcome"])


def make_consumer(bootstrap_servers: str, group_id: str, *topics: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap_servers,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        client_id=group_id,
    )


async def consume_forever(
    consumer: AIOKafkaConsumer,
    producer: AIOKafkaProducer,
    name: str,
    decode: Callable[[ConsumerRecord], T],
    handle: Callable[[T], Awaitable[None]],
    after_batch: Callable[[], None] | None = None,
) -> None:
    """Run until cancelled. ``after_batch`` runs once a batch is committed."""
    while True:
        batch = await consumer.getmany(timeout_ms=500, max_records=500)
        if not batch:
            continue
        for records in batch.values():
            for record in records:
                await _process(record, producer, name, decode, handle)
        await consumer.commit()
        if after_batch is not None:
            after_batch()


async def _process(
    record: ConsumerRecord,
    producer: AIOKafkaProducer,
    name: str,
    decode: Callable[[ConsumerRecord], T],
    handle: Callable[[T], Awaitable[None]],
) -> None:
    item = await decode_or_dead_letter(record, producer, name, decode)
    if item is None:
        return
    await retry_until_done(
        name,
        lambda: handle(item),
        records=1,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
    )


_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def refuse_nul(raw: bytes | None) -> None:
    """PostgreSQL's text and JSONB cannot hold a NUL character: a JSON record with one
    (``\\u0000`` in a string) is poison for a consumer that stores it, not a batch to
    retry forever. Raises ValueError (to the DLQ) naming the problem."""
    if raw and b"\\u0000" in raw and _NUL_ESCAPE.search(raw):
        raise ValueError(
            "a string contains a NUL character (\\u0000), which PostgreSQL cannot store"
        )


async def decode_or_dead_letter(
    record: ConsumerRecord,
    producer: AIOKafkaProducer,
    name: str,
    decode: Callable[[ConsumerRecord], T],
) -> T | None:
    """The decoded record, or None once a record that does not decode is on its DLQ."""
    try:
        return decode(record)
    except (ValidationError, ValueError, UnicodeDecodeError) as exc:
        CONSUMED.labels(consumer=name, outcome="dead_letter").inc()
        log.warning(
            "poison_record",
            consumer=name,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            error=type(exc).__name__,
        )
        await send_to_dlq(producer, record, str(exc), name)
        return None


async def retry_until_done(
    name: str, work: Callable[[], Awaitable[None]], records: int, **where: object
) -> None:
    """Run ``work`` until it succeeds, backing off (0.2 s doubling to 10 s): a failing
    dependency must stall the partition, never skip a record."""
    delay = 0.2
    while True:
        try:
            await work()
            CONSUMED.labels(consumer=name, outcome="processed").inc(records)
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error(
                "handler_failed_retrying",
                consumer=name,
                records=records,
                error=f"{type(exc).__name__}: {exc}",
                retry_in_s=delay,
                **where,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
