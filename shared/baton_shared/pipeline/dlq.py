"""The dead-letter queue: where a record that can never be processed is parked, on
``<topic>.dlq`` as a :class:`~baton_shared.schemas.DeadLetter` with the error."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from baton_shared.kafka import send_to_dlq
from baton_shared.logs import get_logger
from baton_shared.pipeline.outcomes import dead_lettered
from baton_shared.pipeline.retry import RetryPolicy, retry

log = get_logger(__name__)


class DeadLetterQueue:
    def __init__(self, producer: AIOKafkaProducer, consumer: str, policy: RetryPolicy) -> None:
        self._producer = producer
        self._consumer = consumer
        self._policy = policy

    async def put(self, record: ConsumerRecord, error: BaseException) -> None:
        """Park ``record`` with ``error`` (type and message), waiting out a broker outage;
        then count it and log where it was (the error's type, never the content)."""
        reason = f"{type(error).__name__}: {error}"
        where = {"topic": record.topic, "partition": record.partition, "offset": record.offset}
        await retry(
            lambda: send_to_dlq(self._producer, record, reason, self._consumer),
            self._policy,
            self._consumer,
            **where,
        )
        dead_lettered(self._consumer)
        log.warning("poison_record", consumer=self._consumer, error=type(error).__name__, **where)
