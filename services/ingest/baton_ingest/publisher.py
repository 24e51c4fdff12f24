"""Publishes canonical events to ``leads.events``; a write counts only once Kafka acked it."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidProducerEpoch,
    OutOfOrderSequenceNumber,
    ProducerClosed,
    ProducerFenced,
    UnknownProducerId,
)
from aiokafka.partitioner import murmur2
from aiokafka.producer.message_accumulator import BatchBuilder
from prometheus_client import Counter, Histogram

from baton_shared.kafka import durable_producer, ensure_topics
from baton_shared.logs import get_logger

log = get_logger(__name__)

PRODUCE_SECONDS = Histogram(
    "baton_ingest_produce_seconds",
    "Time from handing a request's events to Kafka until every one was acknowledged",
)

PRODUCER_RESETS = Counter(
    "baton_ingest_producer_resets_total",
    "Producers replaced after an error that leaves an idempotent producer unusable",
)

# After an outage the idempotent producer's sequence numbers can run ahead of what the
# broker stored (sends that timed out were never written): the broker then refuses every
# later batch. A new producer (new producer id) is the way out.
FATAL_FOR_PRODUCER = (
    OutOfOrderSequenceNumber,
    UnknownProducerId,
    InvalidProducerEpoch,
    ProducerFenced,
    ProducerClosed,
)


# A record on its way to Kafka: (key, value). The key is the lead id.
Message = tuple[bytes, bytes]


@functools.lru_cache(maxsize=65_536)
def key_hash(key: bytes) -> int:
    """The Java client's (and aiokafka's DefaultPartitioner's) murmur2 of a key. Leads
    send many events, and aiokafka's murmur2 is pure Python: remember the recent ones."""
    return murmur2(key) & 0x7FFFFFFF


class KafkaUnavailable(RuntimeError):
    """Kafka did not acknowledge the write in time; the caller must retry later."""


class Publisher:
    """Owns the producer. It (re)connects in the background so the API can start,
    and answer 503, while Kafka is still down."""

    def __init__(self, bootstrap_servers: str, topic: str, partitions: int, timeout_s: float):
        self._bootstrap = bootstrap_servers
        self._topic = topic
        self._partitions = partitions
        self._timeout_s = timeout_s
        self._producer: AIOKafkaProducer | None = None
        self._connect_task: asyncio.Task[None] | None = None
        self._retired: set[asyncio.Task[None]] = set()

    @property
    def topic(self) -> str:
        return self._topic

    @property
    def connected(self) -> bool:
        return self._producer is not None

    def start(self) -> None:
        self._connect_task = asyncio.create_task(self._connect_forever())

    def _reset(self, producer: AIOKafkaProducer, reason: str) -> None:
        """Replace a producer that can no longer write (only once per broken producer)."""
        if self._producer is not producer:
            return
        PRODUCER_RESETS.inc()
        log.warning("kafka_producer_reset", reason=reason)
        self._producer = None
        self._retired.add(asyncio.create_task(producer.stop()))
        self._connect_task = asyncio.create_task(self._connect_forever())

    async def _connect_forever(self) -> None:
        delay = 0.2
        while True:
            producer = durable_producer(
                self._bootstrap, client_id="baton-ingest", max_batch_size=512 * 1024
            )
            try:
                await ensure_topics(self._bootstrap, [self._topic], self._partitions)
                await producer.start()
            except Exception as exc:  # broker not reachable yet
                await producer.stop()
                log.warning("kafka_connect_failed", error=type(exc).__name__, retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            self._producer = producer
            log.info("kafka_connected", topic=self._topic)
            return

    async def stop(self) -> None:
        """Flush what is in flight, then close."""
        if self._connect_task is not None:
            self._connect_task.cancel()
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
        await asyncio.gather(*self._retired, return_exceptions=True)

    async def _send_batches(
        self, producer: AIOKafkaProducer, messages: Sequence[Message]
    ) -> list[asyncio.Future[object]]:
        """One record batch per partition instead of one ``send`` per event: the same
        partitioning as every other Kafka client (murmur2 of the lead id), far fewer calls.
        Every batch is handed over before any acknowledgement is awaited."""
        partitions = sorted(await producer.partitions_for(self._topic))
        open_batches: dict[int, BatchBuilder] = {}
        futures: list[asyncio.Future[object]] = []
        for key, value in messages:
            partition = partitions[key_hash(key) % len(partitions)]
            builder = open_batches.get(partition)
            if builder is None or builder.append(key=key, value=value, timestamp=None) is None:
                if builder is not None:  # full: ship it and start another
                    futures.append(
                        await producer.send_batch(builder, self._topic, partition=partition)
                    )
                builder = open_batches[partition] = producer.create_batch()
                if builder.append(key=key, value=value, timestamp=None) is None:
                    raise KafkaUnavailable(f"a {len(value)}-byte event does not fit in a batch")
        for partition, builder in open_batches.items():
            futures.append(await producer.send_batch(builder, self._topic, partition=partition))
        return futures

    async def publish(self, messages: Sequence[Message]) -> None:
        """Send every (lead id, event) message and wait until all are acknowledged."""
        producer = self._producer
        if producer is None:
            raise KafkaUnavailable("not connected to Kafka")
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._timeout_s):
                if len(messages) == 1:
                    # A lone event joins the partition's open batch, so concurrent
                    # single-event requests share produce requests.
                    key, value = messages[0]
                    futures = [await producer.send(self._topic, value, key=key)]
                else:
                    futures = await self._send_batches(producer, messages)
                await asyncio.gather(*futures)
        except FATAL_FOR_PRODUCER as exc:
            self._reset(producer, type(exc).__name__)
            raise KafkaUnavailable(f"{type(exc).__name__}: {exc}") from exc
        except Exception as exc:
            raise KafkaUnavailable(f"{type(exc).__name__}: {exc}") from exc
        PRODUCE_SECONDS.observe(time.perf_counter() - started)
