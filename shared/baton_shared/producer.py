"""One record batch per partition: how ingest and the scorer hand many records to Kafka.

``send_batched`` takes ``(partition, key, value)`` records, appends them to one
aiokafka record batch per partition (``create_batch``/``send_batch``), ships a batch
when it is full, and returns the delivery futures of every batch it handed over:
far less work per record than a ``send`` (a future and a send path) each.
The caller awaits the futures; nothing is acknowledged before that.
``partition_for`` gives a key's partition as every Kafka client's default
partitioner does (murmur2 of the key).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterable, Sequence
from typing import Any

from aiokafka.partitioner import murmur2

# A record on its way to Kafka, with the partition it goes to.
Record = tuple[int, bytes, bytes]


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
            futures.append(await producer.send_batch(batch, topic, partition=partition))  # full
        batch = batches[partition] = producer.create_batch()
        if batch.append(key=key, value=value, timestamp=None) is None:
            raise RecordTooLarge(f"a {len(value)}-byte record does not fit a batch of {topic}")
    for partition, batch in batches.items():
        futures.append(await producer.send_batch(batch, topic, partition=partition))
    return futures
