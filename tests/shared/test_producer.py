"""The per-partition batch producer against the real broker: every record lands, in order,
in the partition asked for; full batches are shipped and new ones started."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from baton_shared.kafka import durable_producer, ensure_topics
from baton_shared.producer import partition_for, send_batched


def test_partition_for_matches_the_default_partitioner() -> None:
    partitions = [0, 1, 2, 3, 4]
    for i in range(200):
        key = f"lead-{i}".encode()
        assert partition_for(key, partitions) == DefaultPartitioner()(key, partitions, [])


@pytest.mark.integration
async def test_records_land_in_order_in_their_partitions_across_full_batches(
    kafka_bootstrap: str, unique_name: str
) -> None:
    topic = f"{unique_name}.batched"
    await ensure_topics(kafka_bootstrap, [topic], partitions=3)
    # Small batches: 300 records of ~100 bytes fill several per partition.
    producer = durable_producer(kafka_bootstrap, max_batch_size=4096)
    await producer.start()
    try:
        records = [(i % 3, f"k{i}".encode(), f"{i:0100d}".encode()) for i in range(300)]
        futures = await send_batched(producer, topic, records)
        assert len(futures) > 3  # full batches were shipped and new ones started
        await asyncio.gather(*futures)
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(3)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        got: dict[int, list[bytes]] = {0: [], 1: [], 2: []}
        async with asyncio.timeout(30):
            while sum(map(len, got.values())) < len(records):
                for tp, batch in (await consumer.getmany(timeout_ms=500)).items():
                    got[tp.partition] += [r.value for r in batch]
    finally:
        await consumer.stop()
    for p in range(3):
        assert got[p] == [value for partition, _, value in records if partition == p]


@pytest.mark.integration
async def test_many_concurrent_senders_on_one_partition_all_get_their_batch_handed_over(
    kafka_bootstrap: str, unique_name: str
) -> None:
    """aiokafka gives up on a partition's slot early when many wait for it (its timeout
    shrinks by the total time waited on every turn): with a 1 s request timeout, 150
    concurrent senders on one partition time out without the retry."""
    topic = f"{unique_name}.crowded"
    await ensure_topics(kafka_bootstrap, [topic], partitions=1)
    producer = durable_producer(kafka_bootstrap, request_timeout_ms=1000)
    await producer.start()
    try:

        async def sender(i: int) -> None:
            await asyncio.gather(*await send_batched(producer, topic, [(0, b"k", b"%d" % i)]))

        await asyncio.gather(*(sender(i) for i in range(150)))
    finally:
        await producer.stop()
