"""Rules published on the compacted ``<prefix>scorer.rules`` topic, followed by every worker.

A rules document is the YAML text itself (UTF-8), keyed ``rules``, so its version
(``name@hash``) is the same as loading that text from a file. The topic is
compacted and has one partition: Kafka keeps the latest document, and a worker
that starts reads it before it scores anything. A tombstone (null value) withdraws
the published rules; workers fall back to their file (or the shipped defaults).

Every worker reads the whole topic itself — no consumer group, so no worker
"owns" the rules — from the beginning at start-up (:meth:`RulesFollower.catch_up`)
and then follows it (:meth:`RulesFollower.follow`), handing each document to
:meth:`baton_scorer.rules_source.RulesSource.offer`, which refuses invalid ones.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from baton_scorer.metrics import RULES_FOLLOW_ERRORS
from baton_scorer.rules_source import RulesSource
from baton_shared.kafka import durable_producer, ensure_topics
from baton_shared.kafka_connection import KafkaConnection, client_options
from baton_shared.logs import get_logger
from baton_shared.topic_durability import Durability

log = get_logger(__name__)

RULES_KEY = b"rules"


@dataclass(frozen=True)
class Published:
    """Where a rules document landed."""

    topic: str
    partition: int
    offset: int


async def ensure_rules_topic(
    kafka: KafkaConnection | str, topic: str, durability: Durability | None = None
) -> None:
    """Create the rules topic (one partition, compacted) unless it exists."""
    await ensure_topics(kafka, [topic], 1, durability, compacted=True)


async def publish_rules(
    kafka: KafkaConnection | str,
    topic: str,
    text: str | None,
    durability: Durability | None = None,
) -> Published:
    """Write one rules document (``None``: a tombstone) and wait for Kafka's acknowledgement.

    The caller validates ``text`` first (:func:`baton_scorer.rules.parse_rules`);
    workers refuse an invalid document anyway.
    """
    await ensure_rules_topic(kafka, topic, durability)
    producer = durable_producer(kafka)
    await producer.start()
    try:
        value = text.encode() if text is not None else None
        meta = await producer.send_and_wait(topic, value, key=RULES_KEY)
    finally:
        await producer.stop()
    return Published(meta.topic, meta.partition, meta.offset)


class RulesFollower:
    """Feeds every document on the rules topic to a :class:`RulesSource`, in order."""

    def __init__(self, kafka: KafkaConnection | str, topic: str, source: RulesSource) -> None:
        self.kafka = kafka
        self.topic = topic
        self.source = source
        # Next offset to read per partition; carried from catch_up (one event loop)
        # to follow (faust's loop), each with its own consumer.
        self.positions: dict[int, int] = {}

    async def catch_up(self) -> None:
        """Read the topic to its current end (at start-up, before any scoring)."""
        consumer, partitions = await self._consumer()
        try:
            ends = await consumer.end_offsets(partitions)
            while await self._behind(consumer, ends):
                batch = await consumer.getmany(timeout_ms=1_000)
                self._apply(batch)
            for tp in partitions:
                self.positions[tp.partition] = await consumer.position(tp)
        finally:
            await consumer.stop()

    @staticmethod
    async def _behind(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
        for tp, end in ends.items():
            if await consumer.position(tp) < end:
                return True
        return False

    async def follow(self, on_change: Callable[[], None]) -> None:
        """Apply new documents as they arrive, until cancelled; ``on_change`` after a swap.

        A broker error never ends the following (a worker that silently stopped
        following would score with stale rules while its peers moved on): the consumer
        is recreated from the positions reached, backing off from 0.5 s to 30 s.
        """
        delay = 0.5
        while True:
            try:
                await self._follow_once(on_change)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure: log, back off, resume
                RULES_FOLLOW_ERRORS.inc()
                log.warning(
                    "rules_topic_follow_failed",
                    topic=self.topic,
                    error=f"{type(exc).__name__}: {exc}",
                    retry_in_s=delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
            else:
                delay = 0.5

    async def _follow_once(self, on_change: Callable[[], None]) -> None:
        consumer, partitions = await self._consumer()
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=1_000)
                if self._apply(batch):
                    on_change()
                for tp in partitions:
                    self.positions[tp.partition] = await consumer.position(tp)
        finally:
            await consumer.stop()

    async def _consumer(self) -> tuple[AIOKafkaConsumer, list[TopicPartition]]:
        consumer = AIOKafkaConsumer(
            **client_options(self.kafka),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            await consumer.topics()  # metadata for every topic, ours included
            numbers = consumer.partitions_for_topic(self.topic) or {0}
            partitions = [TopicPartition(self.topic, p) for p in sorted(numbers)]
            consumer.assign(partitions)
            for tp in partitions:
                position = self.positions.get(tp.partition)
                if position is None:
                    await consumer.seek_to_beginning(tp)
                else:
                    consumer.seek(tp, position)
        except BaseException:
            await consumer.stop()
            raise
        return consumer, partitions

    def _apply(self, batch: dict[TopicPartition, list]) -> bool:
        changed = False
        for tp, records in batch.items():
            for record in records:
                text = None
                if record.value is not None:
                    text = record.value.decode("utf-8", "replace")
                origin = f"{tp.topic}[{tp.partition}]@{record.offset}"
                changed = self.source.offer(text, origin) or changed
        return changed


def read_rules_topic(
    kafka: KafkaConnection | str,
    topic: str,
    source: RulesSource,
    durability: Durability | None = None,
) -> RulesFollower:
    """Create the topic if needed and apply what it holds now (blocking; before faust starts)."""
    follower = RulesFollower(kafka, topic, source)

    async def run() -> None:
        await ensure_rules_topic(kafka, topic, durability)
        await follower.catch_up()

    asyncio.run(run())
    return follower
