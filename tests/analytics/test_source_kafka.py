"""The group-less reader against the real broker, on logs that are not plain appends:
transactions (their markers take offsets), compressed batches (a range can start inside
one), records deleted by retention while a range is read, and a range the log no longer
holds, which must fail with a message instead of hanging."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete

from baton_analytics import source
from baton_analytics.ranges import ReadRange
from baton_analytics.source import Fetched, PartitionSpan, SourceError, TopicReader
from baton_shared.kafka import ensure_topics

pytestmark = pytest.mark.integration

READ_TIMEOUT = 30.0  # a read that does not end fails the test instead of hanging it


async def read_range(bootstrap: str, topic: str, span: ReadRange) -> list[Fetched]:
    async with TopicReader(bootstrap, [topic], span) as reader:
        return await asyncio.wait_for(_all(reader), READ_TIMEOUT)


async def produce_values(bootstrap: str, topic: str, count: int) -> None:
    """``count`` records ``v0``, ``v1``… to partition 0 of a new one-partition topic."""
    await ensure_topics(bootstrap, [topic], partitions=1)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for i in range(count):
            await producer.send(topic, f"v{i}".encode(), partition=0)
        await producer.flush()
    finally:
        await producer.stop()


async def _all(reader: TopicReader) -> list[Fetched]:
    return [r async for batch in reader.batches() for r in batch]


async def test_a_transactional_log_is_read_to_its_end_without_its_markers(
    kafka_bootstrap: str, unique_name: str
) -> None:
    topic = f"{unique_name}.tx"
    await ensure_topics(kafka_bootstrap, [topic], partitions=1)
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, transactional_id=f"{unique_name}-tx"
    )
    await producer.start()
    try:
        for t in range(3):  # each commit writes a marker after its records
            async with producer.transaction():
                for i in range(5):
                    await producer.send(topic, f"{t}-{i}".encode(), partition=0)
    finally:
        await producer.stop()

    whole = await read_range(kafka_bootstrap, topic, ReadRange())
    # The range's last offset is the third commit's marker; the second range ends on the
    # second's (offset 11).
    up_to_marker = await read_range(kafka_bootstrap, topic, ReadRange(to_offset=12))

    assert [r.value for r in whole] == [f"{t}-{i}".encode() for t in range(3) for i in range(5)]
    assert [r.offset for r in whole] == [*range(0, 5), *range(6, 11), *range(12, 17)]
    assert [r.offset for r in up_to_marker] == [*range(0, 5), *range(6, 11)]


async def test_a_range_starting_inside_a_compressed_batch_reads_exactly_its_offsets(
    kafka_bootstrap: str, unique_name: str
) -> None:
    topic = f"{unique_name}.gz"
    await ensure_topics(kafka_bootstrap, [topic], partitions=1)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, compression_type="gzip")
    await producer.start()
    try:
        for first in (0, 60):  # two batches of 60 records, each compressed as a whole
            batch = producer.create_batch()
            for i in range(first, first + 60):
                batch.append(key=None, value=f"v{i}".encode(), timestamp=1_000_000 + i)
            await (await producer.send_batch(batch, topic, partition=0))
    finally:
        await producer.stop()

    got = await read_range(kafka_bootstrap, topic, ReadRange(from_offset=17, to_offset=83))

    assert [r.offset for r in got] == list(range(17, 83))
    assert [r.value for r in got] == [f"v{i}".encode() for i in range(17, 83)]
    assert [r.timestamp for r in got] == [1_000_000 + i for i in range(17, 83)]
    assert {(r.topic, r.partition) for r in got} == {(topic, 0)}


async def test_records_deleted_while_a_range_is_read_are_skipped_with_a_warning(
    kafka_bootstrap: str, unique_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    topic = f"{unique_name}.retention"
    tp = TopicPartition(topic, 0)
    await produce_values(kafka_bootstrap, topic, 100)

    async with TopicReader(kafka_bootstrap, [topic], ReadRange()) as reader:
        assert reader.total == 100  # the range was fixed before the deletion
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            await admin.delete_records({tp: RecordsToDelete(before_offset=60)})
        finally:
            await admin.close()
        with caplog.at_level(logging.WARNING, logger=source.__name__):
            got = await asyncio.wait_for(_all(reader), READ_TIMEOUT)

    assert [r.offset for r in got] == list(range(60, 100))
    assert f"{topic} partition 0 at offset 0: records up to 59 were deleted" in caplog.text


async def test_a_range_the_log_no_longer_holds_fails_with_a_message(
    kafka_bootstrap: str, unique_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = f"{unique_name}.short"
    tp = TopicPartition(topic, 0)
    await produce_values(kafka_bootstrap, topic, 5)
    monkeypatch.setattr(source, "STALL_SECONDS", 1.0)

    async with TopicReader(kafka_bootstrap, [topic], ReadRange()) as reader:
        # As after an unclean leader election truncated the log below the range's end.
        reader.spans = [PartitionSpan(tp, 0, 10)]
        got: list[Fetched] = []
        stalled = r"partition 0 gave no records at offset 5 for 1 s.*the log now ends at offset 5"
        with pytest.raises(SourceError, match=stalled):
            async with asyncio.timeout(READ_TIMEOUT):
                async for batch in reader.batches():
                    got += batch

    assert [r.offset for r in got] == list(range(5))  # what the log held was read first


async def test_a_range_starting_past_the_end_of_a_truncated_log_fails_with_a_message(
    kafka_bootstrap: str, unique_name: str
) -> None:
    topic = f"{unique_name}.truncated"
    await produce_values(kafka_bootstrap, topic, 5)

    async with TopicReader(kafka_bootstrap, [topic], ReadRange()) as reader:
        # As if the log held offsets up to 9 when the range was fixed, and lost them since.
        reader.spans = [PartitionSpan(TopicPartition(topic, 0), 7, 10)]
        with pytest.raises(SourceError, match=r"offset 7: the log was truncated below the range"):
            await asyncio.wait_for(_all(reader), READ_TIMEOUT)


async def test_a_partition_ended_by_a_marker_does_not_hold_back_the_others(
    kafka_bootstrap: str, unique_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Time order releases records as soon as no partition can precede them: a partition
    whose range ends on a transaction marker (never a record) must count as read."""
    topic = f"{unique_name}.mixed"
    await ensure_topics(kafka_bootstrap, [topic], partitions=2)
    tx = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=f"{unique_name}-m")
    plain = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await tx.start()
    await plain.start()
    try:
        async with tx.transaction():
            for i in range(3):
                await tx.send(topic, b"early", partition=0, timestamp_ms=1_000 + i)
        for i in range(400):  # eight batches of 50, each larger than a fetch of 4 KiB
            await plain.send(topic, b"x" * 100, partition=1, timestamp_ms=2_000 + i)
            if i % 50 == 49:
                await plain.flush()
    finally:
        await tx.stop()
        await plain.stop()
    monkeypatch.setattr(source, "PARTITION_FETCH_BYTES", 4096)  # many fetches of partition 1

    async with TopicReader(kafka_bootstrap, [topic], ReadRange()) as reader:
        released = [batch async for batch in source.in_time_order(reader)]

    records = [r for batch in released for r in batch]
    assert [(r.partition, r.offset) for r in records] == [(0, i) for i in range(3)] + [
        (1, i) for i in range(400)
    ]
    assert len(released) == 8  # released fetch by fetch, not all at the end of the read
