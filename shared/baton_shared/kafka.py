"""Kafka helpers: a durable producer, topic creation, a readiness probe, DLQ writes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.structs import ConsumerRecord

from baton_shared.schemas import DeadLetter
from baton_shared.topics import dlq


def durable_producer(bootstrap_servers: str, **overrides: object) -> AIOKafkaProducer:
    """A producer whose acknowledged writes survive a broker crash.

    aiokafka defaults to ``acks=1`` without idempotence; Baton answers callers
    only after ``acks=all`` from an idempotent producer, so a retried send can
    neither be lost nor duplicated in the log.
    """
    options: dict[str, object] = {
        "bootstrap_servers": bootstrap_servers,
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 2,
        "request_timeout_ms": 10_000,
        "client_id": "baton",
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)  # type: ignore[arg-type]


async def ensure_topics(
    bootstrap_servers: str, names: Iterable[str], partitions: int, replication: int = 1
) -> None:
    """Create the topics that do not exist yet; existing ones are left as they are."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=10_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(name, num_partitions=partitions, replication_factor=replication)
            for name in names
            if name not in existing
        ]
        if not wanted:
            return
        try:
            await admin.create_topics(wanted)
        except TopicAlreadyExistsError:
            pass  # another instance created it first; that is fine
    finally:
        await admin.close()


async def kafka_answers(bootstrap_servers: str, timeout_s: float = 2.0) -> bool:
    """True when the cluster answers a metadata request within ``timeout_s``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=2_000)
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        await asyncio.wait_for(admin.list_topics(), timeout_s)
        return True
    except Exception:
        return False
    finally:
        try:
            await admin.close()
        except Exception:
            pass


async def send_to_dlq(
    producer: AIOKafkaProducer, record: ConsumerRecord, error: str, consumer: str
) -> None:
    """Park a record that could not be processed on its topic's DLQ, with the reason."""
    raw = record.value if isinstance(record.value, bytes) else b""
    letter = DeadLetter(
        source_topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key.decode("utf-8", "replace") if record.key else None,
        value=raw.decode("utf-8", "replace"),
        error=error[:2000],
        consumer=consumer,
        failed_at=datetime.now(UTC),
    )
    await producer.send_and_wait(dlq(record.topic), letter.to_bytes(), key=record.key)
