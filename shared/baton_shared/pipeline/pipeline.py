"""The consume pipeline every plain-aiokafka service runs (see :class:`ConsumePipeline`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from baton_shared.pipeline.commit import CommitStep, next_offsets
from baton_shared.pipeline.decode import DecodeStep
from baton_shared.pipeline.dlq import DeadLetterQueue
from baton_shared.pipeline.handle import Handler, HandleStep
from baton_shared.pipeline.retry import RetryPolicy

T = TypeVar("T")

POLL_TIMEOUT_MS = 500


class ConsumePipeline(Generic[T]):
    """Consume a Kafka consumer's records into a service's handler, batch by batch.

    Each batch (up to ``max_records`` from one ``getmany``) goes through three steps:

    1. **decode** (:mod:`.decode`): the service's ``decode`` turns each record into an
       item; a record it refuses goes to ``<topic>.dlq`` with the error, counted in
       ``baton_consumer_records_total{outcome="dead_letter"}``; None means "not mine".
    2. **handle** (:mod:`.handle`): the service's ``handle`` gets the batch's items at
       once and makes them durable. A dependency outage (:func:`.retry.is_transient`)
       is retried with backoff until it ends, never skipped; any other error is retried
       up to ``retry.max_attempts`` times, then the batch is handled record by record
       and the record that still fails goes to its DLQ with the error.
    3. **commit** (:mod:`.commit`): the batch's offsets are committed, last, after
       ``after_batch`` (a nudge to whatever works on what the handler wrote). The
       commit runs while the next batch is fetched and handled; commits land in order.

    Back-pressure is the loop itself: the next batch is not fetched until the handler
    has finished the previous one, so a slow or stalled handler stalls consumption (and
    aiokafka's bounded prefetch) rather than piling records up in memory. A crash
    before a commit re-delivers the batch, which idempotent handlers absorb.
    """

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        name: str,
        decode: Callable[[ConsumerRecord], T | None],
        handle: Handler[T],
        *,
        retry: RetryPolicy,
        max_records: int,
        after_batch: Callable[[], None] | None = None,
    ) -> None:
        dlq = DeadLetterQueue(producer, name, retry)
        self._consumer = consumer
        self._max_records = max_records
        self._decode = DecodeStep(decode, dlq, name)
        self._handle = HandleStep(handle, dlq, name, retry)
        self._after_batch = after_batch
        self._commit = CommitStep(consumer, name)

    async def run(self) -> None:
        """Consume until cancelled."""
        try:
            while True:
                batch = await self._consumer.getmany(
                    timeout_ms=POLL_TIMEOUT_MS, max_records=self._max_records
                )
                if batch:
                    await self._handle(await self._decode([r for p in batch.values() for r in p]))
                    if self._after_batch is not None:
                        self._after_batch()
                    await self._commit.submit(next_offsets(batch))
        finally:
            self._commit.close()
