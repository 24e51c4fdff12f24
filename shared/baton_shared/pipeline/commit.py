"""Step 3, the last: commit the offsets of a handled batch.

The commit of batch N runs while batch N+1 is fetched and handled (it is a broker round
trip that nothing waits for), and is awaited before batch N+1's own commit starts, so
commits land in order. A commit that fails (a rebalance moved the partition) is logged:
the new owner re-reads from the last committed offset and the idempotent handler absorbs
the repeat.
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord, TopicPartition

from baton_shared.logs import get_logger

log = get_logger(__name__)


def next_offsets(batch: dict[TopicPartition, list[ConsumerRecord]]) -> dict[TopicPartition, int]:
    """Per partition, the offset to resume from after ``batch``."""
    return {tp: records[-1].offset + 1 for tp, records in batch.items() if records}


class CommitStep:
    def __init__(self, consumer: AIOKafkaConsumer, name: str) -> None:
        self._consumer = consumer
        self._name = name
        self._in_flight: asyncio.Task[None] | None = None

    async def submit(self, offsets: dict[TopicPartition, int]) -> None:
        """Start committing ``offsets`` once the previous commit finished."""
        await self.join()
        self._in_flight = asyncio.create_task(self._consumer.commit(offsets))

    async def join(self) -> None:
        """Wait for the commit in flight, if any."""
        committing, self._in_flight = self._in_flight, None
        if committing is None:
            return
        try:
            await committing
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning(
                "offset_commit_failed", consumer=self._name, error=f"{type(exc).__name__}: {exc}"
            )

    def close(self) -> None:
        """Abandon the commit in flight (the batch will be re-delivered)."""
        if self._in_flight is not None and not self._in_flight.done():
            self._in_flight.cancel()
