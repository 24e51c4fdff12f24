"""The canonical event as plain data, serialised once for ``leads.events``.

``LeadEvent`` (baton_shared.schemas) is the schema. ``normalize`` has already made every
field with its exact type, so ingest does not build (and validate) a ``LeadEvent``: it
writes the same fields, in the schema's order, into a dict and serialises it with
orjson. The ingest tests hold this to the schema: every field present, and the bytes
decode as a ``LeadEvent`` whose own serialisation is the same bytes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, TypedDict

import orjson

from baton_shared.schemas import LeadEvent


class PageRecord(TypedDict):
    url: str | None
    path: str | None
    referrer: str | None
    title: str | None


class EventRecord(TypedDict):
    """A ``LeadEvent``'s fields by their wire names."""

    schema: Literal[1]
    event_id: str
    lead_id: str
    user_id: str | None
    anonymous_id: str | None
    email: str | None
    type: str
    name: str | None
    occurred_at: datetime
    received_at: datetime
    source: str
    page_category: str | None
    page: PageRecord | None
    campaign: dict[str, str]
    user_agent: str | None
    ip: str | None
    group_id: str | None
    previous_id: str | None
    possible_duplicate: bool
    properties: dict[str, Any]
    traits: dict[str, Any]
    context: dict[str, Any]
    sealed: str | None
    email_id: str | None


def record_of(event: LeadEvent) -> EventRecord:
    """A ``LeadEvent`` built elsewhere (the email sources) as a record."""
    return event.model_dump(by_alias=True)  # type: ignore[return-value]


def to_bytes(record: EventRecord) -> bytes:
    """The record on the wire: what ``LeadEvent.to_bytes`` writes for the same event."""
    return orjson.dumps(record, option=orjson.OPT_UTC_Z)
