"""Reading topics in tests: wait for a record that matches, with a timeout."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import RecordMetadata, TopicPartition

from baton_shared.kafka_connection import KafkaConnection, client_options


async def wait_for_record(
    bootstrap: KafkaConnection | str,
    topic: str,
    match: Callable[[dict[str, Any]], bool],
    timeout: float = 30.0,
) -> list[dict[str, Any]]:
    """Read ``topic`` from the beginning until a record matches; return every record read
    up to and including it. Fails the test with what was seen when time runs out."""
    consumer = AIOKafkaConsumer(
        topic,
        **client_options(bootstrap),
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(timeout):
            while True:
                batch = await consumer.getmany(timeout_ms=200)
                for records in batch.values():
                    for record in records:
                        value = orjson.loads(record.value)
                        seen.append(value)
                        if match(value):
                            return seen
    except TimeoutError:
        raise AssertionError(
            f"no matching record on {topic} within {timeout} s; saw {seen}"
        ) from None
    finally:
        await consumer.stop()


async def read_all(bootstrap: str, topic: str, idle_s: float = 1.0) -> list[dict[str, Any]]:
    """Every record on ``topic`` now (reads until nothing new arrives for ``idle_s``)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    out: list[dict[str, Any]] = []
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=int(idle_s * 1000))
            if not batch:
                return out
            for records in batch.values():
                out.extend(orjson.loads(r.value) for r in records)
    finally:
        await consumer.stop()


async def wait_committed(
    bootstrap: str, group: str, sent: RecordMetadata, timeout: float = 15.0
) -> None:
    """Wait until consumer group ``group`` committed past ``sent``: a service that commits
    only once a batch is durable has then handled it."""
    tp = TopicPartition(sent.topic, sent.partition)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        async with asyncio.timeout(timeout):
            while True:
                committed = (await admin.list_consumer_group_offsets(group)).get(tp)
                if committed is not None and committed.offset > sent.offset:
                    return
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"{group} did not commit past {tp}@{sent.offset}") from None
    finally:
        await admin.close()
