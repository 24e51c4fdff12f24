"""The monitor's consume loop: a batch of records, one database transaction.

Flow, per ``getmany`` batch (up to ``BATON_SLA_CONSUME_BATCH`` records from
``leads.transitions``, ``leads.assignments`` and ``leads.activity``):

1. decode each record (:func:`decode_record`); a record that does not decode, or whose
   ids would not fit the clock tables, is poison: it goes to ``<topic>.dlq``, counted,
   and the batch goes on without it;
2. hand what is left to the handler (``ClockStore.apply``: one transaction, events
   published before it commits), retrying with backoff while it fails — a database or
   broker outage stalls the batch, it never skips a record;
3. commit the batch's offsets, last. A crash before that re-delivers the batch, which
   the idempotent handler absorbs (same rows, same event ids).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from baton_shared.consumer import decode_or_dead_letter, retry_until_done
from baton_shared.logs import get_logger
from baton_shared.schemas import Activity, ActivityKind, Assignment, Transition, decode

log = get_logger(__name__)

#: Column widths of ``sla.clocks`` / ``sla.touches``: a longer id is poison, not a
#: batch that fails forever.
MAX_LENGTHS = {
    "lead_id": 256,
    "transition_id": 128,
    "assignment_id": 64,
    "rep_id": 64,
    "pool": 64,
    "activity_id": 128,
}


@dataclass
class Batch:
    """The records of one batch that the clocks care about, by kind."""

    transitions: list[Transition] = field(default_factory=list)
    assignments: list[Assignment] = field(default_factory=list)
    touches: list[Activity] = field(default_factory=list)

    def add(self, item: Transition | Assignment | Activity) -> None:
        if isinstance(item, Transition):
            self.transitions.append(item)
        elif isinstance(item, Assignment):
            self.assignments.append(item)
        elif item.kind == ActivityKind.CONTACTED:
            self.touches.append(item)

    def __len__(self) -> int:
        return len(self.transitions) + len(self.assignments) + len(self.touches)


def decode_record(record: ConsumerRecord) -> Transition | Assignment | Activity:
    """The record by its topic; ``ValueError`` (to the DLQ) when it will not fit."""
    item: Transition | Assignment | Activity
    if record.topic.endswith("leads.transitions"):
        item = decode(Transition, record.value)
    elif record.topic.endswith("leads.assignments"):
        item = decode(Assignment, record.value)
    else:
        item = decode(Activity, record.value)
    for name, limit in MAX_LENGTHS.items():
        value = getattr(item, name, None)
        if isinstance(value, str) and len(value) > limit:
            raise ValueError(f"{name} is over {limit} characters")
        if isinstance(value, str) and "\x00" in value:
            raise ValueError(f"{name} contains a NUL character, which PostgreSQL cannot store")
    return item


async def consume_batches(
    consumer: AIOKafkaConsumer,
    producer: AIOKafkaProducer,
    name: str,
    handle: Callable[[Batch], Awaitable[None]],
    max_records: int,
) -> None:
    """Run until cancelled (see the module docstring)."""
    while True:
        records = await consumer.getmany(timeout_ms=500, max_records=max_records)
        if not records:
            continue
        await handle_records([r for part in records.values() for r in part], producer, name, handle)
        offsets = {tp: part[-1].offset + 1 for tp, part in records.items() if part}
        try:
            await consumer.commit(offsets)
        except Exception as exc:
            # A rebalance moved the partition: its new owner re-reads from the last
            # commit, and the handler absorbs the repeat.
            log.warning("offset_commit_failed", consumer=name, error=type(exc).__name__)


async def handle_records(
    records: Sequence[ConsumerRecord],
    producer: AIOKafkaProducer,
    name: str,
    handle: Callable[[Batch], Awaitable[None]],
) -> None:
    batch = Batch()
    for record in records:
        item = await decode_or_dead_letter(record, producer, name, decode_record)
        if item is not None:
            batch.add(item)
    if batch:
        await retry_until_done(name, lambda: handle(batch), records=len(batch))
