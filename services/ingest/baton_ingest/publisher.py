"""Publishes canonical events to ``leads.events``; a write counts only once Kafka acked it.

A request's events go out as one record batch per partition
(:func:`baton_shared.producer.send_batched`, keyed and partitioned by lead id), and the
request is answered once every batch is acknowledged. The producer (re)connects in the
background and is replaced when an error leaves it unusable.

Express-lane events (a demo request) also go, one by one, to ``leads.express``, which
the scorer reads ahead of the bulk; ``leads.events`` stays the complete log (replay,
reports) and the scorer absorbs the second copy as a duplicate. Bulk work is bounded:
when ``max_pending_events`` are already waiting for Kafka, or the oldest of them has
waited ``max_pending_seconds``, a request without an express event is refused at once
(:class:`Overloaded`) instead of queueing for seconds, and so is it while the process's
event loop runs ``max_loop_lag_seconds`` behind (the box cannot keep up:
:class:`LoopLag`).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidProducerEpoch,
    OutOfOrderSequenceNumber,
    ProducerClosed,
    ProducerFenced,
    UnknownProducerId,
)
from prometheus_client import Counter, Histogram

from baton_shared.kafka import KafkaAccessError, durable_producer, ensure_topics
from baton_shared.kafka_connection import KafkaConnection
from baton_shared.logs import get_logger
from baton_shared.producer import partition_for, send_batched
from baton_shared.topic_durability import Durability, TopicDurabilityError

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


@dataclass(frozen=True)
class ProducerTuning:
    """How the publisher's producer batches and how it reconnects (see IngestSettings)."""

    max_batch_bytes: int = 512 * 1024
    linger_ms: int = 2
    connect_retry_first_seconds: float = 0.2
    connect_retry_max_seconds: float = 5.0
    max_pending_events: int = 20_000
    max_pending_seconds: float = 0.5
    max_loop_lag_seconds: float = 0.5


class LoopLag:
    """How far behind the event loop runs: a timer that should fire every
    ``interval_s`` is late by the lag; smoothed, so one slow callback does not count."""

    def __init__(self, interval_s: float = 0.05) -> None:
        self.interval_s = interval_s
        self.seconds = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(self.interval_s)
            late = max(0.0, loop.time() - started - self.interval_s)
            self.seconds = 0.8 * self.seconds + 0.2 * late


class KafkaUnavailable(RuntimeError):
    """Kafka did not acknowledge the write in time; the caller must retry later."""


class Overloaded(RuntimeError):
    """Too many events already wait for Kafka; nothing of the request was sent."""


class Publisher:
    """Owns the producer. It (re)connects in the background so the API can start,
    and answer 503, while Kafka is still down."""

    def __init__(
        self,
        kafka: KafkaConnection | str,
        topic: str,
        partitions: int,
        timeout_s: float,
        tuning: ProducerTuning | None = None,
        durability: Durability | None = None,
        express_topic: str | None = None,
    ):
        self._bootstrap = kafka
        self._durability = durability
        self._topic = topic
        self._partitions = partitions
        self._timeout_s = timeout_s
        self._tuning = tuning or ProducerTuning()
        self._producer: AIOKafkaProducer | None = None
        self._connect_task: asyncio.Task[None] | None = None
        self._retired: set[asyncio.Task[None]] = set()
        self._express_topic = express_topic
        self._pending = 0  # events handed to the producer and not acknowledged yet
        self._waiting_since: dict[int, float] = {}  # each publish in flight: when it began
        self._tokens = itertools.count()
        self._lag = LoopLag()

    @property
    def topic(self) -> str:
        return self._topic

    @property
    def connected(self) -> bool:
        return self._producer is not None

    def start(self) -> None:
        self._connect_task = asyncio.create_task(self._connect_forever())
        self._lag.start()

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
        tuning = self._tuning
        delay = tuning.connect_retry_first_seconds
        while True:
            producer = durable_producer(
                self._bootstrap,
                client_id="baton-ingest",
                max_batch_size=tuning.max_batch_bytes,
                linger_ms=tuning.linger_ms,
            )
            try:
                topics = [self._topic, *([self._express_topic] if self._express_topic else [])]
                await ensure_topics(self._bootstrap, topics, self._partitions, self._durability)
                await producer.start()
            except Exception as exc:  # broker not reachable yet, or refusing us
                await producer.stop()
                error = type(exc).__name__
                if isinstance(exc, KafkaAccessError | TopicDurabilityError):
                    error = f"{error}: {exc}"  # names the setting to fix
                log.warning("kafka_connect_failed", error=error, retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, tuning.connect_retry_max_seconds)
                continue
            self._producer = producer
            log.info("kafka_connected", topic=self._topic)
            return

    async def stop(self) -> None:
        """Flush what is in flight, then close."""
        self._lag.stop()
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
        partitioning as every other Kafka client (murmur2 of the lead id), far fewer calls."""
        partitions = sorted(await producer.partitions_for(self._topic))
        records = [(partition_for(key, partitions), key, value) for key, value in messages]
        return await send_batched(producer, self._topic, records)

    async def publish(self, messages: Sequence[Message], express: Sequence[Message] = ()) -> None:
        """Send every (lead id, event) message, and each of ``express`` to the express
        topic too, and wait until all are acknowledged. Without express messages, raise
        :class:`Overloaded` when events are pending and these would pass the bound."""
        producer = self._producer
        if producer is None:
            raise KafkaUnavailable("not connected to Kafka")
        if not express:
            self._admit(len(messages))
        started = time.perf_counter()
        self._pending += len(messages)
        token = next(self._tokens)
        self._waiting_since[token] = started
        try:
            async with asyncio.timeout(self._timeout_s):
                futures = await self._send_express(producer, express)
                if len(messages) == 1:
                    # A lone event joins the partition's open batch, so concurrent
                    # single-event requests share produce requests.
                    key, value = messages[0]
                    futures.append(await producer.send(self._topic, value, key=key))
                else:
                    futures += await self._send_batches(producer, messages)
                await asyncio.gather(*futures)
        except FATAL_FOR_PRODUCER as exc:
            self._reset(producer, type(exc).__name__)
            raise KafkaUnavailable(f"{type(exc).__name__}: {exc}") from exc
        except Exception as exc:
            raise KafkaUnavailable(f"{type(exc).__name__}: {exc}") from exc
        finally:
            self._pending -= len(messages)
            del self._waiting_since[token]
        PRODUCE_SECONDS.observe(time.perf_counter() - started)

    def _admit(self, events: int) -> None:
        """Raise :class:`Overloaded` when ``events`` more bulk events would pass the
        bound of events waiting for Kafka, the oldest waits too long, or the event loop
        runs too far behind."""
        pending, tuning = self._pending, self._tuning
        if pending and pending + events > tuning.max_pending_events:
            raise Overloaded(f"{pending} events wait for Kafka")
        if pending and time.perf_counter() - min(self._waiting_since.values()) > (
            tuning.max_pending_seconds
        ):
            raise Overloaded("events wait for Kafka too long")
        if self._lag.seconds > tuning.max_loop_lag_seconds:
            raise Overloaded(f"the event loop runs {self._lag.seconds:.2f} s behind")

    async def _send_express(
        self, producer: AIOKafkaProducer, express: Sequence[Message]
    ) -> list[asyncio.Future[object]]:
        """The express copies, first, on a topic without bulk: they do not queue behind
        bulk record batches of their partition."""
        if self._express_topic is None:
            return []
        return [await producer.send(self._express_topic, value, key=key) for key, value in express]
