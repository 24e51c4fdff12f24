"""Which records the conversion report reads, decoded from their topic: the one place
the reporting store's feed and ``baton funnel`` take them from, so both see the same
facts. Of ``leads.events`` only records that carry UTM parameters or join an anonymous
id to a known lead matter; the rest are passed over without decoding when their JSON
says so plainly."""

from __future__ import annotations

from baton_shared.consumer import refuse_nul
from baton_shared.conversion.journeys import Fact
from baton_shared.schemas import (
    Activity,
    ActivityKind,
    Assignment,
    LeadEvent,
    LeadMerged,
    SlaEvent,
    Transition,
    decode,
)
from baton_shared.topics import Topics

#: A compact event with no UTM and no anonymous id says nothing to the report.
_NOTHING_TO_SAY = (b'"campaign":{}', b'"anonymous_id":null')
_MODELS: tuple[tuple[str, type[Fact]], ...] = (
    ("leads.transitions", Transition),
    ("leads.assignments", Assignment),
    ("leads.activity", Activity),
    ("leads.sla", SlaEvent),
    ("leads.merges", LeadMerged),
)


def fact_topics(topics: Topics) -> list[str]:
    """The topics the report is folded from."""
    return [
        topics.transitions,
        topics.assignments,
        topics.activity,
        topics.sla,
        topics.merges,
        topics.events,
    ]


def fact_from(topic: str, raw: bytes) -> Fact | None:
    """The record as a fact; None when it says nothing the report uses (or is an event
    that does not decode: the scorer dead-letters those). ``ValueError`` for any other
    record that does not decode, or holds a NUL character PostgreSQL cannot store."""
    if topic.endswith("leads.events"):
        if all(marker in raw for marker in _NOTHING_TO_SAY):
            return None
        try:
            refuse_nul(raw)
            return _event(decode(LeadEvent, raw))
        except ValueError:  # pydantic's ValidationError too
            return None
    model = next((m for suffix, m in _MODELS if topic.endswith(suffix)), None)
    if model is None:
        return None
    refuse_nul(raw)
    fact = decode(model, raw)
    if isinstance(fact, Activity) and fact.kind == ActivityKind.QUALIFIED:
        return None
    return fact


def _event(event: LeadEvent) -> LeadEvent | None:
    has_alias = event.anonymous_id is not None and event.anonymous_id != event.lead_id
    return event if event.campaign or has_alias else None
