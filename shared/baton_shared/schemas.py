"""The wire contracts: one pydantic model per record type, JSON on every topic.

Every record carries ``schema`` (an integer version). A consumer accepts the
versions it knows and sends others to its DLQ. ``python -m baton_shared.schemas``
prints the JSON Schema of every record for consumers in other languages.
"""

from __future__ import annotations

import sys
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, TypeVar

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1


class Record(BaseModel):
    """Base of every record on a Baton topic: frozen, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_: Literal[1] = Field(default=SCHEMA_VERSION, alias="schema")

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", by_alias=True))


R = TypeVar("R", bound=Record)


def decode(model: type[R], raw: bytes) -> R:
    """Parse one record; raises pydantic.ValidationError on anything malformed."""
    return model.model_validate_json(raw)


class EventType(StrEnum):
    TRACK = "track"
    IDENTIFY = "identify"
    PAGE = "page"
    SCREEN = "screen"
    GROUP = "group"
    ALIAS = "alias"


class LeadEvent(Record):
    """A behavioural event or identity/trait update, normalised from any source.

    ``lead_id`` is the partition key: the userId when known, else the email,
    else the anonymousId.
    """

    event_id: str = Field(description="Source message id (Segment messageId); the dedup key")
    lead_id: str
    user_id: str | None = None
    anonymous_id: str | None = None
    email: str | None = None
    type: EventType
    name: str | None = Field(default=None, description="Track event name, or page name")
    occurred_at: AwareDatetime = Field(description="Event time, clock-skew corrected")
    received_at: AwareDatetime
    source: str = Field(description="Where it came from: segment, rudderstack, sendgrid, ...")
    page_category: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
    traits: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)


class Stage(StrEnum):
    NEW = "new"
    MQL = "mql"
    SQL = "sql"
    RECYCLED = "recycled"
    DISQUALIFIED = "disqualified"


class Transition(Record):
    """A lead's stage change, with the score and the reason that caused it.

    ``transition_id`` is deterministic (lead, stage, triggering event): every
    consumer dedups on it, so a re-emitted transition is harmless.
    """

    transition_id: str
    lead_id: str
    from_stage: Stage
    to_stage: Stage
    score: float
    fit: float
    engagement: float
    reason: str
    express: bool = False
    trigger_event_id: str
    trigger_event: str | None = None
    occurred_at: AwareDatetime
    rules_version: str


class Assignment(Record):
    """A lead handed to a rep."""

    assignment_id: str
    transition_id: str
    lead_id: str
    rep_id: str
    strategy: str
    express: bool = False
    qualified_at: AwareDatetime = Field(description="When the lead qualified (transition time)")
    assigned_at: AwareDatetime


class ActivityKind(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    CONTACTED = "contacted"


class Activity(Record):
    """Something a rep did with a lead."""

    activity_id: str
    lead_id: str
    rep_id: str | None = None
    kind: ActivityKind
    reason: str | None = None
    occurred_at: AwareDatetime


class SlaStatus(StrEnum):
    STARTED = "started"
    AT_RISK = "at_risk"
    BREACHED = "breached"
    MET = "met"


class SlaEvent(Record):
    """A speed-to-lead clock changed state. ``event_id`` is deterministic per clock and status."""

    event_id: str
    clock_id: str
    lead_id: str
    rep_id: str
    assignment_id: str
    status: SlaStatus
    started_at: AwareDatetime
    deadline_at: AwareDatetime
    at: AwareDatetime
    elapsed_seconds: float | None = None


class DeadLetter(Record):
    """A record a consumer could not process, with the reason, on ``<topic>.dlq``."""

    source_topic: str
    partition: int
    offset: int
    key: str | None
    value: str = Field(description="The original value, decoded as UTF-8 with replacement")
    error: str
    consumer: str
    failed_at: datetime


RECORDS: dict[str, type[Record]] = {
    "LeadEvent": LeadEvent,
    "Transition": Transition,
    "Assignment": Assignment,
    "Activity": Activity,
    "SlaEvent": SlaEvent,
    "DeadLetter": DeadLetter,
}


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema for every record, as consumers in other languages need it."""
    return {name: model.model_json_schema(by_alias=True) for name, model in RECORDS.items()}


if __name__ == "__main__":
    sys.stdout.buffer.write(orjson.dumps(json_schemas(), option=orjson.OPT_INDENT_2))
