"""Step 2: hand the decoded records to the service's handler, as one batch.

The handler is a plain async function of a list of items that makes them durable (a
database transaction, a publish); it is retried as :mod:`.retry` says. When it gives up
on a batch, the batch is split and each record is handled on its own with the same
bounded attempts, so the record that keeps failing goes to its DLQ with the error and
the others are processed: one poison record never stops a partition.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from baton_shared.pipeline.decode import Decoded
from baton_shared.pipeline.dlq import DeadLetterQueue
from baton_shared.pipeline.outcomes import processed
from baton_shared.pipeline.retry import GaveUp, RetryPolicy, retry

T = TypeVar("T")

Handler = Callable[[list[T]], Awaitable[object]]


class HandleStep(Generic[T]):
    def __init__(
        self, handle: Handler[T], dlq: DeadLetterQueue, consumer: str, policy: RetryPolicy
    ) -> None:
        self._handle = handle
        self._dlq = dlq
        self._consumer = consumer
        self._policy = policy

    async def __call__(self, batch: list[Decoded[T]]) -> None:
        """Return once every record of ``batch`` is handled or on its DLQ."""
        if not batch:
            return
        items = [item for _, item in batch]
        try:
            await retry(
                lambda: self._handle(items), self._policy, self._consumer, records=len(items)
            )
        except GaveUp as exc:
            if len(batch) > 1:
                for one in batch:
                    await self([one])
            else:
                await self._dlq.put(batch[0][0], exc.__cause__ or exc)
            return
        processed(self._consumer, len(items))


def each(handle_one: Callable[[T], Awaitable[object]]) -> Handler[T]:
    """A batch handler that hands the items to ``handle_one`` in order (for work that
    is done record by record; a retried batch repeats the records before the failing
    one, so ``handle_one`` must be idempotent, as every handler is)."""

    async def handle(items: list[T]) -> None:
        for item in items:
            await handle_one(item)

    return handle
