"""One record batch per partition: how ingest and the scorer hand many records to Kafka.

``send_batched`` takes ``(partition, key, value)`` records, appends them to one
aiokafka record batch per partition (``create_batch``/``send_batch``), ships a batch
when it is full, and returns the delivery futures of every batch it handed over:
far less work per record than a ``send`` (a future and a send path) each.
The caller awaits the futures; nothing is acknowledged before that.

aiokafka hands over one custom batch per partition at a time, and waits for a slot with
a timeout it shortens by the *total* time waited on every turn (aiokafka 0.14
``MessageAccumulator.add_batch``; aio-libs/aiokafka#528): with many concurrent senders
on one partition it gives up far earlier than ``request_timeout_ms``. So a hand-over
that times out is tried again, each try with the producer's full timeout, until
``HAND_OVER_SECONDS`` have passed.
``partition_for`` gives a key's partition as every Kafka client's default
partitioner does (murmur2 of the key).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Iterable, Sequence
from typing import Any

from aiokafka.errors import KafkaTimeoutError
from aiokafka.partitioner import murmur2

# A record on its way to Kafka, with the partition it goes to.
Record = tuple[int, bytes, bytes]
HAND_OVER_SECONDS = 60.0


class RecordTooLarge(ValueError):
    """A single record is larger than an empty batch of the producer."""


@functools.lru_cache(maxsize=65_536)
def key_hash(key: bytes) -> int:
    """The Java client's (and aiokafka's DefaultPartitioner's) murmur2 of a key. Leads
    send many events, and aiokafka's murmur2 is pure Python: remember the recent ones."""
    return murmur2(key) & 0x7FFFFFFF


def partition_for(key: bytes, partitions: Sequence[int]) -> int:
    """The partition the default partitioner gives ``key`` among sorted ``partitions``."""
    return partitions[key_hash(key) % len(partitions)]


async def send_batched(
    producer: Any, topic: str, records: Iterable[Record]
) -> list[asyncio.Future[Any]]:
    """Queue ``records`` as one record batch per partition; return the batches' futures.

    ``producer`` is an aiokafka producer (faust's runs one too). Every batch is handed
    over before the caller awaits any acknowledgement; a record too large for an empty
    batch raises :class:`RecordTooLarge`.
    """
    batches: dict[int, Any] = {}
    futures: list[asyncio.Future[Any]] = []
    for partition, key, value in records:
        batch = batches.get(partition)
        if batch is not None:
            if batch.append(key=key, value=value, timestamp=None) is not None:
                continue
            futures.append(await _hand_over(producer, batch, topic, partition))  # full
        batch = batches[partition] = producer.create_batch()
        if batch.append(key=key, value=value, timestamp=None) is None:
            raise RecordTooLarge(f"a {len(value)}-byte record does not fit a batch of {topic}")
    for partition, batch in batches.items():
        futures.append(await _hand_over(producer, batch, topic, partition))
    return futures


async def _hand_over(producer: Any, batch: Any, topic: str, partition: int) -> Any:
    """``send_batch``, tried again while the partition's slot stays taken (module doc)."""
    deadline = time.monotonic() + HAND_OVER_SECONDS
    while True:
        try:
            return await producer.send_batch(batch, topic, partition=partition)
        except KafkaTimeoutError:
            if time.monotonic() >= deadline:
                raise
