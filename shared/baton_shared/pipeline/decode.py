"""Step 1: decode each record, or dead-letter it.

A record the service's decode function refuses (``ValueError``, pydantic's
``ValidationError``, ``UnicodeDecodeError``) can never be processed: it goes to
``<topic>.dlq`` with the error, and the batch goes on without it. A decode function
returns None for a record that is valid but none of this consumer's business.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError

from baton_shared.pipeline.dlq import DeadLetterQueue
from baton_shared.pipeline.outcomes import processed

T = TypeVar("T")

#: A decoded record, with the record it came from (for its DLQ letter).
Decoded = tuple[ConsumerRecord, T]


class DecodeStep(Generic[T]):
    def __init__(
        self, decode: Callable[[ConsumerRecord], T | None], dlq: DeadLetterQueue, consumer: str
    ) -> None:
        self._decode = decode
        self._dlq = dlq
        self._consumer = consumer

    async def __call__(self, records: Sequence[ConsumerRecord]) -> list[Decoded[T]]:
        """The records that decoded to something, in order; the others are on the DLQ
        or, decoded to None, counted as processed."""
        out: list[Decoded[T]] = []
        for record in records:
            try:
                item = self._decode(record)
            except (ValidationError, ValueError, UnicodeDecodeError) as exc:
                await self._dlq.put(record, exc)
                continue
            if item is None:
                processed(self._consumer, 1)
            else:
                out.append((record, item))
        return out
