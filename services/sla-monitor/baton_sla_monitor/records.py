"""The records the monitor consumes, for :class:`baton_shared.pipeline.ConsumePipeline`:
:func:`decode_record` checks each against the clock tables (a record that would not fit
is poison, for the DLQ), and :class:`Batch` groups a batch's items by kind for
``ClockStore.apply``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from aiokafka.structs import ConsumerRecord

from baton_shared.schemas import (
    Activity,
    ActivityKind,
    Assignment,
    LeadMerged,
    Transition,
    decode,
)

Item = Transition | Assignment | Activity | LeadMerged

#: Column widths of ``sla.clocks`` / ``sla.touches``: a longer id is poison, not a
#: batch that fails forever.
MAX_LENGTHS = {
    "lead_id": 256,
    "transition_id": 128,
    "assignment_id": 64,
    "rep_id": 64,
    "pool": 64,
    "activity_id": 128,
    "merged_id": 256,
    "survivor_id": 256,
}


@dataclass
class Batch:
    """The records of one batch that the clocks care about, by kind."""

    transitions: list[Transition] = field(default_factory=list)
    assignments: list[Assignment] = field(default_factory=list)
    touches: list[Activity] = field(default_factory=list)
    merges: list[LeadMerged] = field(default_factory=list)

    @classmethod
    def of(cls, items: Iterable[Item]) -> Batch:
        batch = cls()
        for item in items:
            if isinstance(item, Transition):
                batch.transitions.append(item)
            elif isinstance(item, Assignment):
                batch.assignments.append(item)
            elif isinstance(item, LeadMerged):
                batch.merges.append(item)
            else:
                batch.touches.append(item)
        return batch

    def __len__(self) -> int:
        return (
            len(self.transitions) + len(self.assignments) + len(self.touches) + len(self.merges)
        )


def decode_record(record: ConsumerRecord) -> Item | None:
    """The record by its topic; ``ValueError`` (to the DLQ) when it will not fit; None
    for an activity other than ``contacted`` (no clock cares)."""
    item: Item
    if record.topic.endswith("leads.transitions"):
        item = decode(Transition, record.value)
    elif record.topic.endswith("leads.assignments"):
        item = decode(Assignment, record.value)
    elif record.topic.endswith("leads.merges"):
        item = decode(LeadMerged, record.value)
    else:
        item = decode(Activity, record.value)
    for name, limit in MAX_LENGTHS.items():
        value = getattr(item, name, None)
        if isinstance(value, str) and len(value) > limit:
            raise ValueError(f"{name} is over {limit} characters")
        if isinstance(value, str) and "\x00" in value:
            raise ValueError(f"{name} contains a NUL character, which PostgreSQL cannot store")
    if isinstance(item, Activity) and item.kind != ActivityKind.CONTACTED:
        return None
    return item
